"""Text helpers every layout shares: normalising extracted text, dates, ages, citations, quantities.

Everything here is a pure function of a string. Patterns read structure (labels, numbers, sentence
shapes), never a particular letter's wording.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from functools import lru_cache

from adapter.categories import CATEGORIES
from adapter.lexicon import LEXICON
from adapter.model import Gender, GuidelineBasis, GuidelineCitation, TreatmentFact
from adapter.tables import mappings

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\u200b\ufeff]")
_OTHER_SPACE = re.compile(r"[^\S\n ]")  # tabs, form feeds, no-break and other Unicode spaces


def normalise(text: str) -> str:
    """Unify line endings and spaces, drop control characters, strip trailing blanks on each line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _OTHER_SPACE.sub(" ", _CONTROL.sub("", text))
    return "\n".join(line.rstrip() for line in text.split("\n"))


def collapse(text: str) -> str:
    """Collapse every run of whitespace (line breaks included) to one space."""
    return " ".join(text.split())


def heading_pattern(heading: str) -> re.Pattern[str]:
    """A pattern for a heading whose words may be split over lines or spaced unevenly."""
    words = [re.escape(w) for w in heading.split()]
    return re.compile(r"\s+".join(words), re.IGNORECASE)


# --- numbers -------------------------------------------------------------------------------------------

_UNITS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
          "nineteen"]  # fmt: skip
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_NUMBER_WORDS = {
    **{w: n for n, w in enumerate(_UNITS, 1)},
    **{w: n for n, w in enumerate(_TEENS, 10)},
    **{w: n for w, n in zip(_TENS, range(20, 100, 10), strict=True)},
    "once": 1, "twice": 2, "single": 1, "a dozen": 12, "one dozen": 12, "half a dozen": 6, "a half dozen": 6,
    "half dozen": 6, "two dozen": 24, "three dozen": 36,
}  # fmt: skip
#: The count words not made with tens ("a dozen", "twice"), longest first.
_OTHER_WORDS = sorted((w for w in _NUMBER_WORDS if w.split()[0] not in _TENS), key=len, reverse=True)
_UNDER_HUNDRED = rf"(?:{'|'.join(_TENS)})(?:[- ](?:{'|'.join(_UNITS)}))?|{'|'.join(_TEENS)}|{'|'.join(_UNITS)}"
#: A count in digits or words, to nine hundred and ninety-nine ("twenty-six", "twenty six", "a dozen", "a
#: half-dozen", "one hundred forty").
NUMBER = (
    rf"(?:\d{{1,3}}|(?:a|{'|'.join(_UNITS)})[- ]hundred(?:[- ](?:and[- ])?(?:{_UNDER_HUNDRED}))?"
    rf"|(?:{'|'.join(_TENS)})(?:[- ](?:{'|'.join(_UNITS)}))?"
    rf"|{'|'.join(w.replace(' ', '[ -]') for w in _OTHER_WORDS)})"
)


def to_int(token: str) -> int | None:
    """A count written as digits or as English words (to nine hundred and ninety-nine, dozens); None when it is
    neither."""
    token = re.sub(r"[\s-]+", " ", token.lower().strip())
    if token.isdigit():
        return int(token)
    hundreds, hundred, rest = token.partition(" hundred")
    if hundred and (hundreds == "a" or hundreds in _UNITS):
        rest = rest.removeprefix(" and").strip()
        if rest and not re.fullmatch(_UNDER_HUNDRED, rest):
            return None
        return 100 * _NUMBER_WORDS.get(hundreds, 1) + (to_int(rest) or 0)
    if token in _NUMBER_WORDS:
        return _NUMBER_WORDS[token]
    tens, _, unit = token.partition(" ")
    if tens in _TENS and unit in _UNITS:
        return _NUMBER_WORDS[tens] + _NUMBER_WORDS[unit]
    return None


# --- dates ---------------------------------------------------------------------------------------------

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
         "november", "december"]
    )
}  # fmt: skip
NUMERIC_DATE = r"\d{1,2}\s?[/-]\s?\d{1,2}\s?[/-]\s?(?:\d{4}|\d{2})"
WORDED_DATE = r"(?:" + "|".join(m.title() for m in _MONTHS) + r")\s+\d{1,2},\s+\d{4}"
DATE = rf"(?:{NUMERIC_DATE}|{WORDED_DATE})"


def parse_date(text: str) -> date | None:
    """Read 10/13/2016, 10-13-16, 7/1/2014 or "December 21, 2016"; None if it is not a real date."""
    text = text.strip()
    worded = re.fullmatch(r"([A-Za-z]+)\s+(\d{1,2}),\s+(\d{4})", text)
    if worded:
        month = _MONTHS.get(worded[1].lower())
        day, year = int(worded[2]), int(worded[3])
    else:
        numeric = re.fullmatch(r"(\d{1,2})\s?[/-]\s?(\d{1,2})\s?[/-]\s?(\d{4}|\d{2})", text)
        if not numeric:
            return None
        month, day, year = int(numeric[1]), int(numeric[2]), int(numeric[3])
        if year < 100:
            year += 2000 if year < 70 else 1900
    if month is None:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


# --- patient -------------------------------------------------------------------------------------------

_AGE_SEX = re.compile(
    r"\b(\d{1,3})[\s-]*(?:years?|yrs?|y/o)[\s-]*(?:old|of\s+age)?[\s,-]*"
    r"(male|female|man|woman|gentleman|lady|boy|girl)\b",
    re.IGNORECASE,
)
_SEX_WORDS = {
    "male": Gender.MALE, "man": Gender.MALE, "gentleman": Gender.MALE, "boy": Gender.MALE,
    "female": Gender.FEMALE, "woman": Gender.FEMALE, "lady": Gender.FEMALE, "girl": Gender.FEMALE,
}  # fmt: skip
_AGE_ONLY = re.compile(r"\b(\d{1,3})[\s-]*(?:years?|yrs?)[\s-]*old\b", re.IGNORECASE)


