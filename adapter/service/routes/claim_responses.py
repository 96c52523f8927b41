"""Where payers pull: ``GET /fhir/ClaimResponse/{id}`` and ``GET /fhir/ClaimResponse?...`` (paged)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from adapter.service.admission import Principal
from adapter.service.http import FHIR_ID, ServiceError, etag, fhir_response
from adapter.service.routes import Capability, audited, context, requires, search_params, searchset
from adapter.service.search import last_updated_bounds
from adapter.types import JSON

router = APIRouter(prefix="/fhir")


def _offered() -> list[JSON]:
    return [
        {
            "type": "ClaimResponse",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": n, "type": t}
                for n, t in (
                    ("patient", "reference"),
                    ("request", "reference"),
                    ("outcome", "token"),
                    ("_lastUpdated", "date"),
                    ("_count", "number"),
                )
            ],
        }
    ]


CAPABILITY = Capability(resources=_offered)
_PARAMS = {"patient", "request", "outcome", "_lastUpdated"}


@router.get("/ClaimResponse/{rid}")
def read_claim_response(
    rid: str, request: Request, _: Annotated[Principal, Depends(requires("ClaimResponse", "r"))]
) -> Response:
    ctx = audited(request, f"ClaimResponse/{rid}")
    found = ctx.store.claim_response(rid) if FHIR_ID.fullmatch(rid) else None
    if found is None:
        raise ServiceError(404, "no such ClaimResponse", code="not-found", issue_type="not-found")
    return fhir_response(found, 200, etag(found))


def _history_entry(base: str, rid: str, version: JSON) -> JSON:
    """A history entry: version 1 was created, every later one an update (a physician's decision)."""
    created = version["meta"]["versionId"] == "1"
    return {
        "fullUrl": base,
        "resource": version,
        "request": {"method": "POST", "url": "ClaimResponse"} if created else {"method": "PUT",
                                                                              "url": f"ClaimResponse/{rid}"},
        "response": {"status": "201" if created else "200", "etag": etag(version)["ETag"],
                     "lastModified": version["meta"]["lastUpdated"]},
    }  # fmt: skip


@router.get("/ClaimResponse/{rid}/_history")
def claim_response_history(
    rid: str, request: Request, _: Annotated[Principal, Depends(requires("ClaimResponse", "r"))]
) -> Response:
    """Every version of a ClaimResponse, newest first: a ``history`` Bundle (the first made by a create, the
    later by a physician's decision)."""
    ctx = audited(request, f"ClaimResponse/{rid}/_history")
    versions = ctx.store.claim_response_versions(rid) if FHIR_ID.fullmatch(rid) else []
    if not versions:
        raise ServiceError(404, "no such ClaimResponse", code="not-found", issue_type="not-found")
    base = f"{ctx.base}/ClaimResponse/{rid}"
    entries = [_history_entry(base, rid, v) for v in versions]
    return fhir_response({"resourceType": "Bundle", "type": "history", "total": len(entries),
                          "link": [{"relation": "self", "url": f"{base}/_history"}], "entry": entries})  # fmt: skip


@router.get("/ClaimResponse/{rid}/_history/{vid}")
def read_claim_response_version(
    rid: str, vid: str, request: Request, _: Annotated[Principal, Depends(requires("ClaimResponse", "r"))]
) -> Response:
    """One version of a ClaimResponse (vread)."""
    ctx = audited(request, f"ClaimResponse/{rid}/_history/{vid}")
    versions = ctx.store.claim_response_versions(rid) if FHIR_ID.fullmatch(rid) else []
    found = next((v for v in versions if v["meta"]["versionId"] == vid), None)
    if found is None:
        raise ServiceError(404, "no such ClaimResponse version", code="not-found", issue_type="not-found")
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
