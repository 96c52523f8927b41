"""Physician review as FHIR Tasks: one ``requested`` Task per pended item, and the physician's decision
applied to the Task and to the ClaimResponse it focuses.

A review Task follows FHIR Workflow: ``code`` fulfill, ``intent`` order, ``focus`` the request it fulfils (the
Claim; a ServiceRequest when no Claim came), ``output`` the ClaimResponse (``claim-response``), ``requester``
the requesting provider, ``businessStatus`` the review action (A4 while pended, then the physician's), ``for``
the patient. It carries as
``input`` the item's sequence, the requested service (and quantity), the engine's recommendation (X12 306), its rules,
citations and evidence quotes, and the clock it runs on; ``restriction.period.end`` is when the decision is
due (``adapter.deadlines``, by the review policy's table: ``adapter.review.policy``). A reviewer completes it
with ``output`` entries typed ``decision``
(valueCodeableConcept A1, A3 or A6), ``rationale`` (valueString) and, for A6, ``authorized-quantity``;
the ClaimResponse then becomes a new version with the physician's reviewAction, the rationale in
``processNote`` and the reviewer in the PAS ``claimResponseReviewer`` extension. A decision made by a
signed-in reviewer (a ``Person``) names them as a Practitioner (name and NPI) contained in both the Task (its
``owner``) and the ClaimResponse (the adapter's ``reviewer`` extension).

Pure functions: the store (``adapter.service.state``) keeps what they return in one transaction.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from adapter.actions import ReviewAction
from adapter.deadlines import Clock, clock_of, due
from adapter.errors import ReviewClosedError, ReviewDecisionError
from adapter.fhir import extensions as extension
from adapter.fhir.attachments import withdraw
from adapter.fhir.navigate import concept_text
from adapter.fhir.pas import PAS, ordered, review_action_code
from adapter.fhir.request import RequestBundle, request_bundle
from adapter.fhir.response import (
    authorization_period,
    citation_text,
    decide_item,
    modified_item,
    note,
    recommendation,
    settle,
)
from adapter.npi import NPI_SYSTEM, npi_problem
from adapter.review.person import Person, contain
from adapter.review.policy import Policy
from adapter.tables import mappings
from adapter.types import JSON

if TYPE_CHECKING:
    from adapter.determination import Determination
    from adapter.determination.documentation import Need
    from adapter.fhir.request_facts import Requested

#: The codes of review Task inputs and outputs (``Task.input.type``, ``Task.output.type``).
REVIEW_SYSTEM = mappings().tables.fhir.systems.review
#: What a physician may decide: certify, not certify, modify (A2 and A4 are not a physician's final answer).
DECISIONS = (ReviewAction.CERTIFIED, ReviewAction.NOT_CERTIFIED, ReviewAction.MODIFIED)
TASK_CODE = {
    "coding": [{"system": mappings().tables.fhir.code_systems.task_code, "code": "fulfill"}],
    "text": "Physician review of a pended prior-authorization item",
}
#: The most an A6 may authorize when the request states no quantity (a modification is less than asked).
MAX_AUTHORIZED = 10_000


@dataclass(frozen=True)
class ReviewTask:
    """A Task to store, and the clinical texts (source, text) its evidence offsets point into."""

    resource: JSON
    documents: list[tuple[str, str]]


def task_identifier(value: str) -> JSON:
    """The business identifier of a Task the adapter makes, a review Task or the EHR Task that reports an
    answer: one system for both, the identifier system of kind "task" in ``mappings/fhir.yaml``."""
    return {"system": mappings().tables.identifier_system("task"), "value": value}


def _typed(code: str, value_key: str, value: Any) -> JSON:
    return {"type": {"coding": [{"system": REVIEW_SYSTEM, "code": code}], "text": code}, value_key: value}


def response_of(task: JSON) -> str:
    """The id of the ClaimResponse a review Task decides: its ``claim-response`` output (a Task made before
    Tasks followed FHIR Workflow focuses the ClaimResponse itself)."""
    answer = next(_typed_entries(task.get("output"), "claim-response"), None)
    reference = (answer or {}).get("valueReference") or task.get("focus") or {}
    return str(reference.get("reference", "")).removeprefix("ClaimResponse/")


def _answer(response_id: str) -> JSON:
    return _typed("claim-response", "valueReference", {"reference": f"ClaimResponse/{response_id}"})


def _status(action: ReviewAction) -> JSON:
    """``businessStatus``: where the review stands, as its X12 306 review action."""
    coding = {"system": mappings()[PAS].code_systems.review_action, "code": action.value, "display": action.display}
    return {"coding": [coding], "text": action.label}


def _typed_entries(entries: list[JSON] | None, code: str) -> Iterator[JSON]:
    """The Task inputs or outputs typed ``code`` (by the type's text or one of its codes)."""
    for entry in entries or []:
        concept = entry.get("type") or {}
        codes = {c.get("code") for c in concept.get("coding", []) if isinstance(c, dict)}
        if concept.get("text") == code or code in codes:
            yield entry


def inputs(task: JSON, code: str) -> list[Any]:
    """The values of a Task's inputs typed ``code``."""
    return [
        next((v for k, v in e.items() if k.startswith("value")), None) for e in _typed_entries(task.get("input"), code)
    ]


def first_input(task: JSON, code: str) -> Any:
    return next(iter(inputs(task, code)), None)


def recommendation_of(task: JSON) -> ReviewAction:
    """The engine's recommendation a review Task carries (A4 when it names none)."""
    concept = first_input(task, "recommendation") or {}
    return ReviewAction((concept.get("coding") or [{}])[0].get("code") or ReviewAction.PENDED)


def decision_of(task: JSON) -> ReviewAction | None:
    """The physician's decision on a completed review Task."""
    output = next(_typed_entries(task.get("output"), "decision"), None)
    return ReviewAction(output["valueCodeableConcept"]["coding"][0]["code"]) if output else None


def due_of(task: JSON, policy: Policy) -> datetime:
    """When a review Task is due, in the jurisdiction's time."""
    return datetime.fromisoformat(task["restriction"]["period"]["end"]).astimezone(policy.deadlines.zone)


def review_tasks(
    response: JSON,
    requested: Sequence[Requested],
    data: JSON | RequestBundle,
    received: datetime,
    needs: Mapping[int, Sequence[Need]] | None = None,
    *,
    answers: Sequence[Determination],
    policy: Policy,
) -> list[ReviewTask]:
    """A ``requested`` Task for every pended (A4) item of a new ClaimResponse (``data``: the request it answers,
    as the edge read it, or its checked JSON), built from the item's ``Determination`` (``answers``, one per
    ``requested``): its rules, citations, recommendation, rationale and evidence, the same the ClaimResponse
    carries; ``needs``, by item sequence, what the determination found each item's records lack
    (``Determination.documentation``); due as ``policy``'s deadlines say."""
    request_read = request_bundle(data, checked=True)
    claim: JSON = request_read.claim or {}
    items = {i.get("sequence"): i for i in claim.get("item", [])}
    by_sequence = {(r.sequence or n): (r, a) for n, (r, a) in enumerate(zip(requested, answers, strict=True), 1)}
    patient = _patient(response.get("patient"), request_read)
    moment = received.astimezone(UTC).isoformat(timespec="milliseconds")
    ends: dict[Clock, str] = {}  # when each clock's decision is due, worked out once
    tasks = []
    for item in response.get("item", []):
        if review_action_code(item.get("adjudication", [])) != ReviewAction.PENDED:
            continue
        sequence = item["itemSequence"]
        wanted, answer = by_sequence.get(sequence, (None, None))
        request = wanted.resource if wanted else {}
        clock = clock_of(request, received, claim=claim, item=items.get(sequence), table=policy.deadlines)
        inputs = [
            _typed("item-sequence", "valuePositiveInt", sequence),
            _typed("requested-service", "valueString", concept_text(ordered(request)) or "requested service"),
            _typed("clock", "valueCode", clock.value),
        ]
        product = (items.get(sequence) or {}).get("productOrService")
        if product and product.get("coding"):  # what an A6's addItem names: the Claim item's PAS code
            inputs.append(_typed("requested-code", "valueCodeableConcept", product))
        if wanted and wanted.facts.requested_count:  # what a modification may authorize at most
            inputs.append(_typed("requested-quantity", "valueDecimal", wanted.facts.requested_count))
        if answer is not None:
            inputs += [_typed("rule", "valueString", rule) for rule in answer.rules]
            inputs += [_typed("citation", "valueString", citation_text(c)) for c in answer.citations]
            inputs.append(_typed("recommendation", "valueCodeableConcept", recommendation(answer)))
            inputs.append(_typed("rationale", "valueString", answer.rationale))
        for need in (needs or {}).get(sequence, []):  # what would let it be decided
            codes = ", ".join(need.loinc)
            inputs.append(_typed("documentation-missing", "valueString",
                                 f"{need.criterion}: {need.question} (LOINC {codes}; {need.citation})"))  # fmt: skip
        for finding in answer.evidence if answer else []:
            if finding.status != "unknown" and finding.quote:
                where = f" ({finding.source})" if finding.source else ""
                inputs.append(_typed("evidence", "valueString", f"{finding.fact} {finding.status}: "
                                     f"\u201c{finding.quote}\u201d{where}"))  # fmt: skip
        if clock not in ends:
            ends[clock] = due(received, clock, policy.deadlines).isoformat(timespec="seconds")
        task_id = str(uuid.uuid4())
        task: JSON = {
            "resourceType": "Task",
            "id": task_id,
            "meta": {"versionId": "1", "lastUpdated": moment},
            "identifier": [task_identifier(task_id)],
            "status": "requested",
            "intent": "order",
            "priority": "urgent" if clock is Clock.EXPEDITED else "routine",
            "code": TASK_CODE,
            "businessStatus": _status(ReviewAction.PENDED),
            "description": f"Review: {inputs[1]['valueString']}"[:500],
            # FHIR Workflow: the Task fulfils the request (the Claim, else the service request) ...
            "focus": response.get("request") or ({"reference": wanted.reference} if wanted else None),
            "for": patient,
            "authoredOn": moment,
            "lastModified": moment,
            "restriction": {"period": {"start": moment, "end": ends[clock]}},
            "input": inputs,
            # ... and its output is the answer the decision makes final
            "output": [_answer(response["id"])],
        }
        if response.get("requestor"):
            task["requester"] = response["requestor"]
        task = {k: v for k, v in task.items() if v is not None}
        documents = [(t.source, t.text) for t in wanted.texts] if wanted else []
        tasks.append(ReviewTask(task, documents))
    return tasks


def _patient(reference: JSON | None, request: RequestBundle) -> JSON | None:
    """The Task's ``for``: the ClaimResponse's patient, with the patient's first identifier (a member id)
    beside the reference when the request holds the Patient, so that a reviewer knows whom it is about."""
    if not reference or request.shape == "service-request":
        return reference
    found = request.index.find(reference) or {}
    identifiers = [i for i in found.get("identifier", []) if isinstance(i, dict) and i.get("value")]
    if found.get("resourceType") != "Patient" or not identifiers:
        return reference
    return {**reference, "identifier": {k: v for k, v in identifiers[0].items() if k in ("system", "value")}}


# --- the physician's decision ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    action: ReviewAction
    rationale: str | None
    quantity: float | None
    #: The Task's owner: a reference naming the reviewer by identifier (and display).
    reviewer: JSON
    #: The signed-in reviewer the decision names (None: a decision sent as a FHIR Task names its owner).
    person: Person | None = None


def _output(task: JSON, code: str) -> JSON | None:
    return next(_typed_entries(task.get("output"), code), None)


#: The words of the review for what a physician does (the messages a reviewer reads are in them).
_VERBS = {ReviewAction.NOT_CERTIFIED: "not certify", ReviewAction.MODIFIED: "modify"}
#: Where in a sent Task an output of this type goes (FHIRPath), for the OperationOutcome's expression.
_OUTPUT = "Task.output.where(type.text = '{}')"


def _bad(message: str, where: str) -> ReviewDecisionError:
    return ReviewDecisionError(message, location=where)


def _open(stored: JSON) -> None:
    if stored.get("status") == "completed":
        raise ReviewClosedError(
            "this review Task is already completed; the first decision stands", location="Task.status"
        )


def decision_for(
    stored: JSON,
    action: ReviewAction | None,
    rationale: str | None,
    quantity: object,
    *,
    reviewer: JSON,
    person: Person | None = None,
) -> Decision:
    """The physician's decision on ``stored``, checked against it as it stands: one of A1, A3 and A6, a rationale
    to not certify or modify, to modify a quantity above zero and at most the one requested (``quantity`` is
    read for A6 only); ``ReviewDecisionError`` naming the Task output at fault, ``ReviewClosedError`` for a Task
    already decided. The review page makes it from its form, ``read_decision`` from a Task sent as FHIR."""
    _open(stored)
    if action not in DECISIONS:
        raise _bad("a decision output must carry A1 (certify), A3 (not certify) or A6 (modify)", "Task.output")
    if action.adverse and not (isinstance(rationale, str) and rationale.strip()):
        raise _bad(f"A rationale is required to {_VERBS[action]}.", _OUTPUT.format("rationale"))
    amount = None
    if action is ReviewAction.MODIFIED:
        value = quantity if isinstance(quantity, int | float) and not isinstance(quantity, bool) else math.nan
        if not math.isfinite(value) or value <= 0:
            raise _bad("The authorized quantity is required to modify: a number above zero.",
                       _OUTPUT.format("authorized-quantity"))  # fmt: skip
        requested = first_input(stored, "requested-quantity")
        most = requested if isinstance(requested, int | float) and requested > 0 else MAX_AUTHORIZED
        if value > most:
            raise _bad(f"A modification authorizes at most the quantity requested ({most:g}), not {value:g}.",
                       _OUTPUT.format("authorized-quantity"))  # fmt: skip
        amount = float(value)
    text = rationale.strip()[:4000] if isinstance(rationale, str) and rationale.strip() else None
    return Decision(action, text, amount, reviewer, person)


def read_decision(body: JSON, stored: JSON, person: Person | None = None) -> Decision:
    """The physician's decision in a Task sent to complete ``stored``, made by ``person`` (a signed-in
    reviewer) or else by the Task's owner as sent (an NPI there must pass its check digit);
    ``ReviewDecisionError`` (and ``ReviewClosedError`` for a Task already decided) when it cannot be applied."""
    _open(stored)
    if body.get("resourceType") != "Task" or body.get("id") != stored["id"]:
        raise _bad("send the Task itself, with the id of the URL", "Task.id")
    if body.get("status") != "completed":
        raise _bad("a review Task is updated to complete it: status must be 'completed'", "Task.status")
    if body.get("focus") not in (None, stored.get("focus")):
        raise _bad("a review decision cannot move the Task to another request", "Task.focus")
    owner = person.reference() if person is not None else _owner(body)
    decision = _output(body, "decision")
    codings = ((decision or {}).get("valueCodeableConcept") or {}).get("coding") or []
    codes = [c.get("code") for c in codings if isinstance(c, dict)]
    action = next((ReviewAction(c) for c in codes if c in {a.value for a in DECISIONS}), None)
    rationale = (_output(body, "rationale") or {}).get("valueString")
    value = None
    if action is ReviewAction.MODIFIED:  # the quantity a modification authorizes
        given = _output(body, "authorized-quantity") or {}
        value = given.get("valueQuantity", {}).get("value") if "valueQuantity" in given else (
            given.get("valueInteger", given.get("valueDecimal")))  # fmt: skip
    return decision_for(stored, action, rationale, value, reviewer=owner, person=person)


def _owner(body: JSON) -> JSON:
    """The reviewer a Task sent as FHIR names as its owner: an identifier (an NPI whose check digit is right,
    or a licence) and the display."""
    owner = body.get("owner") or {}
    identifier = owner.get("identifier") if isinstance(owner, dict) else None
    if not isinstance(identifier, dict) or not identifier.get("value") or not identifier.get("system"):
        raise _bad("the Task's owner is the reviewer, identified by NPI or licence (system and value)", "Task.owner")
    if identifier["system"] == NPI_SYSTEM and (problem := npi_problem(str(identifier["value"]))):
        raise _bad(f"the Task's owner: {problem}", "Task.owner.identifier.value")
    return {k: v for k, v in owner.items() if k in ("identifier", "display")}


def next_version(resource: JSON, moment: str) -> None:
    """A resource the adapter keeps made its next version (``meta.versionId`` one up), last updated ``moment``."""
    meta = resource.setdefault("meta", {})
    meta["versionId"] = str(int(meta.get("versionId", "1")) + 1)
    meta["lastUpdated"] = moment


def sequence_of(task: JSON) -> int:
    return int(first_input(task, "item-sequence") or 1)


def apply_decision(task: JSON, response: JSON, decision: Decision, *, now: datetime | None = None) -> tuple[JSON, JSON]:
    """The completed Task and the ClaimResponse's next version (copies; the inputs are left as they were)."""
    task, response = orjson.loads(orjson.dumps(task)), orjson.loads(orjson.dumps(response))
    pas = mappings()[PAS]
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    stamp = moment.isoformat(timespec="milliseconds")
    action, sequence = decision.action, sequence_of(task)
    item = next((i for i in response.get("item", []) if i.get("itemSequence") == sequence), None)
    if item is None or review_action_code(item.get("adjudication", [])) != ReviewAction.PENDED:
        raise ReviewClosedError(f"item {sequence} of the ClaimResponse is no longer pended", location="Task.focus")

    outputs = [_typed("decision", "valueCodeableConcept", {"coding": [{
        "system": pas.code_systems.review_action, "code": action.value, "display": action.display}]})]  # fmt: skip
    if decision.rationale:
        outputs.append(_typed("rationale", "valueString", decision.rationale))
    if decision.quantity is not None:
        outputs.append(_typed("authorized-quantity", "valueQuantity", {"value": decision.quantity}))
    outputs.append(_answer(response["id"]))
    task.update(status="completed", owner=decision.reviewer, output=outputs, lastModified=stamp,
                businessStatus=_status(action),
                executionPeriod={"start": task.get("authoredOn", stamp), "end": stamp})  # fmt: skip
    if decision.person is not None:
        contain(task, decision.person)
    next_version(task, stamp)

    number = decide_item(response, item, action, response.get("preAuthPeriod") or authorization_period(moment))
    if decision.quantity is not None:
        product = first_input(task, "requested-code") or {"text": first_input(task, "requested-service") or "service"}
        response.setdefault("addItem", []).append(modified_item(sequence, product, decision.quantity, number))
    reviewer = decision.reviewer.get("display") or _identifier_text(decision.reviewer["identifier"])
    words = decision.rationale or "Certified on physician review."
    noted = note(response, f"Physician reviewer {reviewer}: {action.display}. {words}")
    item["noteNumber"] = [*item.get("noteNumber", []), noted]
    extension.put(
        response, extension.pas_reviewer(pas.extensions.claim_response_reviewer, npi=decision.reviewer["identifier"])
    )
    if decision.person is not None:
        _name_reviewer(response, decision.person)
    settle(response)
    withdraw(response, {sequence})  # decided: nothing more is asked for it
    next_version(response, stamp)
    return task, response


def _name_reviewer(response: JSON, person: Person) -> None:
    """The ClaimResponse names the reviewer who decided: their Practitioner contained, referred to by the
    adapter's ``reviewer`` extension."""
    contain(response, person)
    extension.put(
        response, extension.simple(mappings().tables.fhir.extensions.reviewer, "valueReference", person.reference())
    )


def _identifier_text(identifier: JSON) -> str:
    system = identifier.get("system", "")
    label = "NPI" if system == NPI_SYSTEM else "licence"
    return f"{label} {identifier.get('value', '')}"
