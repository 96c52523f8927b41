"""Search for the lexicon's phrases, in time linear in the text.

The lexicon's targets are large alternations (a fact's every phrase in one pattern) run over every clinical
text; Python's backtracking ``re`` tries each alternative at each position, so this search is most of the
evidence pass's cost. RE2 (Google's automaton engine) runs the same pattern in one pass. The two agree on
leftmost-first matches of the same syntax, with two differences: RE2 has no lookaround (such a pattern stays
with ``re``), and its classes are ASCII (``\\b``, ``\\w``, ``\\s`` and case folding) where ``re``'s are Unicode. A
text that is ASCII without the control characters only ``re`` counts as space is therefore searched by RE2,
any other text by ``re``: the matches are the same either way (``tests/test_evidence.py`` holds them equal).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal, Protocol

import re2  # type: ignore[import-untyped]

#: Characters Python's ``\s`` matches in ASCII and RE2's does not (vertical tab, the four separators).
_RE_ONLY_SPACE = re.compile(r"[\x0b\x1c-\x1f]")
#: Flags RE2 is told of; a pattern with any other (MULTILINE, DOTALL, VERBOSE) stays with ``re``.
_FLAGS = re.IGNORECASE | re.UNICODE


class Match(Protocol):
    def start(self) -> int: ...
    def end(self) -> int: ...
    def group(self, index: Literal[0] = 0, /) -> str: ...


class Scanner:
    """A compiled pattern searched with RE2 where that gives the same matches, else with ``re``."""

    def __init__(self, pattern: re.Pattern[str]):
        self.pattern = pattern
        self._automaton = _automaton(pattern)

    def finditer(self, text: str, plain: bool) -> Iterator[Match]:
        """The matches in ``text``; ``plain``: ``is_plain(text)``, asked once for all of a text's searches."""
        if plain and self._automaton is not None:
            found: Iterator[Match] = self._automaton.finditer(text)
            return found
        return self.pattern.finditer(text)


def is_plain(text: str) -> bool:
    """Whether RE2 and ``re`` read ``text`` alike: ASCII, without the spaces only ``re`` knows."""
    return text.isascii() and not _RE_ONLY_SPACE.search(text)


class PatternSet:
    """Which of several named patterns occur in a text: those RE2 can read all in one pass, the rest with
    ``re`` one by one."""

    def __init__(self, patterns: Mapping[str, re.Pattern[str]]):
        self.patterns = dict(patterns)
        self._names: list[str] = []
        self._rest: dict[str, re.Pattern[str]] = {}
        self._set: Any = None  # an RE2 set (the binding is untyped)
        ignoring_case = {bool(p.flags & re.IGNORECASE) for p in self.patterns.values()}
        if len(ignoring_case) == 1:
            self._set = re2.Set.SearchSet(_options(ignoring_case.pop()))
        for name, pattern in self.patterns.items():
            if self._set is not None and _automaton(pattern) is not None:
                self._set.Add(pattern.pattern)
                self._names.append(name)
            else:
                self._rest[name] = pattern
        if self._set is not None:
            self._set.Compile()

    def names_in(self, text: str, plain: bool | None = None) -> set[str]:
        """The names of the patterns found in ``text`` (``plain``: ``is_plain(text)`` if known)."""
        if self._set is None or not (is_plain(text) if plain is None else plain):
            return {name for name, pattern in self.patterns.items() if pattern.search(text)}
        found = {self._names[i] for i in self._set.Match(text) or ()}
        return found | {name for name, pattern in self._rest.items() if pattern.search(text)}


def _options(ignoring_case: bool) -> Any:
    options = re2.Options()
    options.case_sensitive = not ignoring_case
    options.log_errors = False
    options.max_mem = 64 << 20
    return options


def _automaton(pattern: re.Pattern[str]) -> Any:
    """The pattern compiled by RE2, or None where RE2 would not match as ``re`` does."""
    if pattern.flags & ~_FLAGS or "$" in pattern.pattern:  # RE2's "$" is only the end, re's also before a "\n"
        return None
    try:
        return re2.compile(pattern.pattern, _options(bool(pattern.flags & re.IGNORECASE)))
    except re2.error:  # lookaround or back-references: re only
        return None