_HE = re.compile(r"\b(?:he|him|his|himself)\b", re.IGNORECASE)
_SHE = re.compile(r"\b(?:she|her|hers|herself)\b", re.IGNORECASE)


def _pronoun_sex(text: str) -> Gender | None:
    """The sex the summary's pronouns state, when they all agree (at least twice); else None."""
    he, she = len(_HE.findall(text)), len(_SHE.findall(text))
    if he >= 2 and she == 0:
        return Gender.MALE
    if she >= 2 and he == 0:
        return Gender.FEMALE
    return None


def age_and_gender(summary: str) -> tuple[int | None, Gender | None]:
    """The first "48 year old male" style statement in a case summary; without a sex word there, the
    summary's pronouns when they all agree ("He/she" boilerplate does not count: it names both)."""
    flat = collapse(summary)
    found = _AGE_SEX.search(flat)
    if found:
        return int(found[1]), _SEX_WORDS[found[2].lower()]
    age_only = _AGE_ONLY.search(flat)
    return (int(age_only[1]) if age_only else None), _pronoun_sex(flat)


# --- diagnoses and treatment history -------------------------------------------------------------------

_DIAGNOSIS_LEADS = re.compile(
    r"(?:diagnos[ie]s\s+(?:are|is|were|was|include[sd]?|have\s+included|that\s+include)"
    r"(?:\s+documented\s+as)?|diagnos[ie]s\s+of|diagnosed\s+(?:with|as\s+having)|"
    r"(?:being|been)\s+treated\s+for|diagnos[ie]s\s*:)\s*:?\s*",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"\.(?=\s+(?:[A-Z(]|$))|\.$")
_NUMBERED = re.compile(r"(?:^|\s)\d{1,2}[.)]\s+")


def diagnoses(summary: str) -> list[str]:
    """Diagnoses stated in the summary: numbered or semicolon lists split, otherwise the phrase whole."""
    flat = collapse(summary)
    lead = _DIAGNOSIS_LEADS.search(flat)
    if not lead:
        return []
    rest = flat[lead.end() :]
    if re.match(r"\d{1,2}[.)]\s", rest):
        parts = _NUMBERED.split(rest)
        found: list[str] = []
        for part in parts[1:]:
            end = _SENTENCE_END.search(part)
            found.append(part[: end.start()] if end else part)
            if end and not re.match(r"\s*$", part[end.end() :]):
                break
        return [d.strip(" .;,") for d in found if d.strip(" .;,")]
    end = _SENTENCE_END.search(rest)
    sentence = rest[: end.start()] if end else rest
    sentence = re.sub(r"^(?:a|an|the)\s+", "", sentence.strip(), flags=re.IGNORECASE)
    parts = [p.strip(" .,") for p in re.split(r";\s*(?:and\s+)?", sentence)]
    return [re.sub(r"^(?:and|a|an)\s+", "", p) for p in parts if p]


_UNIT = r"(?:sessions?|visits?|treatments?|tx|adjustments?)"
#: Where a count of care may stand: a unit word, "x6", an injection (its own unit), or "completed 6 PT" ("compl").
_TRIGGER = re.compile(
    rf"{_UNIT}|\bx\s?\d|\b(?:TF|IL|C|L)?ESIs?\b|\binj(?:ections?)?\b|\bepidurals?\b|\bblocks?\b|\bCSIs?\b|\bTPIs?\b|"
    rf"\bRFAs?\b|\b(?:completed|compl|attended|finished|done|had|s/p)\b|\btimes\b|#\s?\d|-(?:visit|session)\b",
    re.IGNORECASE,
)


