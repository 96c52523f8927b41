"""What a physician does to an open review Task short of deciding it: save a draft of the decision, note a
peer-to-peer call, hand the Task to another reviewer, ask the provider for documentation.

Each is kept on the Task itself, as FHIR says: a draft as ``output`` entries typed ``draft-*`` (replaced by the
decision's outputs when it is made), a call as a ``note`` (an Annotation: who wrote it, when, what was said),
the reviewer it is handed to as ``owner``. Asking for documentation makes the ClaimResponse's next version with
the PASCommunicationRequests the determination would ask for (``adapter.fhir.attachments.ask``), the physician's
own question added, and the item's Task due by the information deadline (8 CCR 9792.9.1).

Pure functions on copies; the store keeps what they return in one transaction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson

from adapter.actions import ReviewAction
from adapter.determination.documentation import Need, to_ask
from adapter.errors import ReviewDecisionError
from adapter.fhir.attachments import ask, extend_reviews
from adapter.review.policy import Policy
from adapter.review.tasks import DECISIONS, REVIEW_SYSTEM, next_version, sequence_of
from adapter.types import JSON

#: The LOINC code a physician's own question is asked under when the item lacks nothing the rules name:
#: a progress note (11506-3), the record a physician asks a treating physician for.
QUESTION_CODE = "11506-3"
_DRAFTS = ("draft-decision", "draft-rationale", "draft-quantity")


@dataclass(frozen=True)
class Draft:
    """A decision being written: the action chosen (if any), the rationale and quantity so far."""

    action: ReviewAction | None = None
    rationale: str = ""
    quantity: float | None = None


def _copy(task: JSON) -> JSON:
    copied: JSON = orjson.loads(orjson.dumps(task))
    return copied


def _revised(task: JSON, now: datetime, *, author: str = "", note: str | None = None) -> JSON:
    """A Task's next version (changed in place), with a note by ``author`` when one is given."""
    stamp = now.isoformat(timespec="milliseconds")
    if note is not None:
        task.setdefault("note", []).append({"authorString": author[:200], "time": stamp, "text": note})
    task["lastModified"] = stamp
    next_version(task, stamp)
    return task


def _typed(code: str, key: str, value: Any) -> JSON:
    return {"type": {"coding": [{"system": REVIEW_SYSTEM, "code": code}], "text": code}, key: value}


def draft_of(task: JSON) -> Draft:
    """The draft kept on an open Task (an empty one when none is)."""
    found = {(o.get("type") or {}).get("text"): o for o in task.get("output", [])}
    code = ((found.get("draft-decision") or {}).get("valueCode")) or None
    quantity = (found.get("draft-quantity") or {}).get("valueDecimal")
    return Draft(
        ReviewAction(code) if code in {a.value for a in DECISIONS} else None,
        str((found.get("draft-rationale") or {}).get("valueString") or ""),
        float(quantity) if isinstance(quantity, int | float) else None,
    )


def save_draft(task: JSON, draft: Draft, now: datetime) -> JSON:
    """The Task's next version with this draft in place of the one before (a draft says nothing to the
    requester: the ClaimResponse is left as it is)."""
    task = _copy(task)
    outputs = [o for o in task.get("output", []) if (o.get("type") or {}).get("text") not in _DRAFTS]
    if draft.action is not None:
        outputs.append(_typed("draft-decision", "valueCode", draft.action.value))
    if draft.rationale.strip():
        outputs.append(_typed("draft-rationale", "valueString", draft.rationale.strip()[:4000]))
    if draft.quantity is not None and math.isfinite(draft.quantity):
        outputs.append(_typed("draft-quantity", "valueDecimal", draft.quantity))
    task["output"] = outputs
    return _revised(task, now)


def note_call(task: JSON, *, held: date, with_whom: str, said: str, author: str, now: datetime) -> JSON:
    """The Task's next version with a peer-to-peer call noted: when it was held, with whom, what was said."""
    if not with_whom.strip() or not said.strip():
        raise ReviewDecisionError("A peer-to-peer note needs whom you spoke with and what was said.",
                                  location="Task.note")  # fmt: skip
    text = f"Peer-to-peer call on {held.isoformat()} with {with_whom.strip()[:200]}: {said.strip()[:4000]}"
    return _revised(_copy(task), now, author=author, note=text)


def hand_off(task: JSON, owner: JSON, *, author: str, now: datetime) -> JSON:
    """The Task's next version owned by another reviewer (``owner``: an identifier and a name), noted."""
    identifier = owner.get("identifier") or {}
    if not identifier.get("value"):
        raise ReviewDecisionError("Choose the reviewer to hand this case to.", location="Task.owner")
    task = _copy(task)
    task["owner"] = owner
    return _revised(
        task, now, author=author, note=f"Handed to {owner.get('display') or identifier['value']} for review."
    )


def ask_documentation(
    tasks: Sequence[JSON],
    response: JSON,
    needs: Mapping[int, Sequence[Need]],
    question: str,
    *,
    author: str,
    now: datetime,
    policy: Policy,
) -> tuple[list[JSON], JSON]:
    """Ask the provider for documentation on these Tasks' items: the ClaimResponse's next version asks for what
    each item lacks (``needs`` by sequence) and the physician's question; the Tasks' next versions are due by
    ``policy``'s information deadline (California: 14 days from the request's receipt, not from the asking) and
    say what was asked."""
    question = question.strip()
    if not question:
        raise ReviewDecisionError("Write the question the provider is asked to answer.", location="Task.note")
    lines = {sequence_of(t) for t in tasks}
    response = _copy(response)
    own = Need(criterion="physician-question", facts=[], loinc=[QUESTION_CODE], question=question[:2000],
               citation="physician reviewer", decisive=True)  # fmt: skip
    received = datetime.fromisoformat(str(tasks[0]["authoredOn"]))
    # the physician's question, beside what each item asks anyway
    asks = {
        line: [own, *(n.model_copy(update={"decisive": True}) for n in to_ask(needs.get(line, [])))] for line in lines
    }
    ask(response, asks, received=received, deadlines=policy.deadlines, lines=lines)
    next_version(response, now.isoformat(timespec="milliseconds"))
    asked = f"Documentation asked of the provider: {question[:2000]}"
    changed = [_revised(_copy(task), now, author=author, note=asked) for task in tasks]
    extend_reviews(changed, response, received, deadlines=policy.deadlines)
    return changed, response
