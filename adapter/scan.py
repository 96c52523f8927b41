"""Search for the lexicon's phrases, in time linear in the text.

The lexicon's targets are large alternations (a fact's every phrase in one pattern) run over every clinical
text; Python's backtracking ``re`` tries each alternative at each position, so this search is most of the
evidence pass's cost. RE2 (Google's automaton engine) runs the same pattern in one pass. The two agree on
leftmost-first matches of the same syntax, with two differences: RE2 has no lookaround (such a pattern stays
with ``re``), and its classes are ASCII (``\\b``, ``\\w``, ``\\s``, ``\\d`` and case folding) where ``re``'s are
Unicode. The patterns are ASCII, so a character outside ASCII only matters by its class: RE2 searches a copy of
the text (``searchable``) in which each such character is an ASCII one of the same class, at the same offset.
The matches are the same either way (``tests/test_scan.py`` holds them equal).
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
    """A compiled ASCII pattern searched with RE2 where that gives the same matches, else with ``re``."""

    def __init__(self, pattern: re.Pattern[str]):
        _ascii(pattern)
        self.pattern = pattern
        self._automaton = _automaton(pattern)
        #: For a pattern only ``re`` reads (lookaround), RE2's reading of it without its lookaround: where that
        #: finds nothing, neither does the pattern, and ``re`` need not look.
        self._wider = None if self._automaton is not None else _automaton(pattern, _without_lookaround(pattern.pattern))

    @property
    def linear(self) -> bool:
        """Whether RE2 searches this pattern (in time linear in the text)."""
        return self._automaton is not None

    def finditer(self, text: str, plain: bool) -> Iterator[Match]:
        """The matches in ``text``: ``plain``, a copy made by ``searchable``, is searched by RE2 (or by ``re`` where
        RE2 cannot read the pattern, alike on the copy); else the original by ``re``. Matches are read by their
        offsets, which the copy keeps, not by their text."""
        if plain and self._automaton is not None:
            found: Iterator[Match] = self._automaton.finditer(text)
            return found
        if plain and self._wider is not None and self._wider.search(text) is None:
            return iter(())
        return self.pattern.finditer(text)


def _ascii(pattern: re.Pattern[str]) -> None:
    """Refuse a pattern outside ASCII: a ``searchable`` copy keeps only the classes of other characters."""
    if not pattern.pattern.isascii():
        raise ValueError(f"a lexicon pattern is ASCII: {pattern.pattern!r}")


def _without_lookaround(pattern: str) -> str:
    """``pattern`` with its lookahead and lookbehind assertions left out: it matches wherever ``pattern`` does."""
    out, at = [], 0
    while at < len(pattern):
        if pattern.startswith(("(?=", "(?!", "(?<=", "(?<!"), at):
            at = _group_end(pattern, at)
            continue
        step = _token_end(pattern, at)
        out.append(pattern[at:step])
        at = step
    return "".join(out)


def _token_end(pattern: str, at: int) -> int:
    """Where the token of ``pattern`` starting at ``at`` ends: an escape, a character class or one character."""
    if pattern[at] == "\\":
        return at + 2
    if pattern[at] == "[":
        at += 1
        if pattern.startswith("^", at):
            at += 1
        if pattern.startswith("]", at):  # a "]" first in a class is itself
            at += 1
        while pattern[at] != "]":
            at += 2 if pattern[at] == "\\" else 1
    return at + 1


def _group_end(pattern: str, at: int) -> int:
    """Where the group opened at ``at`` closes (just past its ")")."""
    depth = 0
    while True:
        if pattern[at] == "(":
            depth += 1
        elif pattern[at] == ")":
            depth -= 1
            if depth == 0:
                return at + 1
        at = _token_end(pattern, at)


#: The characters ``re`` folds to an ASCII letter when ignoring case (dotted and dotless i, long s, Kelvin sign).
_FOLDS_TO_ASCII = frozenset("\u0130\u0131\u017f\u212a")


class _SameClass(dict[int, str]):
    """A translation table to a character of the same class for ``re``'s Unicode ``\\s``, ``\\w`` and neither
    (tab, underscore and DEL: no lexicon phrase names them); a character that has none is left as it is."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if _RE_ONLY_SPACE.match(char) or (not char.isascii() and char.isspace()):
            out = "\t"
        elif char.isascii() or char in _FOLDS_TO_ASCII or char.isdecimal():
            out = char  # ASCII as it is; a letter matching an ASCII one, a digit matching \\d: none like them
        elif char.isalnum():
            out = "_"
        else:
            out = "\x7f"
        self[code] = out
        return out


