"""Where EHRs push: ``POST /fhir/ServiceRequest`` (a ServiceRequest, or a collection Bundle with one and
its context) and ``POST /fhir/Claim/$submit`` (a Da Vinci PAS request Bundle). Both are ``def`` routes:
parsing, checking and determining run in the thread pool, never on the event loop."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request, Response

from adapter.fhir.conformance import check_inquiry, check_request, claim_npis, member_ids
from adapter.fhir.navigate import Index
from adapter.fhir.pas import PAS, review_action_code
from adapter.fhir.request import RequestBundle
from adapter.fhir.response import inquiry_bundle, response_bundle
from adapter.service.admission import Principal
from adapter.service.http import ServiceError, fhir_response
from adapter.service.pipeline import answer
from adapter.service.routes import Capability, ServiceContext, body, context, requires
from adapter.service.subscriptions import senders
from adapter.service.tracing import tracer
from adapter.service.updates import UnknownClaimError, answer_update, earlier_claim, is_update
from adapter.tables import mappings
from adapter.types import JSON

router = APIRouter(prefix="/fhir")


def _offered() -> list[JSON]:
    pas = mappings()[PAS].canonicals
    return [
        {"type": "ServiceRequest", "interaction": [{"code": "create"}]},
        {"type": "Claim", "operation": [{"name": "submit", "definition": pas.claim_submit},
                                        {"name": "inquire", "definition": pas.claim_inquiry}]},
    ]  # fmt: skip


CAPABILITY = Capability(resources=_offered)


def _key(kind: str, data: JSON) -> str:
    return f"{kind}:{hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()}"


def _refuse(message: str, code: str) -> ServiceError:
    return ServiceError(400, message, code=code, issue_type="structure")


def _answer(
    ctx: ServiceContext,
    request: Request,
    data: RequestBundle,
    key: str,
    also: list[str],
    inquiry: list[tuple[str, str]] | None = None,
    resources: list[JSON] | None = None,
    senders: list[tuple[str, str]] | None = None,
    *,
    status: int,
) -> tuple[JSON, bool]:
    """(ClaimResponse, created?); a new answer is kept with this exchange's audit row (outcome ``status``, the
    status a new answer is sent with) in its one transaction, and the exchange is not audited again."""
    exchange = (request.state.principal, f"{request.method} {request.scope['route'].path}", str(status))
    with tracer.start_as_current_span("determine"):
        response, created = answer(
            ctx.store,
            data,
            key,
            forward=ctx.settings.forwarding,
            also=also,
            limits=ctx.limits,
            policy=ctx.policy,
            inquiry=inquiry or (),
            resources=resources or (),
            senders=senders or (),
            exchange=exchange,
        )
    request.state.target = f"ClaimResponse/{response['id']}"
    request.state.audited = created
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
    key = _key("service-request", data)
    if data["resourceType"] == "Bundle":  # its resources kept and served, so what the answer names resolves
        local = RequestBundle.of(data).localized(key, ctx.base)
        response, created = _answer(ctx, request, local, key, [], resources=local.resources, status=201)
    else:
        response, created = _answer(ctx, request, RequestBundle.of(data), key, [], status=201)
    location = f"{ctx.base}/ClaimResponse/{response['id']}"
    return fhir_response(response, 201 if created else 200, {"Location": location})


def _claim_keys(claim: JSON) -> list[str]:
    """A Claim's business keys: ``claim:system|value`` of each identifier."""
    return [f"claim:{i.get('system')}|{i['value']}" for i in claim.get("identifier", []) if i.get("value")]


#: At most this many (member id, NPI) pairs are kept per submission (a Claim names a few of each).
_MAX_INQUIRY_KEYS = 64


