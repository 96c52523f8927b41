"""The parser against the 64 published letters in ../shared/corpus and their ground truth."""

from __future__ import annotations

import pytest

from adapter import parse_letter
from adapter.evaluation import HEADER_FIELDS, PATIENT_FIELDS, REVIEWER_FIELDS, Score
from tests.conftest import CORPUS, corpus_truth, needs_corpus

pytestmark = needs_corpus


@pytest.fixture(scope="module")
def text_score() -> Score:
    score = Score()
    for truth in corpus_truth():
        score.add(parse_letter((CORPUS / "text" / f"{truth['case_number']}.txt").read_text()), truth)
    return score


def test_every_item_found_and_every_decision_right(text_score: Score) -> None:
    assert text_score.accuracy("items.count") == 1.0, text_score.mismatches
    assert text_score.accuracy("items.decision") == 1.0, text_score.mismatches


@pytest.mark.parametrize("field", [*HEADER_FIELDS, *PATIENT_FIELDS, *REVIEWER_FIELDS, "items.guideline_basis"])
def test_fields_at_least_99_percent(text_score: Score, field: str) -> None:
    assert text_score.accuracy(field) >= 0.99, [m for m in text_score.mismatches if m[1] == field]


def test_requests_match_ground_truth(text_score: Score) -> None:
    assert text_score.accuracy("items.request") >= 0.99, [m for m in text_score.mismatches if m[1] == "items.request"]


def test_pdfs_parse_like_their_text() -> None:
    for truth in corpus_truth()[::8]:
        name = truth["case_number"]
        from_pdf = parse_letter((CORPUS / "pdf" / f"{name}.pdf").read_bytes())
        from_text = parse_letter((CORPUS / "text" / f"{name}.txt").read_text())
        assert from_pdf.model_dump(exclude={"source"}) == from_text.model_dump(exclude={"source"}), name