_SAME_CLASS = _SameClass()


def searchable(text: str) -> str | None:
    """``text`` as RE2 can search it for ASCII patterns, matching what ``re`` matches in the original at the same
    offsets; None where no copy does (a non-ASCII digit, or a letter ``re`` folds to an ASCII one)."""
    if text.isascii() and not _RE_ONLY_SPACE.search(text):  # as RE2 reads it already
        return text
    copy = text.translate(_SAME_CLASS)
    return copy if copy.isascii() else None


#: Patterns per RE2 set. A set's automaton grows with the product of its patterns' states, and once it outgrows
#: RE2's cache the one pass is slower than several: the lexicon's 79 phrase lists searched in the corpus letters
#: take 75 ms in one set, 21 ms in sets of 8 (2 cores).
SET_SIZE = 8


class PatternSet:
    """Which of several named patterns occur in a text: those RE2 can read in a few passes (sets of
    ``SET_SIZE``), the rest with ``re`` one by one."""

    def __init__(self, patterns: Mapping[str, re.Pattern[str]]):
        self.patterns = dict(patterns)
        for pattern in self.patterns.values():
            _ascii(pattern)
        self._rest: dict[str, re.Pattern[str]] = {}
        #: RE2 sets (the binding is untyped) with the names of their patterns in order
        self._sets: list[tuple[Any, list[str]]] = []
        ignoring_case = {bool(p.flags & re.IGNORECASE) for p in self.patterns.values()}
        linear: list[tuple[str, re.Pattern[str]]] = []
        for name, pattern in self.patterns.items():
            if len(ignoring_case) == 1 and _automaton(pattern) is not None:
                linear.append((name, pattern))
            else:
                self._rest[name] = pattern
        for start in range(0, len(linear), SET_SIZE):
            chunk = linear[start : start + SET_SIZE]
            searched = re2.Set.SearchSet(_options(bool(chunk[0][1].flags & re.IGNORECASE)))
            for _, pattern in chunk:
                searched.Add(pattern.pattern)
            searched.Compile()
            self._sets.append((searched, [name for name, _ in chunk]))

    def names_in(self, text: str, plain: bool | None = None) -> set[str]:
        """The names of the patterns found in ``text``; ``plain``: whether ``text`` is a copy made by
        ``searchable`` (None: make one here if it can be)."""
        if plain is None:
            copy = searchable(text)
            text, plain = (text, False) if copy is None else (copy, True)
        if not plain:
            return {name for name, pattern in self.patterns.items() if pattern.search(text)}
        found = {names[i] for searched, names in self._sets for i in searched.Match(text) or ()}
        return found | {name for name, pattern in self._rest.items() if pattern.search(text)}


def _options(ignoring_case: bool) -> Any:
    options = re2.Options()
    options.case_sensitive = not ignoring_case
    options.log_errors = False
    options.max_mem = 64 << 20
    return options


def _automaton(pattern: re.Pattern[str], source: str | None = None) -> Any:
    """The pattern (or ``source`` under its flags) compiled by RE2, or None where RE2 would not match as ``re``
    does."""
    source = pattern.pattern if source is None else source
    if pattern.flags & ~_FLAGS or "$" in source:  # RE2's "$" is only the end, re's also before a "\n"
        return None
    try:
        return re2.compile(source, _options(bool(pattern.flags & re.IGNORECASE)))
    except re2.error:  # lookaround or back-references: re only
        return None
