"""Where EHRs push: ``POST /fhir/ServiceRequest`` (a ServiceRequest, or a collection Bundle with one and
its context) and ``POST /fhir/Claim/$submit`` (a Da Vinci PAS request Bundle). Both are ``def`` routes:
parsing, checking and determining run in the thread pool, never on the event loop."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response

from adapter.errors import ConformanceError
from adapter.fhir.navigate import Index
from adapter.fhir.pas import check_request, review_action_code
from adapter.fhir.response import inquiry_bundle, response_bundle
from adapter.service.admission import Principal
from adapter.service.http import ServiceError, fhir_response
from adapter.service.pipeline import answer
from adapter.service.routes import ServiceContext, body, context, requires
from adapter.service.tracing import tracer

JSON = dict[str, Any]
router = APIRouter(prefix="/fhir")


def _key(kind: str, data: JSON) -> str:
    return f"{kind}:{hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()}"


def _refuse(message: str, code: str) -> ServiceError:
    return ServiceError(400, message, code=code, issue_type="structure")


def _answer(ctx: ServiceContext, request: Request, data: JSON, key: str, also: list[str]) -> tuple[JSON, bool]:
    with tracer.start_as_current_span("determine"):
        response, created = answer(
            ctx.store,
            data,
            key,
            forward=ctx.settings.forwarding,
            also=also,
            limits=ctx.limits,
            adverse=ctx.settings.determination.adverse,
        )
    request.state.target = f"ClaimResponse/{response['id']}"
    if created:
        for item in response.get("item", []):
            ctx.metrics.determinations.labels(review_action_code(item.get("adjudication", [])) or "none").inc()
    return response, created


@router.post("/ServiceRequest")
def post_service_request(
    request: Request,
    _: Annotated[Principal, Depends(requires("ServiceRequest", "c"))],
    raw: Annotated[bytes, Depends(body())],
) -> Response:
    ctx = context(request)
    data = ctx.inbound(raw)
    if data["resourceType"] not in ("ServiceRequest", "Bundle"):
        raise _refuse("post a ServiceRequest, or a Bundle with one and its context", "wrong-type")
    if data["resourceType"] == "Bundle" and data.get("type") != "collection":
        raise _refuse(f"a request Bundle is a collection, not {data.get('type')!r}", "bundle-type")
    response, created = _answer(ctx, request, data, _key("service-request", data), [])
    location = f"{ctx.base}/ClaimResponse/{response['id']}"
    return fhir_response(response, 201 if created else 200, {"Location": location})


def _identifiers(resource: JSON) -> list[str]:
    """A resource's identifiers as ``system|value`` (those with a value)."""
    return [f"{i.get('system')}|{i['value']}" for i in resource.get("identifier", []) if i.get("value")]


def _claim_keys(claim: JSON) -> list[str]:
    return [f"claim:{i}" for i in _identifiers(claim)]


def _members(bundle: JSON, claim: JSON) -> list[str]:
    """The patient's identifiers (system|value) as the Claim's Bundle gives them: what an inquiry must match."""
    patient = Index.of_bundle(bundle).find(claim.get("patient")) or {}
    if patient.get("resourceType") != "Patient":
        return []
    return _identifiers(patient)


@router.post("/Claim/$submit")
def submit(
    request: Request,
    _: Annotated[Principal, Depends(requires("Claim", "c"))],
    raw: Annotated[bytes, Depends(body())],
) -> Response:
    """Da Vinci PAS ``Claim/$submit``: a PAS request Bundle in (refused with every broken rule listed when it
    is not one), a PAS response Bundle out: the ClaimResponse first, then what it refers to."""
    ctx = context(request)
    data = ctx.inbound(raw)
    check_request(data)
    claim = data["entry"][0]["resource"]
    claims = _claim_keys(claim)
    members = [f"member:{c}#{m}" for c in claims for m in _members(data, claim)]
    response, _created = _answer(ctx, request, data, _key("submit", data), [*claims, *members])
    answer_bundle = response_bundle(
        response, f"{ctx.base}/ClaimResponse/{response['id']}", data, timestamp=response["meta"]["lastUpdated"]
    )
    return fhir_response(answer_bundle)


@router.post("/Claim/$inquire")
def inquire(
    request: Request,
    _: Annotated[Principal, Depends(requires("ClaimResponse", "r"))],
    raw: Annotated[bytes, Depends(body())],
) -> Response:
    """Da Vinci PAS ``Claim/$inquire``: the current answer to a Claim submitted before, found by the Claim's
    identifier and the patient's (both must match, as PAS requires), in a PAS inquiry response Bundle with the
    inquiry's Patient, insurer and requestor. An inquiry by Claim identifier matches at most one Claim, so
    the Bundle is returned as the operation's single ``return`` (R4 operations); none matching is a 404."""
    ctx = context(request)
    data = ctx.inbound(raw)
    entries = data.get("entry") or []
    claim = (entries[0].get("resource") or {}) if entries else {}
    if data.get("resourceType") != "Bundle" or data.get("type") != "collection" or claim.get("resourceType") != "Claim":
        raise ConformanceError(
            "$inquire takes a PAS inquiry Bundle: a collection whose first entry is the Claim",
            faults=[("Bundle.entry[0]", "PASInquiryRequestBundle obeys ClaimFirst (Bundle.fsh:29,94)",
                     "the first entry must be the Claim inquiry")],
        )  # fmt: skip
    members = _members(data, claim)
    if not members:
        raise ConformanceError(
            "an inquiry identifies the patient by identifier (the member id)",
            faults=[("Claim.patient", "PAS inquiry: the patient is identified by member id (specification.html)",
                     "the inquiry's Patient carries no identifier")],
        )  # fmt: skip
    found = None
    for key in _claim_keys(claim):
        if any(ctx.store.processed(f"member:{key}#{m}") for m in members):
            rid = ctx.store.processed(key)
            found = ctx.store.claim_response(rid) if rid else None
            break
    if found is None:
        raise ServiceError(404, "no submitted Claim matches this identifier and patient", code="not-found",
                           issue_type="not-found")  # fmt: skip
    request.state.target = f"ClaimResponse/{found['id']}"
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    return fhir_response(inquiry_bundle(found, data, f"{ctx.base}/ClaimResponse/{found['id']}", timestamp=now))
