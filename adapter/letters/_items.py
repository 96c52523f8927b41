"""Disputed items written as ``<item>: Upheld|Overturned`` followed by labelled guideline and rationale
paragraphs: the item section of the case-number layout and of the 2014 variant."""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapter.errors import MissingSectionError
from adapter.letters import _common, _text
from adapter.model import Decision, DisputedItem

_DECISION_AT_END = re.compile(r"^(?P<item>.*\S)\s*:\s*(?P<decision>upheld|overturned)\s*\.?$", re.IGNORECASE)
_DECISION_ALONE = re.compile(r"^\s*(?P<decision>upheld|overturned)\s*\.?$", re.IGNORECASE)
_INTRO = re.compile(r"set\s+forth\s+below\s*:?\s*$", re.IGNORECASE)
_LABELS = {
    "claims_administrator_guideline": r"Claims\s+Administrator\s+guidelines?\s*:",
    "maximus_guideline": r"(?:MAXIMUS|Expert\s+Reviewer)\s+guidelines?\s*:",
    "rationale": r"Decision\s+rationale\s*:",
}
_ANY_LABEL = re.compile("|".join(f"(?P<{k}>{v})" for k, v in _LABELS.items()), re.IGNORECASE)

_ORIGINAL = re.compile(r"^(?P<original>.+?)\s+was\s+the\s+original\s+request\.", re.IGNORECASE)
_AUTHORIZED = re.compile(
    r"original\s+request\.\s+(?:(?P<a1>.+?)\s+was\s+authorized\s+by\s+the\s+Claims\s+Administrator"
    r"|The\s+Claims\s+Administrator\s+authorized\s+(?P<a2>.+?),\s+leaving)",
    re.IGNORECASE,
)
_REMAINING = re.compile(r"original\s+request,\s+(?P<remaining>.+?),?\s+is$", re.IGNORECASE)


@dataclass
class _Heading:
    first_line: int
    last_line: int
    request: str
    decision: Decision


def _after_previous_paragraph(lines: list[str], start: int, end: int) -> int:
    """Where an item heading starts when extraction lost the blank line before it: an item heading never
    holds a label, so a labelled paragraph (the previous item's rationale) ends at its last full stop."""
    labelled = [n for n in range(start, end) if _ANY_LABEL.match(lines[n].lstrip())]
    if not labelled:
        return start
    stops = [n for n in range(labelled[-1], end) if lines[n].rstrip().endswith(".")]
    return (stops[-1] if stops else labelled[-1]) + 1


def _headings(lines: list[str]) -> list[_Heading]:
    headings: list[_Heading] = []
    floor = 0
    for i, line in enumerate(lines):
        at_end = _DECISION_AT_END.match(line)
        alone = _DECISION_ALONE.match(line)
        if at_end:
            end, tail, word = i, at_end["item"], at_end["decision"]
        elif alone:
            prev = i - 1
            while prev >= floor and not lines[prev].strip():
                prev -= 1
            if prev < floor or not lines[prev].rstrip().endswith(":"):
                continue
            end, tail, word = prev, lines[prev].rstrip()[:-1], alone["decision"]
        else:
            continue
        start = end
        while start - 1 >= floor and lines[start - 1].strip() and not _INTRO.search(lines[start - 1]):
            start -= 1
        start = _after_previous_paragraph(lines, start, end)
        request = _text.collapse(" ".join([*lines[start:end], tail]))
        if request:
            headings.append(_Heading(start, i, request, Decision(word.lower())))
        floor = i + 1
    return headings


def decision_items(section: str, *, location: str) -> list[DisputedItem]:
    """Every ``<item>: <decision>`` heading in an issues section with the paragraphs that follow it."""
    lines = section.split("\n")
    headings = _headings(lines)
    if not headings:
        raise MissingSectionError("no disputed item with a decision was found", location=location)
    items: list[DisputedItem] = []
    for n, heading in enumerate(headings):
        stop = headings[n + 1].first_line if n + 1 < len(headings) else len(lines)
        fields = _text.labelled_fields("\n".join(lines[heading.last_line + 1 : stop]), _ANY_LABEL)
        original = _ORIGINAL.match(heading.request)
        authorized = _AUTHORIZED.search(heading.request)
        remaining = _REMAINING.search(heading.request)
        items.append(
            _common.disputed_item(
                heading.request,
                heading.decision,
                cite=_text.citations,
                reviewer_guideline=fields.get("maximus_guideline"),
                claims_guideline=fields.get("claims_administrator_guideline"),
                rationale=fields.get("rationale"),
                decided=remaining["remaining"] if remaining else None,
                original_request=original["original"] if original else None,
                authorized=(authorized["a1"] or authorized["a2"]) if authorized else None,
            )
        )
    return items
