"""What the review pages show (adapter.service.workstation): clinical text made readable with its offsets
kept, every evidence quote marked and anchored (the decisive first), the rationale a physician starts from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapter.actions import ReviewAction
from adapter.fhir.pas import review_action
from adapter.review.cases import CaseContext, CaseItem
from adapter.review.policy import DEFAULT_POLICY
from adapter.service.workstation import Fact, documents, duplicates, earlier, readable, suggested_rationale

EHR, READER = "ehr-token", "reader-token"
PASSWORD = "a long enough password"
ADA, BEN = ("1234567893", "Dr. Ada Reyes"), ("1245319599", "Dr. Ben Ode")


# --- shaping ------------------------------------------------------------------------------------------


def test_wrapped_lines_are_joined_and_offsets_kept() -> None:
    text = ("The patient was seen for low back pain after lifting a box at work, and\nstates the pain is worse.\n"
            "\nPlan:\n- MRI\n- naproxen")  # fmt: skip
    shown = readable(text)
    assert len(shown) == len(text)
    assert "at work, and states the pain" in shown
    assert shown.endswith("\n\nPlan:\n- MRI\n- naproxen")


def test_quotes_are_marked_the_decisive_first_and_anchored() -> None:
    text = "Neurologic examination is normal. No red flags. Pain 7/10."
    facts = [(Fact("red_flags", "absent", "No red flags.", "Note/1", False), None),
             (Fact("neurologic_deficit", "absent", "Neurologic examination is normal.", "Note/1", True), 11),
             (Fact("pain_relief", "absent", "Not in the text.", "Note/1", False), None)]  # fmt: skip
    (document,), anchors = documents([("Note/1", text)], facts, None)
    marked = [s for s in document.segments if s.get("fact")]
    assert [(s["text"], s["decisive"]) for s in marked] == [("Neurologic examination is normal.", True),
                                                            ("No red flags.", False)]  # fmt: skip
    assert sorted(anchors) == [0, 1] and anchors[1] == marked[0]["anchor"]
    assert "".join(s["text"] for s in document.segments) == text


def test_the_rationale_offered_is_the_guideline_s_not_the_pending_words() -> None:
    task = {"input": [
        {"type": {"text": "rationale"}, "valueString": "Recommended not certified; under California Labor Code 4610 "
         "only a physician reviewer may deny or modify a request, so it is pended for one. Imaging needs red flags."},
        {"type": {"text": "citation"}, "valueString": "MTUS Low Back, Special Studies"}]}  # fmt: skip
    assert suggested_rationale(task, DEFAULT_POLICY) == "Imaging needs red flags. (MTUS Low Back, Special Studies)"


def _case(rid: str, received: datetime, *keys: str) -> CaseContext:
    items = [CaseItem(sequence=n, service=key, key=key) for n, key in enumerate(keys, start=1)]
    return CaseContext(id=rid, received=received, patient_key="m|1", patient="member 1", items=items)


def test_a_duplicate_is_the_same_service_for_the_same_patient_within_60_days() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    case = _case("c", now, "cpt|72148", "cpt|97110")
    others = [_case("same", now - timedelta(days=59), "cpt|72148"), _case("old", now - timedelta(days=61), "cpt|72148"),
              _case("other", now - timedelta(days=3), "cpt|20610"), case]  # fmt: skip
    assert duplicates(case, others) == ["same"]
    response = {"item": [{"itemSequence": 1, "adjudication": [review_action("A3")]}]}
    history = earlier(case, [(o, response) for o in others])
    assert [(e.id, e.duplicate) for e in history] == [("same", True), ("old", False), ("other", False)]
    assert history[0].answers == [("cpt|72148", ReviewAction.NOT_CERTIFIED)]  # what it was answered, now
