"""Where EHRs push: ``POST /fhir/ServiceRequest`` (a ServiceRequest, or a collection Bundle with one and
its context) and ``POST /fhir/Claim/$submit`` (a Da Vinci PAS request Bundle). Both are ``def`` routes:
parsing, checking and determining run in the thread pool, never on the event loop."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response

from adapter.fhir.r5 import review_action_code
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


@router.post("/Claim/$submit")
def submit(
    request: Request,
    _: Annotated[Principal, Depends(requires("Claim", "c"))],
    raw: Annotated[bytes, Depends(body())],
) -> Response:
    ctx = context(request)
    data = ctx.inbound(raw)
    entries = data.get("entry") or []
    if data["resourceType"] != "Bundle" or data.get("type") != "collection":
        raise _refuse("$submit takes a PAS request Bundle: type collection", "not-pas")
    if not entries or (entries[0].get("resource") or {}).get("resourceType") != "Claim":
        raise _refuse("$submit takes a PAS request Bundle whose first entry is the Claim", "not-pas")
    claim = entries[0]["resource"]
    also = [f"claim:{i.get('system')}|{i['value']}" for i in claim.get("identifier", []) if i.get("value")]
    response, _created = _answer(ctx, request, data, _key("submit", data), also)
    answer_bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": response["meta"]["lastUpdated"],
        "entry": [{"fullUrl": f"{ctx.base}/ClaimResponse/{response['id']}", "resource": response}],
    }
    return fhir_response(answer_bundle)