@lru_cache(maxsize=1)
def _history_forms() -> list[re.Pattern[str]]:
    """The forms a count of care had takes, each with the count (``n``; none: one) and the therapy (``t``), therapy
    names from the lexicon."""
    lexicon = mappings()[LEXICON]
    therapy = "|".join(f"(?:{w})" for t in lexicon.courses for w in t.words)
    injections = mappings()[CATEGORIES].injections  # "three prior ESIs", "2 subacromial CSIs"
    injection = "|".join(f"(?:{w})" for t in lexicon.therapies if t.category in injections for w in t.words)
    said = r"(?:\s*\(\d{1,3}\))?"  # a count in words with its digits after it: "twelve (12)"
    number = rf"(?<![\w/.-])(?P<n>{NUMBER})"  # a number of its own, not a level's ("L4-5 ESI") or a date's
    of_all = rf"(?:\s+(?:out\s+)?of\s+(?:the\s+)?{NUMBER})?"  # "OT 5 of 8 visits"
    forms = [
        # "12 sessions of physical therapy", "6 sessions PT"
        rf"\b{number}{said}\s+(?:(?:prior|previous|completed|authorized|approved|additional)\s+)?{_UNIT}\s+(?:of\s+)?"
        rf"(?:(?:post-?op(?:erative)?|postoperative|prior|formal)\s+)?(?P<t>{therapy})\b",
        # "6 prior chiropractic visits", "8 post-op OT visits"
        rf"\b{number}{said}\s+(?:(?:prior|previous|completed|authorized|approved|certified|post-?op(?:erative)?|"
        rf"formal|supervised)\s+){{0,2}}(?P<t>{therapy})\s+{_UNIT}\b",
        # "chiro x6", "acupuncture times six"
        rf"\b(?P<t>{therapy})(?:\s*(?:x|×)\s*|\s+times\s+)(?P<n>{NUMBER})\b",
        # "ESI L4-5 x2", "TPI R trapezius x3" (not "ESI x2 levels")
        rf"\b(?P<t>{injection})(?:\s+(?:[CLTS]\d(?:-[CLTS]?\d)?|R|L|right|left|bilat(?:eral)?|trapezius|rhomboid)){{1,2}}"
        rf"\s*(?:x|×)\s*(?P<n>{NUMBER})\b(?!\s*(?:levels?|sites?|areas?))",
        # "acupuncture for 8 sessions"
        rf"\b(?P<t>{therapy})\s+(?:for|over)\s+{number}{said}\s+{_UNIT}\b",
        # "three prior ESIs", "two L4-5 ESIs", "2 subacromial CSIs", "3 prior rounds of TPIs", "a series of 3 Euflexxa
        # injections", "two prior left L5-S1 transforaminal ESIs"
        rf"\b{number}{said}\s+(?:(?:prior|previous|lumbar|cervical|thoracic|caudal|transforaminal|interlaminar|"
        rf"steroid|R|L|right|left|bilateral|diagnostic|SI|sacroiliac|subacromial|knee|shoulder|hip|rounds?\s+of|"
        rf"series\s+of|sets?\s+of|[CLTS]\d(?:-[CLTS]?\d)?|trapezius|gluteal|paraspinal)\s+){{0,4}}(?P<t>{injection})",
        # "had an L5-S1 ESI in 2021": one
        rf"\b(?:had|received|underwent)\s+(?:an?|one)\s+(?:(?:prior|previous|R|L|right|left|bilateral|lumbar|cervical|"
        rf"caudal|transforaminal|interlaminar|[CLTS]\d(?:-[CLTS]?\d)?)\s+){{0,3}}(?P<t>{injection})",
        # "her first and only L5-S1 ESI"
        rf"\b(?:first and only|one and only|only|single)\s+"
        rf"(?:(?:prior|previous|lumbar|cervical|[CLTS]\d(?:-[CLTS]?\d)?)\s+){{0,2}}(?P<t>{injection})",
        # "34 sessions of PT and 18 of chiropractic"
        rf"\band\s+{number}\s+of\s+(?P<t>{therapy})\b",
        # "completed 6 PT", "s/p 8 PT", "S/P 24 PO PT", "has done 10 PT"
        rf"\b(?:completed|compl\.?|had|done|attended|finished|s/p)\s+{number}\s+(?:(?:PO|post-?op(?:erative)?)\s+)?(?P<t>{therapy})\b"
        rf"(?!\s+{_UNIT})",
        # "chiropractic care, 8 visits in 2024", "PT (12 visits)"
        rf"\b(?P<t>{therapy})(?:\s+care)?(?:,\s+|\s+\()\s*{number}\s+{_UNIT}\b",
        # "Chiro 12 visits in '22", "Prior OT: twelve sessions", "PT 10 visits done", "OT 5 of 8 visits done"
        rf"\b(?P<t>{therapy}):?\s+{number}{of_all}\s+(?:prior\s+|previous\s+)?{_UNIT}\b"
        rf"(?!\s*(?:a|per|/|each|every)\s*(?:week|wk|month|day))",
        # "a six-visit trial of acupuncture"
        rf"\b{number}-(?:visit|session|treatment)\s+(?:trial|course|program|series)\s+of\s+(?P<t>{therapy})\b",
        # "acupuncture #8"
        rf"\b(?P<t>{therapy})\s*#\s*(?P<n>\d{{1,3}})\b",
        # "has been to the chiropractor a dozen times"
        rf"\b(?:been\s+to|seen|visited|saw)\s+(?:the\s+|a\s+)?(?P<t>{therapy})\s+{number}\s+times\b",
        # "PT 12/12 completed", "PT: 6/6 completed", "6/6 PT visits"
        rf"\b(?P<t>{therapy}):?\s+(?P<n>\d{{1,2}})/\d{{1,2}}\s+(?:{_UNIT}\s+)?(?:completed|attended|done|used)\b",
        rf"(?<![\w/.-])(?P<n>\d{{1,2}})/\d{{1,2}}\s+(?:(?:authorized|approved|certified)\s+)?(?P<t>{therapy})\s+(?:visits|sessions)\b",
        # "completed 12/12 PO PT"
        rf"\b(?:completed|attended|finished)\s+(?P<n>\d{{1,2}})/\d{{1,2}}\s+(?:(?:PO|post-?op(?:erative)?|formal)\s+)?"
        rf"(?P<t>{therapy})\b",
        # "s/p R L5-S1 TFESI 2/10": one
        rf"\b(?:s/p|status\s+post)\s+(?:(?:an?|one|the|prior|previous|R|L|right|left|bilateral|[CLST]\d(?:-[CLST]?\d)?|"
        rf"lumbar|cervical|caudal|transforaminal|interlaminar|steroid)\s+){{0,4}}(?P<t>{injection})\b",
    ]
    return [re.compile(form, re.IGNORECASE) for form in forms]


