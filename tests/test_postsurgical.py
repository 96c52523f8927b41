"""Postsurgical care: the course the postsurgical guideline allows for each surgery, within its period."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from adapter.determination import (
    Context,
    Text,
    build_facts,
    determine,
)
from tests.conftest import RULES


@pytest.mark.parametrize(
    ("request_text", "note", "expected"),
    [
        ("Post-operative physical therapy 2 times a week for 4 weeks for the right shoulder",
         "She is status post arthroscopic subacromial decompression and rotator cuff repair of the right shoulder.",
         ("arthroscopic shoulder surgery (impingement, rotator cuff)", 24, 12, "A1")),
        ("Post-operative physical therapy for the left hand, 12 visits",
         "He underwent ORIF of a left fifth metacarpal fracture and has had 10 sessions of physical therapy.",
         ("metacarpal fracture", 16, 8, "A6")),
        ("Post-operative physical therapy for the right knee, 12 visits",  # a course not verified: no table row
         "Status post right knee arthroscopy with partial meniscectomy.", (None, None, None, "A4")),
        ("Post-operative physical therapy for the right knee, 12 visits",  # the shoulder's course, not the knee's
         "Status post rotator cuff repair of the left shoulder last year.", (None, None, None, "A4")),
    ],
)  # fmt: skip
def test_postsurgical_courses_by_surgery(request_text: str, note: str, expected: tuple[Any, ...]) -> None:
    context = Context(texts=[Text("note", note)], injury=date(2026, 5, 1), as_of=date(2026, 11, 20))
    found = build_facts(request_text, context)
    answer = determine(found, RULES)
    got = (found.surgery_name, found.postsurgical_course, found.postsurgical_initial_course, answer.recommendation)
    assert got == expected
    if answer.recommendation == "A6":
        assert answer.certified_quantity == 6.0  # 16 in the course, 10 given
