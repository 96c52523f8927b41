"""Where payers pull: ``GET /fhir/ClaimResponse/{id}`` and ``GET /fhir/ClaimResponse?...`` (paged)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from adapter.service.admission import Principal
from adapter.service.http import FHIR_ID, ServiceError, etag, fhir_response
from adapter.service.routes import context, requires, search_params, searchset
from adapter.service.search import last_updated_bounds

router = APIRouter(prefix="/fhir")
_PARAMS = {"patient", "request", "outcome", "_lastUpdated"}


@router.get("/ClaimResponse/{rid}")
def read_claim_response(
    rid: str, request: Request, _: Annotated[Principal, Depends(requires("ClaimResponse", "r"))]
) -> Response:
    ctx = context(request)
    request.state.target = f"ClaimResponse/{rid}"
    found = ctx.store.claim_response(rid) if FHIR_ID.fullmatch(rid) else None
    if found is None:
        raise ServiceError(404, "no such ClaimResponse", code="not-found", issue_type="not-found")
    return fhir_response(found, 200, etag(found))


@router.get("/ClaimResponse")
def search_claim_responses(
    request: Request, _: Annotated[Principal, Depends(requires("ClaimResponse", "s"))]
) -> Response:
    ctx = context(request)
    params = request.query_params
    search = search_params(request, _PARAMS)
    page = ctx.store.search(
        patient=params.get("patient"),
        request=params.get("request"),
        outcome=params.get("outcome"),
        updated=last_updated_bounds(params.getlist("_lastUpdated")),
        offset=search.offset,
        count=search.count,
    )
    return fhir_response(searchset(ctx, request, "ClaimResponse", page, search))