#: A count whose therapy the sentence names elsewhere: "after 8 sessions", "she has attended eleven", "care to
#: date totals a dozen visits", "she attended only seven before moving", "no gains after the first 6" (not "the first
#: one").
_BARE_COUNT = re.compile(
    rf"\b(?:after|following|despite|completed|attended|finished|had|did|used|done|received|undergone|documented|"
    rf"totals?|totaled|totalled|a\s+total\s+of)\s+"
    rf"(?:the\s+|those\s+|these\s+)?(?:first\s+(?!one\b)|only\s+|all\s+)?(?P<n>{NUMBER})(?:th|st|nd|rd)?"
    rf"(?:\s+{_UNIT}|(?=\s*[.;,]|\s+(?:before|so\s+far|to\s+date|of\s+them)\b|$))"
    # "10 visits so far", "roughly twenty visits in all", "only four of them attended"
    rf"|\b(?P<m>{NUMBER})\s+{_UNIT}\s+(?:(?:so\s+far|to\s+date|in\s+all|in\s+total|total)\b|per\s+(?:pt|patient)\b|"
    rf"(?:completed|attended|done)\b)"
    # "completed 9 of the 12 authorized sessions", "8 of 12 visits completed", "6 of 6 auth'd PT visits", "8/12 visits
    # completed"
    rf"|\b(?:completed|attended|finished)\s+(?P<g>{NUMBER})\s+of\s+(?:the\s+)?{NUMBER}\s+(?:[\w'/-]+\s+){{0,2}}?{_UNIT}\b"
    rf"|\b(?P<f>{NUMBER})(?:\s+of\s+(?:the\s+)?|/){NUMBER}\s+(?:[\w'/-]+\s+){{0,2}}?{_UNIT}\s+(?:completed|attended|done)\b"
    # "all six are done", "all 6 authorized visits were attended", "seven of the eight were attended"
    rf"|\ball\s+(?P<v>{NUMBER})\s+(?:(?:authorized|approved|certified)\s+)?(?:{_UNIT}\s+)?"
    rf"(?:are|were|have\s+been|has\s+been|had\s+been)\s+(?:now\s+)?(?:completed|attended|done|finished|used)\b"
    rf"|\b(?P<k>{NUMBER})\s+of\s+(?:them|those|these|the\s+{NUMBER})(?:\s+{_UNIT})?\s+"
    rf"(?:were\s+|have\s+been\s+|had\s+been\s+)?(?:attended|completed|used|done)\b"
    rf"|\bonly\s+(?P<e>{NUMBER})\s+(?:were|was)\s+(?:attended|completed|used|done)\b"  # "only three were attended"
    # "the 6 visits certified 2/2, of which only 2 have been used", "he has attended four of those six", "attended 3 of
    # these to date"
    rf"|\bof\s+which\s+(?:only\s+)?(?P<t>{NUMBER})\s+(?:(?:have|has)\s+been|were|was)\s+(?:attended|used|completed|done)\b"
    rf"|\b(?:attended|used|completed)\s+(?:only\s+)?(?P<u>{NUMBER})\s+of\s+(?:these|those|them)\b"
    # "six visits authorized in January, four attended, two cancelled"; "certified 6 sessions; 3 attended so far"
    rf"|[,;]\s+(?P<l>{NUMBER})\s+(?:attended|completed)(?=\s*[,.;]|\s+(?:so\s+far|to\s+date)\b)"
    rf"|\((?P<j>{NUMBER})\s+(?:done|completed|attended|used)\)"
    # "attendance 16 of 20 sessions", "attendance at 9 visits" (not "attendance: 2x/week")
    rf"|\battendance(?:\s+at|:)?\s+(?P<w>{NUMBER})\b(?!\s*(?:x\b|/|per\b|times\b|a\s+week))"
    # "(approx 12 visits)", "before the 6 sessions", "the first 6 tx"
    rf"|\((?:approx\.?\s+|about\s+|~\s?|approximately\s+)?(?P<i>{NUMBER})\s+{_UNIT}\)"
    rf"|\b(?:before|since)\s+the\s+(?:first\s+)?(?P<h>{NUMBER})\s+{_UNIT}\b"
    # "no gains from the prior 12 visits", "after the initial 6 visits"
    rf"|\b(?:prior|previous|initial)\s+(?P<p>{NUMBER})\s+{_UNIT}\b"
    # "from 8/10 to 5/10 over ten visits", "no change over the 6 post-op visits" (not "over the next 6 visits"),
    # "visits one through nine", "PT visits 1-8"
    rf"|\bover\s+(?:the\s+)?(?:first\s+|past\s+|last\s+|prior\s+)?(?P<o>{NUMBER})\s+(?:post-?op\s+|prior\s+|previous\s+)?{_UNIT}\b"
    rf"|\b(?:visits|sessions|treatments)\s+(?:one|1)\s*(?:through|thru|-|to)\s*(?P<q>{NUMBER})\b"
    # "Visits: 16", "Sessions to date: 8" (not "Visits: 2x/wk", "Sessions: 12 authorized"); "visit #4 of 6" (today's
    # the fourth)
    rf"|\b(?:visits|sessions|treatments)(?:\s+(?:to\s+date|completed|attended))?:\s*(?P<r>{NUMBER})\b"
    rf"(?!\s*(?:/|x\b|per\b|a\s+w|times|authori|approv|certif|request|remain|left|more|additional))"
    rf"|\bvisit\s*#\s*(?P<s>\d{{1,2}})\b",
    re.IGNORECASE,
)
_GRANTED = re.compile(r"\b(?:authorized|approved|certified|requested|recommended)\b", re.IGNORECASE)
#: Care granted and then had, after the grant's "and": "authorized and completed", "approved and has been completed",
#: "certified in 11/2023 and attended", "certified in 2023 and all were attended".
THEN_HAD = (
    rf"(?:all\s+(?:of\s+them\s+|(?:{NUMBER})\s+)?)?(?:(?:has|have)\s+been\s+|were\s+|was\s+)?"
    r"(?:completed|attended|done|finished)\b"
)
#: A count of care asked for, not had: "is requesting Synvisc injections x3", "recommends 12 sessions of PT".
_ASKING = r"requesting|requests?|requested|recommend(?:s|ed|ing)?|plans?|planned"
_ASKED_BEFORE = re.compile(
    rf"\b(?:{_ASKING}|request for|requests? (?:is|are|was|were) for|prescribing|prescribes|order(?:s|ed|ing)?|"
    r"(?:certification|authorization|approval|certified|authorized|approved)(?:\s+for)?)"  # granted, not had
    r"\s+(?:an?\s+|the\s+|another\s+|additional\s+)?$",
    re.IGNORECASE,
)
#: A count granted, asked for or pending, not had ("12 sessions were authorized", "6 visits for the low back were
#: approved"), unless then had ("authorized and completed").
_GRANTED_AFTER = re.compile(r"(?:\s+(?:for|to|of)\s+(?:the\s+|her\s+|his\s+)?[\w/-]+(?:\s+[\w/-]+)?)?"
                            r"\s+(?:(?:was|were|have been|has been|had been)\s+)?(?:already\s+|previously\s+)?"
                            r"(?:authorized|approved|certified|"
                            r"requested|recommended|pending)\b"
                            # had after all: "authorized and completed", "certified 1/9/24 and completed"
                            rf"(?!(?:\s+(?:on\s+|in\s+)?\d[\d/-]*)?\s+and\s+{THEN_HAD})",
                            re.IGNORECASE)  # fmt: skip
