"""Where providers answer documentation requests: ``POST /fhir/$submit-attachment`` (Da Vinci CDex), a ``def``
route (reading the text and determining again run in the thread pool)."""

from __future__ import annotations

import hashlib
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request, Response

from adapter.fhir.attachments import submission
from adapter.fhir.pas import review_action_code
from adapter.service.admission import Principal
from adapter.service.attachments import receive, tracking_key
from adapter.service.http import fhir_response
from adapter.service.routes import Capability, body, context, requires
from adapter.service.tracing import tracer
from adapter.tables import mappings
from adapter.types import JSON

router = APIRouter(prefix="/fhir")


def _offered() -> list[JSON]:
    return [
        {
            "name": "submit-attachment",
            "definition": mappings().tables.fhir.canonicals.cdex_submit_attachment,
            "documentation": "CDex attachments answering a pended prior authorization's documentation "
            "requests (AttachTo preauthorization; Content a DocumentReference with inline text/plain "
            "or PDF data, or a QuestionnaireResponse to one of the Questionnaires served here): the "
            "items it answers are determined again.",
        }
    ]


CAPABILITY = Capability(operations=_offered)


@router.post("/$submit-attachment")
def submit_attachment(
    request: Request,
    principal: Annotated[Principal, Depends(requires("Claim", "u"))],
    raw: Annotated[bytes, Depends(body())],
) -> Response:
    """CDex ``$submit-attachment`` for a prior authorization pended here: the attachment is matched to the open
    request by its tracking id (an item's pend reference number, or the Claim's identifier), its member and
    provider checked (422, nothing kept, when they are not the request's), kept, and the items it answers are
    determined again: 200 with an OperationOutcome naming the new version of the ClaimResponse
    (``Content-Location``); the same submission again, the same version. A tracking id not known here (yet), or
    one the worker asked the EHR with, is held: 202 with an informational OperationOutcome (CDex CONF-021)."""
    ctx = context(request)
    data = ctx.inbound(raw)
    submitted = submission(data)
    key = f"attachment:{hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()}"
    with tracer.start_as_current_span("determine"):
        received = receive(
            ctx.store, submitted, data, key, forward=ctx.settings.forwarding, limits=ctx.limits,
            policy=ctx.policy, who=getattr(request.state, "principal", principal.name),
        )  # fmt: skip
    response = received.response
    if response is None:
        request.state.target = f"tracking {tracking_key(submitted)}"[:160]
        return fhir_response(_informational(received.held), 202)
    for item in response.get("item", []):
        if item.get("itemSequence") in received.lines:  # determined again
            ctx.metrics.determinations.labels(review_action_code(item.get("adjudication", [])) or "none").inc()
    version = f"ClaimResponse/{response['id']}/_history/{response['meta']['versionId']}"
    request.state.target = version
    said = f"attachment accepted; the answer is now {version} ({response['disposition']})"
    return fhir_response(_informational(said), 200, {"Content-Location": f"{ctx.base}/{version}"})


def _informational(text: str) -> JSON:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational", "details": {"text": text}}]}  # fmt: skip
