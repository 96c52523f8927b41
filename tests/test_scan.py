"""The lexicon's phrases are searched with RE2 where it reads a text as ``re`` does: the same matches either
way, on the lexicon's own patterns and on texts made of its phrases."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.determination.evidence import _pipeline
from adapter.lexicon import LEXICON
from adapter.scan import PatternSet, Scanner, searchable
from adapter.tables import mappings

_LEXICON = mappings()[LEXICON]
_TARGETS = _pipeline(_LEXICON).targets
#: Pattern sets as the reader builds them, the evidence pass's own among them: more patterns than one RE2 set
#: holds (``SET_SIZE``), spread over several.
_SETS = [
    (patterns, PatternSet(patterns))
    for patterns in (
        _LEXICON.attribution_patterns,
        _LEXICON.region_patterns,
        {str(n): target.pattern.pattern for n, target in enumerate(_TARGETS) if target.pattern.linear},
    )
]
_WORDS = [
    "no", "not", "without", "positive", "negative", "straight leg raise", "SLR", "4/5", "EHL", "L5",
    "radiculopathy", "decreased sensation", "dermatome", "reflexes", "Norco", "tramadol", "ibuprofen", "PT",
    "physical therapy", "acupuncture", "improved", "walk", "minutes", "after", "with", "the", "lumbar", "neck",
    "shoulder", "knee", "MRI", "EMG", "2019", "denies", "history of", "fracture", "fall", "function", "ADLs",
]  # fmt: skip
_SEPARATORS = [" ", ", ", ". ", "; ", ": ", "\n", "-", "/", "(", ") "]
texts = st.lists(st.sampled_from(_WORDS) | st.sampled_from(_SEPARATORS), max_size=60).map("".join)
#: What notes pasted from a word processor or a PDF hold beside ASCII: degrees, curly quotes, dashes, no-break
#: and thin spaces, accented names, superscripts, bullets, and the characters no ASCII one stands for.
_UNICODE = [
    "\u00b0",
    "\u00d7",
    "\u2019",
    "\u201c",
    "\u2013",
    "\u2014",
    "\u00a0",
    "\u2009",
    "\u00e9",
    "Jos\u00e9",
    "\u00b2",
    "\u2022",
    "\u2026",
    "\x0b",
    "\x1c",
    "\u0663",
    "\u212a",
    "\u017f",
    "\u00c9MG",
]
unicode_texts = st.lists(st.sampled_from(_WORDS) | st.sampled_from(_SEPARATORS) | st.sampled_from(_UNICODE),
                         max_size=60).map("".join)  # fmt: skip


def _spans(found: object) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in found]  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None)
@given(unicode_texts)
def test_every_target_finds_what_re_finds(text: str) -> None:
    copy = searchable(text)
    for target in _TARGETS:
        expected = [(m.start(), m.end()) for m in target.pattern.pattern.finditer(text)]
        found = target.pattern.finditer(text, False) if copy is None else target.pattern.finditer(copy, True)
        assert [(m.start(), m.end()) for m in found] == expected


@settings(max_examples=300, deadline=None)
@given(unicode_texts)
def test_a_pattern_set_names_what_re_finds(text: str) -> None:
    for patterns, searched in _SETS:
        expected = {name for name, pattern in patterns.items() if pattern.search(text)}
        assert searched.names_in(text) == expected


def test_a_searchable_copy_keeps_every_character_class_re_reads() -> None:
    """Every character of Unicode stands in the copy for one alike to ``re``: space, word character, digit, or
    none of these; those that only ``re`` matches to an ASCII letter or digit keep the text with ``re``."""
    every = "".join(map(chr, range(0x110000)))
    alone = re.compile(r"(?-i:(?![\x00-\x7f]))(?:[a-z]|\d)", re.I)  # non-ASCII, yet a letter ignoring case, or a digit
    assert all(searchable(char.group()) is None for char in alone.finditer(every))
    rest = alone.sub("", every)
    copy = searchable(rest)
    assert copy is not None and copy.isascii() and len(copy) == len(rest)
    for kind in (r"\s", r"\w", r"\d", "[a-z]"):
        pattern = re.compile(kind, re.I)
        assert [m.start() for m in pattern.finditer(copy)] == [m.start() for m in pattern.finditer(rest)], kind
    letters = re.compile("[a-z]", re.I)
    assert all(copy[m.start()] == rest[m.start()] for m in letters.finditer(copy))  # no new letters


def test_text_re_reads_otherwise_is_searched_by_re() -> None:
    """Unicode case folding ("K" is the Kelvin sign) and digits no ASCII one stands for."""
    kelvin = Scanner(re.compile(r"\bknee\b", re.I))
    assert searchable("\u212anee pain") is None
    assert _spans(kelvin.finditer("\u212anee pain", False)) == [(0, 4, "\u212anee")]
    assert searchable("L\u0665-S1") is None


def test_a_searchable_copy_keeps_offsets_and_classes() -> None:
    note = "Flexion 30\u00b0, EHL 4/5 \u2013 no\u00a0improvement; Jos\u00e9\u2019s MRI\x0bdone"
    copy = searchable(note)
    assert copy == "Flexion 30\x7f, EHL 4/5 \x7f no\timprovement; Jos_\x7fs MRI\tdone"
    spaced = Scanner(re.compile(r"no\simprovement", re.I))
    start = note.index("no\u00a0improvement")
    assert [(m.start(), m.end()) for m in spaced.finditer(copy, True)] == [(start, start + 14)]
    assert searchable("plain ASCII") == "plain ASCII"


def test_a_lexicon_pattern_is_ascii() -> None:
    with pytest.raises(ValueError, match="ASCII"):
        Scanner(re.compile("30\u00b0", re.I))


def test_patterns_re2_cannot_read_stay_with_re() -> None:
    lookahead = Scanner(re.compile(r"\bMRI(?! was denied)", re.I))
    assert _spans(lookahead.finditer("MRI was denied; MRI done", True)) == [(16, 19, "MRI")]
    names = PatternSet({"a": re.compile(r"(?<!#)\bnorco\b", re.I), "b": re.compile(r"\bPT\b", re.I)})
    assert names.names_in("#norco and pt") == {"b"}


def test_a_pattern_re_reads_is_skipped_where_its_lookaround_free_form_finds_nothing() -> None:
    """Brackets in a class or escaped do not end the assertion left out; the rest of the pattern still counts."""
    tricky = Scanner(re.compile(r"\bMRI(?! \(was denied[)(]\))(?<![(]x) (?:done|dated)", re.I))
    assert tricky.linear is False
    assert _spans(tricky.finditer("MRI (was denied(); MRI done", True)) == [(19, 27, "MRI done")]
    assert _spans(tricky.finditer("MRI requested", True)) == []
    assert _spans(tricky.finditer("MRI requested", False)) == []