_PART_OF = re.compile(rf"\b({NUMBER})\s+(?:out\s+)?of\s+(?:the\s+)?$", re.IGNORECASE)
#: A part a review grants, not had: "UR modified the request, certifying 6 of 12 visits", "modified to 4 of 8".
_PART_GRANTED = re.compile(
    r"\b(?:certif(?:ying|ied)|authoriz(?:ing|ed)|approv(?:ing|ed)|allow(?:ing|ed)|modified(?:\s+(?:the\s+)?request)?"
    r"\s+to)\s+(?:only\s+)?$",
    re.IGNORECASE,
)
#: ... unless it is then had: "certified 6 of the 12 visits; those 6 visits have now been completed".
_PART_THEN_HAD = re.compile(
    rf"[^.]{{0,120}}?\b(?:those|these|the)\s+(?:{NUMBER}\s+)?(?:certified\s+|authorized\s+|approved\s+)?"
    rf"(?:visits|sessions|treatments)\s+(?:have\s+|has\s+)?(?:now\s+)?(?:been\s+)?{THEN_HAD}",
    re.IGNORECASE,
)
#: A plan or a condition earlier in the count's clause: "Plan: arthroscopy once authorized, then post-op PT 12 visits".
_PLANNED_BEFORE = re.compile(rf"\b(?:{_ASKING}|will|would|once|if|pending|to\s+(?:start|begin))\b", re.IGNORECASE)


def _clause_start(text: str, at: int) -> int:
    """Where the clause holding ``at`` begins (after the last ".", ";" or ":" within 120 characters)."""
    return max(text.rfind(mark, max(0, at - 120), at) for mark in ".;:") + 1 or max(0, at - 120)


#: A count said to be had just before it: "completed the 6 authorized PT visits", "the prior 12 sessions".
_HAD_BEFORE = re.compile(
    r"\b(?:complet(?:ed|ing)|attended|finish(?:ed|ing)|prior|previous)\s+(?:all\s+)?(?:the\s+)?$", re.IGNORECASE
)
#: ... or just after: "the 12 prior PT sessions" (had, though the clause names the request they were cited against).
_HAD_AFTER = re.compile(r"\S+\s+(?:prior|previous)\b", re.IGNORECASE)
#: Care still to come, not had: "the remaining 4 of 12 PT sessions", "another 6 visits", "the additional 8 visits".
_STILL_TO_COME = re.compile(r"\b(?:remaining|another|further|more|next|additional)\s+$", re.IGNORECASE)


#: Words before a count in its clause that leave it unsaid, when no care named beside it can carry their sense: a
#: denial, the record's silence, a plan ("No documentation that she attended the 6 visits", "if no better after 6
#: visits").
_UNSAID = re.compile(
    r"\b(?:no|not|never|none|without|w/o|lack\w*|unclear|unknown|whether|documentation|documented|records?|if|will|"
    r"would|should|plan\w*|goals?)\b|n't\b",
    re.IGNORECASE,
)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans in order, those that overlap joined (a text is read once however many triggers it holds)."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def treatment_history(summary: str, *, unnamed: str | None = None) -> list[TreatmentFact]:
    """Counts of prior treatment in the summary: "has had 12 sessions of physical therapy". A count of visits in a
    text that names no course at all ("Re-eval: completed 6 of 6 certified visits") is ``unnamed``'s, when given (the
    care the text is a note of), else no one's."""
    placed: list[tuple[int, TreatmentFact]] = []
    flat = collapse(summary)
    seen: set[int] = set()
    lexicon = mappings()[LEXICON]
    # The forms are slow to try at every position: try them only around the words a count stands by.
    windows = _merged([(max(0, t.start() - 80), t.end() + 60) for t in _TRIGGER.finditer(flat)])
    for form in _history_forms() if windows else ():
        for window_start, window_end in windows:
            for found in form.finditer(flat, window_start, window_end):
                if found.start() in seen:
                    continue
                seen.add(found.start())
                count = to_int(found["n"]) if "n" in form.groupindex else 1
                part = _PART_OF.search(flat, max(0, found.start() - 24), found.start())
                if _STILL_TO_COME.search(flat, max(0, found.start() - 40), part.start() if part else found.start()):
                    continue  # "finish the remaining 4 of 12 PT sessions"
                if (
                    part
                    and _PART_GRANTED.search(flat, max(0, part.start() - 40), part.start())
                    and not _PART_THEN_HAD.match(flat, found.end())
                ):
                    continue  # "certifying 6 of 12 visits": granted
                if part:  # "8 of 12 authorized sessions": 8 were had
                    count = to_int(part[1])
                elif (
                    _GRANTED.search(found[0]) or _GRANTED_AFTER.match(flat, found.end())
                    or _ASKED_BEFORE.search(flat, max(0, found.start() - 40), found.start())
                    or _PLANNED_BEFORE.search(flat, _clause_start(flat, found.start()), found.start())
                ) and not (
                    _HAD_BEFORE.search(flat, max(0, found.start() - 24), found.start()) or _HAD_AFTER.match(found[0])
                ):  # fmt: skip
                    # "12 sessions were authorized", "is requesting 3 injections", "then post-op PT 12 visits"; but
                    # "since completing the 6 authorized PT visits": had, however granted
                    continue
                if count:
                    following = flat[found.end("t") : found.end("t") + 20]
                    name = lexicon.therapy_name(found["t"], following) or found["t"].lower()
                    placed.append((found.start(), TreatmentFact(therapy=name, count=count, text=found[0])))
    facts = [fact for _, fact in sorted(placed, key=lambda p: p[0])]  # in the text's order
    for bare in _BARE_COUNT.finditer(flat):
        if any(at < bare.end() and bare.start() < at + len(f.text) for at, f in placed):
            continue  # counted above with its therapy
        start = flat.rfind(".", 0, bare.start()) + 1
        stop = flat.find(".", bare.end())
        sentence = flat[start : stop if stop >= 0 else len(flat)]
        named = lexicon.courses_in(sentence) or lexicon.courses_in(flat)  # else the one the text names
        count = to_int(next(count for count in bare.groups() if count))  # each form holds its count in a group
        if count and len(named) == 1:
            facts.append(TreatmentFact(therapy=named.pop(), count=count, text=bare[0]))
        elif count and not named and unnamed:  # a note of the care it counts, unless the count is left unsaid
            if not _UNSAID.search(flat, _clause_start(flat, bare.start()), bare.start()):
                facts.append(TreatmentFact(therapy=unnamed, count=count, text=bare[0]))
    return facts