@router.post("/Claim/$submit")
def submit(
    request: Request,
    principal: Annotated[Principal, Depends(requires("Claim", "c"))],
    raw: Annotated[bytes, Depends(body())],
) -> Response:
    """Da Vinci PAS ``Claim/$submit``: a PAS request Bundle in (refused with every broken rule listed when it
    is not one), a PAS response Bundle out: the ClaimResponse first, then what it refers to. The request's
    resources are kept under ids of the service's own (``adapter.fhir.local``) and served, so what the answer
    names resolves; the answer is kept under the patient's member ids and the providers' NPIs, which a PAS
    inquiry matches on, and under its sending system (TransmissionIdentifiers), whose subscriptions hear of
    every version."""
    ctx = context(request)
    data = ctx.inbound(raw)
    bundle = RequestBundle.of(data)  # the one index of the request: the checker, the parties, the stored copy
    check_request(data, bundle.index)
    claim = data["entry"][0]["resource"]
    sent = [(org, principal.name) for org in senders(claim)]
    members, providers = sorted(member_ids(bundle.index, claim.get("patient"))), sorted(claim_npis(bundle.index, claim))
    pairs = [(m, p) for m in members for p in providers][:_MAX_INQUIRY_KEYS]
    key = _key("submit", data)
    local = bundle.localized(key, ctx.base)
    if is_update(claim):
        return _update(ctx, request, local.data, key, pairs, local.resources, sent)
    response, _created = _answer(ctx, request, local, key, _claim_keys(claim), pairs, local.resources, sent, status=200)
    answer_bundle = response_bundle(
        response, f"{ctx.base}/ClaimResponse/{response['id']}", local.data, timestamp=response["meta"]["lastUpdated"]
    )
    return fhir_response(answer_bundle)


def _update(ctx: ServiceContext, request: Request, local: JSON, key: str, pairs: list[tuple[str, str]],
            held: list[JSON], sent: list[tuple[str, str]]) -> Response:  # fmt: skip
    """A PASClaimUpdate: the next version of the ClaimResponse that answered the Claim it updates (found by
    that Claim's identifiers), in a PAS response Bundle with what it refers to, from this request or earlier."""
    claim = local["entry"][0]["resource"]
    earlier = earlier_claim(local, claim)
    rid = next((found for k in _claim_keys(earlier) if (found := ctx.store.processed(k))), None)
    answered = ctx.store.claim_response(rid) if rid else None
    if rid is None or answered is None:
        raise UnknownClaimError("the Claim this update relates to was not submitted here", location="Claim.related")
    also = [k for k in _claim_keys(claim) if ctx.store.processed(k) != rid]
    with tracer.start_as_current_span("determine"):
        response, _changed = answer_update(
            ctx.store, local, key, answered, forward=ctx.settings.forwarding, also=also, limits=ctx.limits,
            policy=ctx.policy, inquiry=pairs, resources=held,
            who=getattr(request.state, "principal", "service"), senders=sent,
        )  # fmt: skip
    request.state.target = f"ClaimResponse/{rid}/_history/{response['meta']['versionId']}"
    pool = {"entry": [{"fullUrl": f"{ctx.base}/{r['resourceType']}/{r['id']}", "resource": r}
                      for r in ctx.store.resources_of(rid)]}  # fmt: skip
    url = f"{ctx.base}/ClaimResponse/{rid}"
    return fhir_response(response_bundle(response, url, pool, timestamp=response["meta"]["lastUpdated"]))


@router.post("/Claim/$inquire")
def inquire(
    request: Request,
    _: Annotated[Principal, Depends(requires("ClaimResponse", "r"))],
    raw: Annotated[bytes, Depends(body())],
) -> Response:
    """Da Vinci PAS ``Claim/$inquire``: a PAS inquiry Bundle in (refused, 400 naming each broken rule, when it
    is not one), a ``Parameters`` out with one ``return`` inquiry response Bundle per submitted Claim whose
    patient has one of the inquiry's member ids and which named one of the inquiry provider's NPIs (PAS
    spec-53); none matching is an empty ``Parameters``, not an error. The inquiry's own Claim identifier
    names the inquiry, not what it looks for. Each answer is the ClaimResponse's current version: the
    current result of every item."""
    ctx = context(request)
    data = ctx.inbound(raw)
    index = Index.of_bundle(data)
    check_inquiry(data, index)
    claim = data["entry"][0]["resource"]
    found = [
        r
        for rid in ctx.store.inquired(sorted(member_ids(index, claim.get("patient"))), sorted(claim_npis(index, claim)))
        if (r := ctx.store.claim_response(rid)) is not None
    ]
    request.state.target = ",".join(f"ClaimResponse/{r['id']}" for r in found)[:160] or None
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    results = [
        {
            "name": "return",
            "resource": inquiry_bundle(r, data, f"{ctx.base}/ClaimResponse/{r['id']}", timestamp=now, index=index),
        }
        for r in found
    ]
    return fhir_response({"resourceType": "Parameters", "parameter": results} if results else
                         {"resourceType": "Parameters"})  # fmt: skip
