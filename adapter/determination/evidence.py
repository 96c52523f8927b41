"""Evidence: what the clinical text documents, each fact with a status and the words it rests on.

A fact is ``present`` (stated: "positive straight leg raise on the left"), ``absent`` (stated as absent:
"neurologically intact", "therapy has not helped") or ``unknown`` (not mentioned, or only mentioned in a
plan, a condition, about someone else or about another injury). Silence is never absence.

One NLP pass per text: spaCy's rule-based sentencizer, medspacy's target matcher with the lexicon's phrases
(``mappings/lexicon.yaml``) as target rules, and medspacy's ConText with its default modifiers plus the
lexicon's (negation, history, plans and requests, other experiencers, other injuries, and clause
boundaries that end a modifier's scope). The pipeline is built once per process.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from adapter.lexicon import Lexicon, load_lexicon

Status = Literal["present", "absent", "unknown"]
#: ConText categories the adapter reads (medspacy's defaults use the first four names too).
NEGATED, HISTORICAL, HYPOTHETICAL, FAMILY, OTHER_INJURY = (
    "NEGATED_EXISTENCE", "HISTORICAL", "HYPOTHETICAL", "FAMILY", "OTHER_INJURY"
)  # fmt: skip
_GROUP = "imr_targets"
# medspacy's matcher warns on every document that its (unused) token-pattern matcher is empty
warnings.filterwarnings("ignore", message=r"\[W036\]", category=UserWarning)
_QUOTE_MAX = 300


class Finding(BaseModel):
    """One fact's status and the words it rests on (the sentence, where it came from, the offsets of the
    phrase in that source's text)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fact: str
    status: Status
    quote: str | None = None
    source: str | None = None
    start: int | None = None
    end: int | None = None


class Text(NamedTuple):
    """A piece of clinical text and where it came from ("letter: clinical case summary",
    "DocumentReference/7", "ServiceRequest/3.note[0]")."""

    source: str
    text: str


@dataclass(frozen=True)
class Mention:
    """A lexicon phrase found in a text, with what ConText says about it."""

    kind: str  # finding, therapy or drug
    name: str  # the fact, therapy or ingredient
    polarity: Literal["present", "absent"]
    modifiers: frozenset[str]
    sentence: str
    regions: frozenset[str]
    source: str
    start: int
    end: int

    @property
    def counts(self) -> bool:
        """Not a plan, a condition, someone else's or another injury's."""
        return not self.modifiers & {HYPOTHETICAL, FAMILY, OTHER_INJURY}

    def finding(self, fact: str, status: Status) -> Finding:
        return Finding(fact=fact, status=status, quote=self.sentence, source=self.source, start=self.start,
                       end=self.end)  # fmt: skip


def _direction(direction: str) -> str:
    return direction.upper()


_PIPELINES: dict[int, tuple[Lexicon, Any]] = {}


def _pipeline(lexicon: Lexicon) -> Any:
    """The NLP pipeline for a lexicon, built once per process (per lexicon object)."""
    cached = _PIPELINES.get(id(lexicon))
    if cached is None or cached[0] is not lexicon:
        _PIPELINES[id(lexicon)] = cached = (lexicon, _build(lexicon))
    return cached[1]


def _build(lexicon: Lexicon) -> Any:
    import spacy
    from loguru import logger
    from medspacy.context import ConTextRule
    from medspacy.ner import TargetRule

    logger.disable("PyRuSH")  # not used here, but medspacy imports it; keep its DEBUG lines away
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    matcher: Any = nlp.add_pipe("medspacy_target_matcher", config={"result_type": "group", "span_group_name": _GROUP})
    rules = []
    for fact, finding in lexicon.findings.items():
        for polarity in ("present", "absent"):
            for n, pattern in enumerate(getattr(finding, polarity)):
                rules.append(TargetRule(f"{fact}.{polarity}.{n}", f"finding|{fact}|{polarity}", pattern=pattern))
    for therapy in lexicon.therapies:
        for n, word in enumerate(therapy.words):
            rules.append(
                TargetRule(f"{therapy.name}.{n}", f"therapy|{therapy.name}|present", pattern=rf"\b(?:{word})\b")
            )
    names = "|".join(re.escape(d.name) for d in lexicon.drug_names)
    rules.append(TargetRule("drug", "drug||present", pattern=rf"(?<![\w#])(?:{names})(?!\w)"))
    matcher.add(rules)
    context: Any = nlp.add_pipe(
        "medspacy_context", config={"rules": "default", "input_span_type": "group", "span_group_name": _GROUP}
    )
    cues = lexicon.assertion
    context.add(
        [ConTextRule(c.phrase, category, direction=_direction(c.direction))
         for category, group in ((NEGATED, cues.negated), (HISTORICAL, cues.historical),
                                 (HYPOTHETICAL, cues.hypothetical), (FAMILY, cues.other_experiencer),
                                 (OTHER_INJURY, cues.other_injury))
         for c in group]
        + [ConTextRule(word, "TERMINATE", direction="TERMINATE") for word in cues.terminate]
    )  # fmt: skip
    return nlp