#: A course followed by more of the same, the care left unsaid: "a dozen sessions, then six more in the spring",
#: "8 visits last fall, then a further four", "10 visits in 2019, then 8 more in 2022", "plus two dozen last year"
#: (not more to come: "then 6 more are requested", "a further six approved in October remain unused").
_FURTHER = re.compile(
    rf"[^.;]{{0,40}}?\b(?:then|plus|and then|followed by|and)\s+"
    rf"(?:(?:another|a\s+further|an\s+additional)\s+(?P<a>{NUMBER})|(?P<b>{NUMBER})\s+(?:more|further|additional)\b"
    rf"|(?<=plus\s)(?P<c>{NUMBER})\b)"
    r"(?!\s+(?:(?:are|is|were|was|will\s+be)\s+)?(?:requested|pending|planned|scheduled|to\s+come|left|remaining)\b)"
    r"(?![^.;,]{0,40}\b(?:unused|not\s+(?:yet\s+)?(?:used|attended|started))\b)",
    re.IGNORECASE,
)
#: Where what follows a further count ends: "plus six land-based PT visits, for the lumbar spine".
_FURTHER_END = re.compile(r"[,.;:(]")


def further_count(summary: str, fact: TreatmentFact) -> int:
    """How many sessions a text says followed the course ``fact`` counts, in the same sentence ("then six more"),
    not a count of other care ("eighteen PT visits plus a dozen sessions of acupuncture")."""
    flat = collapse(summary)
    at = flat.find(fact.text)
    if at < 0:
        return 0
    lexicon = mappings()[LEXICON]
    end, added = at + len(fact.text), 0
    while (more := _FURTHER.match(flat, end)) is not None:
        stop = _FURTHER_END.search(flat, more.end(), more.end() + 50)
        if lexicon.courses_in(flat[more.end() : stop.start() if stop else more.end() + 50]) - {fact.therapy}:
            break
        added += to_int(more["a"] or more["b"] or more["c"]) or 0
        end = more.end()
    return added


# --- guideline citations -------------------------------------------------------------------------------

_BASED_ON = re.compile(r"Decision\s+based\s+on\s+", re.IGNORECASE)
_YEAR = re.compile(r"\s((?:19|20)\d{2})(?=,|\.|\s|$)")
_SECTIONS = re.compile(r"^,?\s*Section\(s\)\s*:\s*", re.IGNORECASE)
_PAGES = re.compile(r"Page\(?s?\)?\s*:?\s*((?:\d{1,4}\s*(?:[,-]|and)?\s*)+)", re.IGNORECASE)


def _pages(text: str) -> list[int]:
    pages: list[int] = []
    for found in _PAGES.finditer(text):
        for token in re.findall(r"\d{1,4}(?:\s*-\s*\d{1,4})?", found[1]):
            if "-" in token:
                start, end = (int(x) for x in token.split("-"))
                pages.extend(range(start, end + 1) if 0 < end - start < 50 else [start, end])
            else:
                pages.append(int(token))
    return list(dict.fromkeys(pages))


def _split_sections(text: str) -> list[str]:
    parts = [s.strip(" .") for s in re.split(r",\s+(?=\S)", _PAGES.sub("", text))]
    return [s for s in parts if s]


def _mtus_citations(text: str) -> Iterator[GuidelineCitation]:
    """``Chronic Pain Medical Treatment 2016, Section(s): A, B, and Low Back Complaints 2004, ...``."""
    text = re.sub(r"^MTUS\s*", "", text.strip())
    years = list(_YEAR.finditer(text))
    if not years:
        pages = _pages(text)
        title = re.split(r"\bMTUS\b|\bpages?\b|Page\(s\)|,", text, maxsplit=1, flags=re.IGNORECASE)[0]
        sections: list[str] = []
        section_match = re.search(r"pages?\s+[\d,\s-]+(.*?)Page\(s\)", text, re.IGNORECASE)
        if section_match and section_match[1].strip(" ,."):
            sections = [section_match[1].strip(" ,.")]
        yield GuidelineCitation(mtus=True, title=title.strip(" .") or None, sections=sections, pages=pages)
        return
    start = 0
    previous: GuidelineCitation | None = None
    for i, year in enumerate(years):
        chunk = text[start : year.start()]
        if previous is not None:
            head, sep, chunk = chunk.partition(", and ")
            if not sep:
                head, chunk = "", head
            previous.sections.extend(_split_sections(_SECTIONS.sub("", head)))
            yield previous
        title = re.sub(r"^(?:and\s+|MTUS\s+)", "", chunk.strip(" ,"))
        tail_end = years[i + 1].start() if i + 1 < len(years) else len(text)
        start = year.end()
        previous = GuidelineCitation(mtus=True, title=title or None, edition_year=int(year[1]))
        if i + 1 == len(years):
            tail = text[start:tail_end]
            previous.sections.extend(_split_sections(_SECTIONS.sub("", tail)))
            previous.pages.extend(_pages(tail))
            yield previous


