"""The clinical vocabulary (``mappings/lexicon.yaml``), loaded and validated once, and what derives from it:
drug classes by name, therapy names, body regions, finding phrases and assertion cues.

Nothing else in the adapter keeps a clinical word list: the letter parser's therapy names, the request
categories' drug and therapy entries and both fact readers come from here.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adapter.scan import PatternSet
from adapter.tables import TableFile, compiles

__all__ = ["LEXICON", "Drug", "Lexicon"]


def _alternatives(patterns: list[str]) -> re.Pattern[str]:
    """Whole-word alternatives, case-insensitive."""
    return re.compile("|".join(rf"\b(?:{p})\b" for p in patterns), re.IGNORECASE)


def _with_groups(patterns: list[str], name: str, *groups: str) -> list[str]:
    """``patterns``, each checked to hold the named ``groups`` a reader of ``name`` takes from it."""
    for pattern in patterns:
        if set(groups) - set(re.compile(pattern).groupindex):
            raise ValueError(f"each {name} pattern needs the named groups {' and '.join(groups)}")
    return patterns


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cue(_Entry):
    """An assertion cue for ConText: a phrase and the direction of its scope."""

    phrase: str = Field(min_length=1)
    direction: Literal["forward", "backward", "bidirectional"]
    #: How many words the cue reaches (none: to its clause's end).
    reach: int | None = Field(default=None, ge=1)
    #: The kinds of phrase the cue speaks of (none: every kind): "w/o radiculopathy" denies a diagnosis, while "amb
    #: w/o AD, RTW full duty" denies no return to work.
    of: list[Literal["finding", "therapy", "drug", "drugclass", "diagnosis"]] | None = None


class Assertion(_Entry):
    """ConText cues by what they say of the phrases in their scope (``mappings/lexicon.yaml`` explains each)."""

    negated: list[Cue]
    possible: list[Cue] = Field(default_factory=list)
    historical: list[Cue]
    #: Plans, requests, referrals and recommendations: care not yet given (a finding beside one still stands).
    hypothetical: list[Cue]
    #: Conditions, goals and the future: nothing in their scope is stated to hold now.
    conditional: list[Cue] = Field(default_factory=list)
    #: What the record says or lacks, and utilization review quoted: silence, never a clinical absence.
    record: list[Cue] = Field(default_factory=list)
    #: A reviewer's words ("per UR", "the reviewer noted"): what the reviewer read in the records. Care, findings
    #: and history stated in them stand; an absence or a denial in them is the record's silence, as ``record``.
    reviewed: list[Cue] = Field(default_factory=list)
    #: What is said not to be said ("it cannot be said that ...", "not that ..."): an absence phrase in its reach
    #: is withdrawn, a presence left standing.
    unsaid: list[Cue] = Field(default_factory=list)
    #: A drug or treatment stopped: no longer in use.
    discontinued: list[Cue] = Field(default_factory=list)
    other_experiencer: list[Cue]
    #: Words for the present: they end the scope of a cue of the past or of a stop ("previously on tramadol, now
    #: on Norco").
    current: list[Cue] = Field(default_factory=list)
    #: Verbs that make another person the informant ("her husband reports that she ..."), not the experiencer.
    informing: list[str] = Field(default_factory=list)
    #: Relatives by the pronoun that stands for them ("she": wife, mother, ...): a pronoun set apart ("she herself",
    #: "for her own back") is the relative's when the patient's own pronoun is the other one.
    relatives: dict[Literal["she", "he"], list[str]] = Field(default_factory=dict)
    other_injury: list[Cue]
    #: Words that end a clause, and with it every modifier's scope.
    terminate: list[str]
    #: Words that tie a phrase to a treatment, a time or a reason: they end a modifier's scope until the next
    #: item of a list ("no numbness after sitting, weakness, or incontinence").
    attach: list[str] = Field(default_factory=list)
    #: Phrases that hold a cue word but are no cue ("not only", "no change in"): they mask the cue inside.
    pseudo: list[str] = Field(default_factory=list)
    #: medspacy default cues left out (their literal), with the reason beside each in the lexicon.
    drop_default: list[str] = Field(default_factory=list)


class Therapy(_Entry):
    name: str
    #: The request category this is care of (None: care named in general, of no one category).
    category: str | None = None
    words: list[str] = Field(min_length=1)
    #: Which mentions count as this care of a request's region: "same" (physical therapy for the shoulder is
    #: not for the back), or "related" (care given at the spine for a limb's pain: an epidural "for the leg
    #: pain" is the low back's).
    region: Literal["same", "related"] = "same"
    #: Request categories for which this therapy, named in general, counts only when denied: "no injections to
    #: date" says no epidural was given either, "had injections" does not say one was.
    denies: list[str] = Field(default_factory=list)
    #: Request categories whose case rests on what this care did too: the relief of a medial branch block is what
    #: a radiofrequency ablation is asked on.
    credited_for: list[str] = Field(default_factory=list)
    #: A device used at home (TENS), not a course of visits: no count of care is read of it ("PT with TENS x 6
    #: sessions" counts PT), and relief and gains count for a request of its category whatever care their
    #: sentence names beside them (a trial's log names the drugs it spared: "pain 7 to 4, Norco cut from 3 to 1
    #: a day"), as for a request of no therapy.
    device: bool = False
    #: Request categories of which this care, named in general, is care of the kind: therapy or rehab unnamed is
    #: physical or occupational therapy ("twelve therapy sessions for the neck", "two rounds of rehab").
    of: list[str] = Field(default_factory=list)

    _check = field_validator("words")(compiles)


class Ingredient(_Entry):
    rxnorm: str | None = Field(default=None, pattern=r"^\d{1,8}$")
    brands: list[str] = Field(default_factory=list)


class Finding(_Entry):
    """A documentation fact: phrases that state it, phrases that state its absence."""

    conflict: Literal["present", "unknown"]
    history: bool
    #: Whether a suspected finding ("rule out", "possible") counts: yes for red flags, which are suspicions.
    suspected: bool = False
    #: Which mentions count for a request about a body region: "any" (the finding is about the person),
    #: "same" (a sentence naming other regions only does not count), "related" (the same or a related region
    #: counts: a leg finding for the low back), "imaged" (the same region or one whose studies show it: the
    #: lumbar MRI for the leg's nerve studies, ankle films for the foot; ``imaged_regions``).
    region: Literal["any", "same", "related", "imaged"] = "any"
    #: A study or trial done counts whatever it found ("no fracture on x-rays" still says x-rays were taken):
    #: negation in its result does not undo it, nor suspicion where ``suspected`` ("possible fracture on the
    #: x-rays"; "a possible TENS trial" is none); a plan or request for one does.
    study: bool = False
    #: A fact that asking states, whatever the answer and whenever asked: side effects asked about are assessed,
    #: denied ("no nausea or sedation") or not ("mild constipation"), of a drug taken now or before ("d/c'd due to
    #: dizziness"); only its absence phrases ("intolerable side effects") say absent.
    assessed: bool = False
    #: A fact the record itself states: an earlier certification is what a UR summary reports ("the prior
    #: request was approved by UR"), so the record's words do not make it silence.
    of_the_record: bool = False
    #: A fact a plan states: the use a request is put to is its indication ("acupuncture requested as an adjunct
    #: to PT"), so a request's words do not make it a plan only.
    planned: bool = False
    #: An event another person's sentence calls "the same" is the patient's too: "a coworker hurt in the same
    #: forklift collision was admitted" says the patient was in the collision.
    shared: bool = False
    #: An event had that nothing resolving undoes: "R CTR 2019, numbness resolved" says the release was done (what
    #: resolved is what it treated), so a "resolved" cue reaching back over it does not deny it.
    lasting: bool = False
    #: Words with which a plan keeps the fact: a plan to continue, stay in or remain in a work status says it is so
    #: now ("he will stay on modified duty pending the MRI"), one to repeat a study that it was done ("will consider
    #: a repeat MRI"); matched in the fact's words and just before them.
    kept: list[str] = Field(default_factory=list)
    #: A fact of the person, whichever injury a sentence tells it of: a GI bleed on an NSAID for an earlier claim
    #: is a risk of this one's NSAID too.
    any_injury: bool = False
    #: Findings whose presence states this one when no mention of its own does: a home program that failed is
    #: conservative care that failed.
    implied_by: list[str] = Field(default_factory=list)
    #: Care (attribution keys) that, named with no gain or relief from it, states this fact: "Theraband HEP for
    #: two months without change" is a home program that failed.
    failed_care: list[str] = Field(default_factory=list)
    present: list[str] = Field(min_length=1)
    absent: list[str] = Field(default_factory=list)
    #: Phrases that state the fact however their sentence turns them: what a person cannot do at work, or cannot
    #: finish of a shift, says they work ("she cannot reach the top shelf at work").
    stated: list[str] = Field(default_factory=list)

    _check = field_validator("present", "absent", "stated", "kept")(compiles)


class Measures(_Entry):
    #: Pain scores before and after ("pain 8/10 -> 4/10", "pain 1/10 from 6/10"): groups ``before``, ``after``.
    pain_change: list[str] = Field(min_length=1)
    #: Pain scores on and off medication ("8/10 without medications and 4/10 with"): groups ``on``, ``off``.
    pain_on_off: list[str] = Field(default_factory=list)
    #: Disability indices before and after ("ODI 42% -> 28%": a fall is improvement), and measures of function
    #: ("LEFS 38 -> 55", "grip up from 18 to 32 lb": a rise is): groups ``before``, ``after``; "{count}" a count.
    disability_change: list[str] = Field(default_factory=list)
    function_change: list[str] = Field(default_factory=list)
    #: The least change, as a share of the first score, that counts as improvement ("DASH 58 -> 57" is none).
    meaningful_change: float = Field(default=0.1, ge=0, lt=1)

    @field_validator("pain_change")
    @classmethod
    def _before_after(cls, patterns: list[str]) -> list[str]:
        return _with_groups(patterns, "pain_change", "before", "after")

    @field_validator("disability_change", "function_change")
    @classmethod
    def _measured_before_after(cls, patterns: list[str]) -> list[str]:
        return _with_groups(patterns, "functional measure", "before", "after")

    @property
    def function_changes(self) -> list[tuple[str, bool]]:
        """Each functional measure's pattern, and whether a fall in it is improvement (a disability index)."""
        return [(p, True) for p in self.disability_change] + [(p, False) for p in self.function_change]

    @field_validator("pain_on_off")
    @classmethod
    def _on_off(cls, patterns: list[str]) -> list[str]:
        return _with_groups(patterns, "pain_on_off", "on", "off")