def mentions(texts: Sequence[Text], lexicon: Lexicon | None = None) -> list[Mention]:
    """Every lexicon phrase in the texts, with its ConText modifiers and sentence."""
    lexicon = lexicon or load_lexicon()
    nlp = _pipeline(lexicon)
    found: list[Mention] = []
    for source, text in texts:
        if not text.strip():
            continue
        doc = nlp(text)
        for span in doc.spans.get(_GROUP, []):
            kind, name, polarity = span.label_.split("|")
            if kind == "drug":
                drug = next((d for d in lexicon.drug_names if d.name == span.text.lower()), None)
                name = drug.ingredient if drug else span.text.lower()
            sentence = span.sent.text.strip()
            found.append(
                Mention(
                    kind=kind,
                    name=name,
                    polarity="absent" if polarity == "absent" else "present",
                    modifiers=frozenset(m.category for m in span._.modifiers),
                    sentence=sentence if len(sentence) <= _QUOTE_MAX else sentence[: _QUOTE_MAX - 1] + "…",
                    regions=frozenset(lexicon.regions_in(sentence)),
                    source=source,
                    start=span.start_char,
                    end=span.end_char,
                )
            )
        found += _pain_changes(source, text, lexicon)
    return found


def _pain_changes(source: str, text: str, lexicon: Lexicon) -> list[Mention]:
    """Pain scores before and after ("pain 8/10 -> 4/10"): a fall is pain relief, and improvement."""
    out = []
    for match in re.finditer(lexicon.measures.pain_change, text, re.IGNORECASE):
        before, after = int(match["before"]), int(match["after"])
        if before > 10 or after > 10:
            continue
        polarity: Literal["present", "absent"] = "present" if after < before else "absent"
        start = text.rfind(".", 0, match.start()) + 1
        stop = text.find(".", match.end())
        sentence = text[start : stop + 1 if stop >= 0 else len(text)].strip()[:_QUOTE_MAX]
        for fact in ("pain_relief", "functional_improvement") if polarity == "present" else ("pain_relief",):
            out.append(Mention("finding", fact, polarity, frozenset(), sentence, frozenset(), source, match.start(),
                               match.end()))  # fmt: skip
    return out


def finding(
    fact: str, found: Sequence[Mention], lexicon: Lexicon | None = None, *, region: str | None = None
) -> Finding:
    """A fact's status from the mentions: stated present, stated absent, or unknown (with the lexicon's rule
    for both at once). With ``region``, a mention in a sentence about other body regions only does not count."""
    lexicon = lexicon or load_lexicon()
    rule = lexicon.findings[fact]
    present: list[Mention] = []
    absent: list[Mention] = []
    for m in found:
        if m.kind != "finding" or m.name != fact or not m.counts:
            continue
        if region and not lexicon.bears_on(region, m.regions):
            continue
        if m.polarity == "absent":
            absent.append(m)  # an absence phrase carries its own negation
        elif NEGATED in m.modifiers:
            absent.append(m)
        elif rule.history or HISTORICAL not in m.modifiers:
            present.append(m)
    if present and absent and rule.conflict == "unknown":
        return Finding(fact=fact, status="unknown", quote=f"{present[0].sentence} / {absent[0].sentence}",
                       source=present[0].source)  # fmt: skip
    if present:
        return present[0].finding(fact, "present")
    if absent:
        return absent[0].finding(fact, "absent")
    return Finding(fact=fact, status="unknown")


def therapy_finding(
    therapy: str, found: Sequence[Mention], *, region: str | None, fact: str, lexicon: Lexicon | None = None
) -> Finding:
    """Whether earlier care of a kind is documented for this injury and region: a course given (present),
    stated as never given (absent: "has not had physical therapy"), or unknown. Plans, requests,
    recommendations, other people, other injuries and other body regions do not count."""
    lexicon = lexicon or load_lexicon()
    present: list[Mention] = []
    absent: list[Mention] = []
    for m in found:
        if m.kind != "therapy" or m.name != therapy or not m.counts:
            continue
        if region and not lexicon.bears_on(region, m.regions):
            continue
        (absent if NEGATED in m.modifiers else present).append(m)
    if present:
        return present[0].finding(fact, "present")
    if absent:
        return absent[0].finding(fact, "absent")
    return Finding(fact=fact, status="unknown")


def drugs_in_use(found: Sequence[Mention]) -> list[Mention]:
    """Drug mentions that say the drug is taken: not negated, planned, stopped in the past or someone else's."""
    return [m for m in found if m.kind == "drug" and m.counts and not m.modifiers & {NEGATED, HISTORICAL}]


def drugs_planned(found: Sequence[Mention]) -> list[Mention]:
    """Drug mentions in a plan or request ("will start tramadol", "a trial of Norco is requested")."""
    return [m for m in found if m.kind == "drug" and HYPOTHETICAL in m.modifiers and NEGATED not in m.modifiers]