def _other_citation(text: str) -> GuidelineCitation:
    text = re.sub(r"^Non-MTUS\s+Citation\s*", "", text.strip(), flags=re.IGNORECASE).strip(" .")
    title, sep, rest = text.partition("(ODG)")
    if sep:
        title, rest = title + sep, rest
    else:
        title, _, rest = text.partition(",")
    year = re.search(r"\b((?:19|20)\d{2})\b", title)
    return GuidelineCitation(
        mtus=False,
        title=title.strip(" ,.") or None,
        edition_year=int(year[1]) if year else None,
        sections=_split_sections(rest.strip(" ,")),
        pages=_pages(rest),
    )


def citations(line: str) -> list[GuidelineCitation]:
    """Every guideline a citation line names, in order."""
    flat = collapse(line)
    found: list[GuidelineCitation] = []
    for segment in _BASED_ON.split(flat)[1:]:
        segment = segment.strip()
        if re.match(r"Non-MTUS", segment, re.IGNORECASE):
            found.append(_other_citation(segment))
        elif re.match(r"MTUS|ACOEM|CA\s+MTUS", segment, re.IGNORECASE):
            found.extend(_mtus_citations(segment))
        else:
            found.append(_other_citation(segment))
    return found


_RELIED = re.compile(
    r"(?:based\s+(?:its|his|her|their)\s+decision\s+on|relied\s+on|cited)\s+(?:the\s+)?(?P<cite>.+?)"
    r"(?:\.\s|\.$|$)",
    re.IGNORECASE,
)


def prose_citations(text: str) -> list[GuidelineCitation]:
    """ "The Expert Reviewer relied on the Chronic Pain Medical Treatment Guidelines, Physical Medicine,
    pages 98-99, which are part of the MTUS." and the like."""
    flat = collapse(text)
    if _BASED_ON.search(flat):
        return citations(flat)
    found: list[GuidelineCitation] = []
    cites = [m["cite"] for m in _RELIED.finditer(flat)] or ([flat] if flat else [])
    for cite in cites:
        outside = re.search(r"not\s+(?:a\s+)?part\s+of\s+the\s+MTUS|outside|Non-MTUS", cite, re.IGNORECASE)
        mtus = not outside and bool(re.search(r"\bMTUS\b|Medical\s+Treatment\s+Utilization", cite))
        cite = re.sub(r",?\s*which\s+(?:is|are)\s+(?:not\s+)?(?:a\s+)?part\s+of\s+the\s+MTUS.*$", "", cite)
        title, *rest = [p.strip() for p in re.split(r",\s+", cite) if p.strip()] or [""]
        year = re.search(r"\b((?:19|20)\d{2})\b", title)
        pages = [p for p in rest if re.match(r"pages?\b", p, re.IGNORECASE)]
        found.append(
            GuidelineCitation(
                mtus=mtus,
                title=re.sub(r"^\(?MTUS\)?\s*", "", title).strip(" .") or None,
                edition_year=int(year[1]) if year else None,
                sections=[p.strip(" .") for p in rest if p not in pages],
                pages=[int(n) for n in re.findall(r"\d{1,4}", " ".join(pages))],
            )
        )
    return found


_OUTSIDE_MTUS = re.compile(r"outside\s+(?:of\s+)?the\s+MTUS|Non-MTUS", re.IGNORECASE)


def guideline_basis(line: str | None, found: list[GuidelineCitation]) -> GuidelineBasis:
    """non-MTUS when the reviewer relied only on guidelines outside the MTUS; MTUS otherwise."""
    if any(c.mtus for c in found):
        return GuidelineBasis.MTUS
    if found or (line and _OUTSIDE_MTUS.search(line)):
        return GuidelineBasis.NON_MTUS
    return GuidelineBasis.MTUS


# --- requested quantity, frequency, duration, body site ------------------------------------------------

_FREQ_DURATION = re.compile(
    rf"\b(?P<f>{NUMBER})\s*(?:x|times?)?\s*(?:a|per|/|each|every)\s*(?:week|wk)\s*"
    rf"(?:for|times|x|over|\*)?\s*(?P<w>{NUMBER})\s*(?:weeks?|wks?)\b",
    re.IGNORECASE,
)
_TIMES_GRID = re.compile(r"\b(?P<f>\d{1,2})\s*(?:x|times|\*)\s*(?P<w>\d{1,2})\b(?!\s*(?:mg|%|ml|day|month))",
                         re.IGNORECASE)  # fmt: skip
#: A duration alone ("daily RN for 4 weeks", "for two weeks").
_DURATION = re.compile(rf"\bfor\s+(?:a\s+)?(?P<w>{NUMBER})\s*(?:weeks?|wks?)\b", re.IGNORECASE)
_COUNT = re.compile(
    rf"\b(?P<n>{NUMBER})\s+(?:[a-z/-]+\s+){{0,3}}?(?:sessions?|visits?|treatments?)\b"
    rf"|\b(?:times|x)\s*(?P<t>\d{{1,3}})\b(?!\s*(?:weeks?|wks?|mg|%))"
    rf"|#\s*(?P<h>\d{{1,4}})\b",
    re.IGNORECASE,
)
_SIDE = r"(?:(?:left|right|bilateral|both)\s+)?"
_REGION = (
    r"(?:(?:cervical|thoracic|lumbar|lumbosacral)(?:,?\s+(?:and\s+)?(?:cervical|thoracic|lumbar|lumbosacral))*"
    r"\s+spines?|"
    r"low(?:er)?\s+back|upper\s+back|neck|head|shoulders?|knees?|hips?|wrists?|hands?|elbows?|ankles?|"
    r"feet|foot|forearms?|arms?|legs?|thumbs?|fingers?|toes?|pelvis|abdomen|chest|"
    r"(?:upper|lower)\s+(?:extremities|extremity|limbs?)|spine)"
)
_BODY_SITE = re.compile(rf"\b(?:(?:the|his|her)\s+)?({_SIDE}{_REGION}(?:\s+and\s+{_SIDE}{_REGION})?)\b", re.IGNORECASE)