class DoseFrequency(_Entry):
    pattern: str
    per_day: float = Field(gt=0)

    _check = field_validator("pattern")(lambda cls, p: compiles([p])[0])


class Drug(_Entry):
    """One name a drug goes by (ingredient or brand), with its ingredient and class."""

    name: str
    ingredient: str
    drug_class: str
    rxnorm: str | None


#: A term a finding's phrase writes in braces ("{maneuver}"); "{count}" is the evidence reader's own (a count).
_TERM = re.compile(r"\{([a-z_]+)\}")
#: How many texts' regions a lexicon remembers (labels and sites: a few hundred in practice).
_REMEMBERED = 4096
#: A text whose region was not read yet (None is a region read: none).
_UNREAD = "\0unread"


class Lexicon(_Entry):
    assertion: Assertion
    #: Alternations several finding phrases share, written once and named in them in braces ("{maneuver}").
    terms: dict[str, str] = Field(default_factory=dict)
    regions: dict[str, list[str]]
    related_regions: dict[str, list[str]]
    #: The regions whose studies show a region too (a finding's ``region: imaged``).
    imaged_regions: dict[str, list[str]] = Field(default_factory=dict)
    #: The regions with a left and a right (the limbs'), and the words of each side ("both": either side).
    sided_regions: list[str]
    sides: dict[Literal["left", "right", "both"], list[str]]
    therapies: list[Therapy]
    drugs: dict[str, dict[str, Ingredient]]
    findings: dict[str, Finding]
    diagnoses: dict[str, list[str]]
    #: Words for a drug class as a whole ("NSAIDs", "narcotics"), "*" for drugs at all ("medications").
    class_words: dict[str, list[str]] = Field(default_factory=dict)
    #: Generic words that credit improvement to a kind of treatment ("with medications", "the injections").
    attribution: dict[str, list[str]] = Field(default_factory=dict)
    #: Treatments no request category reads as prior care but that improvement may be credited to.
    other_treatments: dict[str, list[str]] = Field(default_factory=dict)
    #: Conservative care by its attribution keys (therapies, generic words, other treatments; every drug class
    #: too): care of these that brought no gain or relief is conservative care that failed.
    conservative: list[str] = Field(default_factory=list)
    measures: Measures
    dose_frequencies: list[DoseFrequency]
    topical_not_recommended: list[str]
    topical_forms: list[str]

    @model_validator(mode="before")
    @classmethod
    def _terms_written_out(cls, data: Any) -> Any:
        """The finding phrases with each term in braces written out (a term the lexicon does not name is an
        error), before they are checked."""
        if not isinstance(data, dict) or not isinstance(data.get("findings"), dict):
            return data
        terms = data.get("terms") or {}

        def written_out(phrase: Any) -> Any:
            if not isinstance(phrase, str):
                return phrase
            unknown = {name for name in _TERM.findall(phrase) if name not in terms and name != "count"}
            if unknown:
                raise ValueError(f"a finding phrase names terms the lexicon does not define: {sorted(unknown)}")
            return _TERM.sub(lambda m: f"(?:{terms[m[1]]})" if m[1] in terms else m[0], phrase)

        findings = {}
        for name, finding in data["findings"].items():
            if isinstance(finding, dict):
                phrases = {k: finding[k] for k in ("present", "absent") if isinstance(finding.get(k), list)}
                finding = {**finding, **{k: [written_out(p) for p in v] for k, v in phrases.items()}}
            findings[name] = finding
        return {**data, "findings": findings}

    @field_validator("regions", "diagnoses", "attribution", "other_treatments", "class_words", "sides")
    @classmethod
    def _patterns(cls, table: dict[str, list[str]]) -> dict[str, list[str]]:
        for patterns in table.values():
            compiles(patterns)
        return table

    @model_validator(mode="after")
    def _related_are_regions(self) -> Lexicon:
        unknown = {r for table in (self.related_regions, self.imaged_regions) for rs in table.values() for r in rs}
        unknown |= set(self.related_regions) | set(self.imaged_regions) | set(self.sided_regions)
        unknown -= set(self.regions)
        if unknown:
            raise ValueError(
                f"related_regions, imaged_regions or sided_regions name regions not in regions: {sorted(unknown)}"
            )
        return self

    def bears_on(
        self,
        region: str,
        others: frozenset[str] | set[str],
        scope: Literal["any", "same", "related", "imaged"],
        side: str | None = None,
        sides: frozenset[str] = frozenset(),
    ) -> bool:
        """Whether a clause about ``others`` (regions, on ``sides``) bears on ``region`` (on ``side``): always for
        "any"; otherwise when it names no region, the same one, (for "related") a related one (the leg for the
        low back) or (for "imaged") one whose studies show it (the lumbar MRI for the leg's nerve studies), and not
        the other side of a limb ("L knee arthroscopy" says nothing of the right knee)."""
        if scope == "any" or not others:
            return True
        wider = self.related_regions if scope == "related" else self.imaged_regions if scope == "imaged" else {}
        near = {region, *wider.get(region, [])}
        if not others & near:
            return False
        return not (side and region in self.sided_regions and len(sides) == 1 and side not in sides)

    @cached_property
    def side_patterns(self) -> dict[str, re.Pattern[str]]:
        return {side: _alternatives(patterns) for side, patterns in self.sides.items()}

    def sides_in(self, text: str) -> frozenset[str]:
        """The sides a text names ("left", "right"; both for "bilateral")."""
        named = {side for side, pattern in self.side_patterns.items() if pattern.search(text)}
        return frozenset({"left", "right"} if "both" in named else named)

    def side(self, text: str) -> str | None:
        """The one side a text names (a request's), else None."""
        named = self.sides_in(text)
        return next(iter(named)) if len(named) == 1 else None

    @model_validator(mode="after")
    def _implied_by_findings(self) -> Lexicon:
        unknown = {name for f in self.findings.values() for name in f.implied_by} - set(self.findings)
        if unknown:
            raise ValueError(f"implied_by names findings not in findings: {sorted(unknown)}")
        return self

    @model_validator(mode="after")
    def _care_named_is_known(self) -> Lexicon:
        known = {t.name for t in self.therapies} | set(self.attribution) | set(self.other_treatments)
        unknown = set(self.conservative) - known
        if unknown:
            raise ValueError(f"conservative names care the lexicon does not know: {sorted(unknown)}")
        unknown = {care for f in self.findings.values() for care in f.failed_care} - known
        if unknown:
            raise ValueError(f"failed_care names care the lexicon does not know: {sorted(unknown)}")
        return self

    @cached_property
    def conservative_keys(self) -> frozenset[str]:
        """The attribution keys of conservative care, every drug class's among them."""
        return frozenset({*self.conservative, *(f"drug:{drug_class}" for drug_class in self.drugs)})

    @model_validator(mode="after")
    def _class_words_are_classes(self) -> Lexicon:
        unknown = set(self.class_words) - set(self.drugs) - {"*"}
        if unknown:
            raise ValueError(f"class_words names drug classes not in drugs: {sorted(unknown)}")
        return self

    @model_validator(mode="after")
    def _names_once(self) -> Lexicon:
        seen: dict[str, str] = {}
        for drug in self.drug_names:
            other = seen.setdefault(drug.name, drug.ingredient)
            if other != drug.ingredient:
                raise ValueError(f"the drug name {drug.name!r} stands for both {other} and {drug.ingredient}")
        return self

    @model_validator(mode="after")
    def _names_are_whole_words(self) -> Lexicon:
        ragged = [d.name for d in self.drug_names if not (d.name[:1].isalnum() and d.name[-1:].isalnum())]
        if ragged:  # names_pattern bounds each name with \b, which needs a letter or digit at both ends
            raise ValueError(f"drug names must begin and end with a letter or digit: {ragged}")
        return self

    # --- derived vocabularies -------------------------------------------------------------------------

    @cached_property
    def drug_names(self) -> list[Drug]:
        """Every ingredient and brand name, longest first (so "tylenol #3" wins over a shorter name)."""
        names = [
            Drug(name=name.lower(), ingredient=ingredient, drug_class=cls, rxnorm=entry.rxnorm)
            for cls, ingredients in self.drugs.items()
            for ingredient, entry in ingredients.items()
            for name in (ingredient, *entry.brands)
        ]
        return sorted(names, key=lambda d: -len(d.name))

    @cached_property
    def drug_by_name(self) -> dict[str, Drug]:
        return {d.name: d for d in self.drug_names}

    def names_pattern(self, drug_class: str = "*") -> re.Pattern[str]:
        """The names of one drug class (or every drug, "*") as one pattern of whole names (each begins and ends
        with a letter or digit, checked at load)."""
        names = "|".join(re.escape(d.name) for d in self.drug_names if drug_class in ("*", d.drug_class))
        return re.compile(rf"\b(?:{names})\b", re.IGNORECASE)

    @cached_property
    def drug_pattern(self) -> re.Pattern[str]:
        return self.names_pattern()

    def drugs_in(self, text: str) -> list[Drug]:
        """The drugs a text names, in order, once each."""
        found: dict[str, Drug] = {}
        for match in self.drug_pattern.finditer(text):
            drug = self.drug_by_name[match.group(0).lower()]
            found.setdefault(drug.ingredient, drug)
        return list(found.values())

    def drug_class(self, text: str) -> str | None:
        """The class of the first drug a text names."""
        found = self.drugs_in(text)
        return found[0].drug_class if found else None

    def therapy_name(self, text: str, following: str = "") -> str | None:
        """The therapy a phrase names ("PT" -> physical therapy); ``following``: the words after it, for the names
        only words after them make ("aquatic" before "sessions")."""
        text = text.strip()
        for therapy in self.therapies:
            if any(re.fullmatch(w, text, re.IGNORECASE) for w in therapy.words):
                return therapy.name
        for therapy in self.therapies:
            for word in therapy.words:
                named = re.match(word, text + following, re.IGNORECASE)
                if named is not None and named.end() == len(text):
                    return therapy.name
        return None

    def therapies_of(self, category: str) -> list[Therapy]:
        """The therapies a request category counts as care of its kind (physical therapy, aquatic, massage, therapy
        unnamed)."""
        return [t for t in self.therapies if t.category == category or category in t.of]

    def therapies_credited_for(self, category: str) -> list[Therapy]:
        """The therapies of a request category and those its case rests on (a medial branch block for an RFA), but
        devices (whose relief and gains are credited to no one care)."""
        return [t for t in self.courses if t.category == category or category in t.credited_for + t.of]

    def therapies_denying(self, category: str) -> list[Therapy]:
        """The care named in general whose denial counts for a request category ("no injections to date")."""
        return [t for t in self.therapies if category in t.denies]

    @cached_property
    def therapy_by_name(self) -> dict[str, Therapy]:
        return {t.name: t for t in self.therapies}

    def therapy_for(self, category: str) -> Therapy | None:
        """The therapy counted as prior care for a request category (the first one listed)."""
        return next((t for t in self.therapies if t.category == category), None)

    @cached_property
    def region_patterns(self) -> dict[str, re.Pattern[str]]:
        return {region: _alternatives(patterns) for region, patterns in self.regions.items()}

    @cached_property
    def diagnosis_patterns(self) -> dict[str, re.Pattern[str]]:
        return {group: _alternatives(patterns) for group, patterns in self.diagnoses.items()}

    @cached_property
    def _regions_read(self) -> dict[str, str | None]:
        return {}

    def region(self, text: str | None) -> str | None:
        """The body region a text names first (by position), if any; remembered for the labels met again (every
        request of a kind names its region in the same words)."""
        if not text:
            return None
        read = self._regions_read  # one get and one set: safe beside the other threads that read
        known = read.get(text, _UNREAD)
        if known is not _UNREAD:
            return known
        best: tuple[int, str] | None = None
        for name, pattern in self.region_patterns.items():
            found = pattern.search(text)
            if found and (best is None or found.start() < best[0]):
                best = (found.start(), name)
        region = best[1] if best else None
        if len(read) >= _REMEMBERED:
            read.clear()
        read[text] = region
        return region

    @cached_property
    def region_set(self) -> PatternSet:
        return PatternSet(self.region_patterns)

    def regions_in(self, text: str, plain: bool | None = None) -> set[str]:
        """The body regions a text names (``plain``: whether ``text`` is a copy ``scan.searchable`` made)."""
        return self.region_set.names_in(text, plain)

    def doses_per_day(self, sig: str) -> float | None:
        """Doses a day a sig states ("1 tab twice daily" -> 2): the frequency written first, the longest
        reading of it ("twice daily", not the "daily" inside it)."""
        found = []
        for entry in self.dose_frequencies:
            match = re.search(rf"\b(?:{entry.pattern})(?!\w)", sig, re.IGNORECASE)
            if match:
                found.append((match.start(), -len(match[0]), entry.per_day))
        return min(found)[2] if found else None

    def topical_form(self, text: str) -> str | None:
        found = re.search("|".join(rf"\b{re.escape(f)}\b" for f in self.topical_forms), text, re.IGNORECASE)
        return found[0].lower().removesuffix(" base") if found else None

    @cached_property
    def therapy_set(self) -> PatternSet:
        """Each therapy by its words."""
        return PatternSet({t.name: _alternatives(t.words) for t in self.therapies})

    def therapies_in(self, text: str) -> set[str]:
        """The therapies a text names."""
        return self.therapy_set.names_in(text)

    @cached_property
    def courses(self) -> list[Therapy]:
        """The therapies given as courses of visits, of which counts are read (not devices such as TENS)."""
        return [t for t in self.therapies if not t.device]

    def courses_in(self, text: str) -> set[str]:
        """The courses of visits a text names; care named in general only where it names no other ("12 PT visits
        ... 24 sessions of therapy" are physical therapy)."""
        named = {name for name in self.therapies_in(text) if not self.therapy_by_name[name].device}
        return {name for name in named if not self.therapy_by_name[name].of} or named

    @cached_property
    def attribution_patterns(self) -> dict[str, re.Pattern[str]]:
        """Treatments a sentence may credit improvement to: each therapy, each drug class, generic words."""
        out = dict(self.therapy_set.patterns)
        out |= {f"drug:{cls}": self.names_pattern(cls) for cls in self.drugs}
        out |= {key: _alternatives(words) for key, words in (self.attribution | self.other_treatments).items()}
        return out

    @cached_property
    def attribution_set(self) -> PatternSet:
        return PatternSet(self.attribution_patterns)


LEXICON = TableFile("lexicon.yaml", Lexicon)
