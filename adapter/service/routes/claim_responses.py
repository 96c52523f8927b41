"""Where payers pull: ``GET /fhir/ClaimResponse/{id}`` and ``GET /fhir/ClaimResponse?...`` (paged)."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response

from adapter.service.admission import Principal
from adapter.service.http import ServiceError, fhir_response
from adapter.service.routes import context, requires
from adapter.service.search import MAX_COUNT, MAX_OFFSET, last_updated_bounds, number

router = APIRouter(prefix="/fhir")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_PARAMS = {"patient", "request", "outcome", "_lastUpdated", "_count", "_offset"}


@router.get("/ClaimResponse/{rid}")
def read_claim_response(
    rid: str, request: Request, _: Annotated[Principal, Depends(requires("ClaimResponse", "r"))]
) -> Response:
    ctx = context(request)
    request.state.target = f"ClaimResponse/{rid}"
    found = ctx.store.claim_response(rid) if _ID.fullmatch(rid) else None
    if found is None:
        raise ServiceError(404, "no such ClaimResponse", code="not-found", issue_type="not-found")
    return fhir_response(found, 200, {"ETag": f'W/"{found["meta"]["versionId"]}"'})


@router.get("/ClaimResponse")
def search_claim_responses(
    request: Request, _: Annotated[Principal, Depends(requires("ClaimResponse", "s"))]
) -> Response:
    ctx = context(request)
    params = request.query_params
    unknown = set(params) - _PARAMS
    if unknown:
        names = ", ".join(sorted(n[:40] for n in unknown)[:5])
        raise ServiceError(
            400, f"unsupported search parameters: {names}", code="bad-search", issue_type="not-supported"
        )
    count = number(params.get("_count"), "_count", default=20, low=1, high=MAX_COUNT, clamp=True)
    offset = number(params.get("_offset"), "_offset", default=0, low=0, high=MAX_OFFSET)
    total, found = ctx.store.search(
        patient=params.get("patient"),
        request=params.get("request"),
        outcome=params.get("outcome"),
        updated=last_updated_bounds(params.getlist("_lastUpdated")),
        offset=offset,
        count=count,
    )
    kept = [(k, v) for k, v in params.multi_items() if k != "_offset"]
    page = f"{ctx.base}/ClaimResponse"
    links = [{"relation": "self", "url": f"{page}?{urlencode([*kept, ('_offset', offset)])}"}]
    if offset + count < total:
        links.append({"relation": "next", "url": f"{page}?{urlencode([*kept, ('_offset', offset + count)])}"})
    entries = [{"fullUrl": f"{page}/{r['id']}", "resource": r, "search": {"mode": "match"}} for r in found]
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links, "entry": entries}
    return fhir_response(bundle)