def quantities(request: str) -> tuple[int | None, int | None, int | None, str | None]:
    """(quantity, frequency per week, duration in weeks, body site) as the request text states them."""
    flat = collapse(request)
    frequency = weeks = quantity = None
    grid = _FREQ_DURATION.search(flat) or _TIMES_GRID.search(flat)
    if grid:
        frequency, weeks = to_int(grid["f"]), to_int(grid["w"])
        rest = flat[: grid.start()] + " " + flat[grid.end() :]
    else:
        rest = flat
        duration = _DURATION.search(flat)
        weeks = to_int(duration["w"]) if duration else None
    count = _COUNT.search(rest)
    if count:
        quantity = to_int(count["n"] or count["t"] or count["h"])
    elif frequency and weeks:
        quantity = frequency * weeks
    frequency = frequency or None  # "0 times a week" states no frequency
    site = _BODY_SITE.search(flat)
    return quantity, frequency, weeks, site[1].lower() if site else None


# --- sections and labelled fields ----------------------------------------------------------------------


def labelled_fields(body: str, labels: re.Pattern[str]) -> dict[str, str]:
    """The text after each label up to the next, keyed by the label's group name (first one wins)."""
    fields: dict[str, str] = {}
    marks = list(labels.finditer(body))
    for n, mark in enumerate(marks):
        name = mark.lastgroup
        if name is None or name in fields:
            continue
        stop = marks[n + 1].start() if n + 1 < len(marks) else len(body)
        fields[name] = collapse(body[mark.end() : stop])
    return fields


def section(text: str, heading: str, *following: str) -> str | None:
    """The text after ``heading`` up to the first of ``following`` (or the end); None if it is absent."""
    start = heading_pattern(heading).search(text)
    if not start:
        return None
    end = len(text)
    for other in following:
        found = heading_pattern(other).search(text, start.end())
        if found:
            end = min(end, found.start())
    return text[start.end() : end]


def labelled_date(text: str, label: str) -> tuple[date | None, bool]:
    """The date after ``label:`` (possibly on a following line); also whether the label was there."""
    found = re.search(heading_pattern(label).pattern + r"\s*:?\s*(" + DATE + ")?", text, re.IGNORECASE)
    if not found:
        return None, False
    return (parse_date(found[1]) if found[1] else None), True


_INJURY_DATE = re.compile(
    rf"(?:injury\s+date|date\s+of\s+(?:the\s+)?injury|injured|injury)\s+(?:on|of|dated|date\s+of)?\s*:?\s*({DATE})",
    re.IGNORECASE,
)
_UR_DATE = re.compile(
    rf"(?:utilization\s+review|\bUR\b)[^.]{{0,80}}?(?:denied|non-?certified|modified|denial)"
    rf"[^.]{{0,80}}?(?:on|dated)\s+({DATE})",
    re.IGNORECASE,
)


_REQUEST_DATE = re.compile(
    rf"(?:request\s+for\s+authori[sz]ation|\bRFA\b)(?:\s+form)?[^.]{{0,40}}?"
    rf"(?:dated|signed(?:\s+on)?|received(?:\s+on)?|is|was|of|on)\s*:?\s*({DATE})"
    rf"|({DATE})\s+date\s+of\s+service|date\s+of\s+service\s+(?:of\s+|dated\s+|on\s+)?({DATE})",
    re.IGNORECASE,
)


def request_date(summary: str) -> date | None:
    """The date of the request for authorization (or of the visit at issue) a case summary names, if any."""
    found = _REQUEST_DATE.search(collapse(summary))
    return parse_date(next(g for g in found.groups() if g)) if found else None


def summary_dates(summary: str) -> tuple[date | None, date | None]:
    """(date of injury, UR denial date) as the prose of a case summary states them."""
    flat = collapse(summary)
    injury = _INJURY_DATE.search(flat)
    denial = _UR_DATE.search(flat)
    return (parse_date(injury[1]) if injury else None), (parse_date(denial[1]) if denial else None)


def split_list(value: str, *, on_and: bool = False) -> list[str]:
    """A comma-separated list on one line ("California,Missouri, Texas"), optionally also split on "and"."""
    separator = r"\s*,\s*(?:and\s+)?|\s+and\s+" if on_and else r"\s*,\s*"
    return [part.strip(" .") for part in re.split(separator, value) if part.strip(" .")]


_BOARD = re.compile(
    r"Board\s+Certified\s+in\s+(?P<specialty>.+?)(?:,?\s+(?:and\s+)?(?:has|with)\s+a\s+sub-?specialty\s+in\s+"
    r"(?P<sub>.+?))?,?\s+(?:and\s+)?(?:is\s+)?licensed\s+to\s+practice\s+in\s+(?P<states>.+?)\.",
    re.IGNORECASE,
)


def prose_credentials(text: str) -> tuple[list[str], list[str]]:
    """(licensure, specialties) from "Board Certified in X has a subspecialty in Y and is licensed to
    practice in Z." prose."""
    found = _BOARD.search(collapse(text))
    if not found:
        return [], []
    specialties = [found["specialty"].strip()]
    if found["sub"]:
        specialties.append(found["sub"].strip())
    return split_list(found["states"], on_and=True), specialties
