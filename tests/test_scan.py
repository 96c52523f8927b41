"""The lexicon's phrases are searched with RE2 where it reads a text as ``re`` does: the same matches either
way, on the lexicon's own patterns and on texts made of its phrases."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.determination.evidence import _pipeline
from adapter.lexicon import load_lexicon
from adapter.scan import PatternSet, Scanner, is_plain

_LEXICON = load_lexicon()
_TARGETS = _pipeline(_LEXICON).targets
_WORDS = [
    "no", "not", "without", "positive", "negative", "straight leg raise", "SLR", "4/5", "EHL", "L5",
    "radiculopathy", "decreased sensation", "dermatome", "reflexes", "Norco", "tramadol", "ibuprofen", "PT",
    "physical therapy", "acupuncture", "improved", "walk", "minutes", "after", "with", "the", "lumbar", "neck",
    "shoulder", "knee", "MRI", "EMG", "2019", "denies", "history of", "fracture", "fall", "function", "ADLs",
]  # fmt: skip
_SEPARATORS = [" ", ", ", ". ", "; ", ": ", "\n", "-", "/", "(", ") "]
texts = st.lists(st.sampled_from(_WORDS) | st.sampled_from(_SEPARATORS), max_size=60).map("".join)


def _spans(found: object) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group(0)) for m in found]  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None)
@given(texts)
def test_every_target_finds_what_re_finds(text: str) -> None:
    plain = is_plain(text)
    for target in _TARGETS:
        assert _spans(target.pattern.finditer(text, plain)) == _spans(target.pattern.pattern.finditer(text))


@settings(max_examples=300, deadline=None)
@given(texts)
def test_a_pattern_set_names_what_re_finds(text: str) -> None:
    for patterns in (_LEXICON.attribution_patterns, _LEXICON.region_patterns):
        expected = {name for name, pattern in patterns.items() if pattern.search(text)}
        assert PatternSet(patterns).names_in(text) == expected


def test_text_re_reads_otherwise_is_searched_by_re() -> None:
    """Unicode case folding ("K" is the Kelvin sign) and spaces only re counts as such."""
    kelvin = Scanner(re.compile(r"\bknee\b", re.I))
    assert not is_plain("\u212anee pain")
    assert _spans(kelvin.finditer("\u212anee pain", False)) == [(0, 4, "\u212anee")]
    spaced = Scanner(re.compile(r"left\sknee", re.I))
    assert not is_plain("left\x0bknee")
    assert _spans(spaced.finditer("left\x0bknee", False)) == [(0, 9, "left\x0bknee")]


def test_patterns_re2_cannot_read_stay_with_re() -> None:
    lookahead = Scanner(re.compile(r"\bMRI(?! was denied)", re.I))
    assert _spans(lookahead.finditer("MRI was denied; MRI done", True)) == [(16, 19, "MRI")]
    names = PatternSet({"a": re.compile(r"(?<!#)\bnorco\b", re.I), "b": re.compile(r"\bPT\b", re.I)})
    assert names.names_in("#norco and pt") == {"b"}
