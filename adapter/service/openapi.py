"""The service's OpenAPI document (``/openapi.json``, shown at ``/docs``): what FastAPI reads off the routes
(paths, methods, path parameters, docstrings), less what it would state wrongly.

The routes read their FHIR bodies and search parameters themselves, so FastAPI knows neither and none is
described; it would claim JSON answers and 422 validation errors, where the service sends FHIR JSON (or
Prometheus text) and answers a malformed request with 400 and an OperationOutcome. Those are corrected. The
bearer token is FastAPI's own reading of the routes' admission dependency (``routes.requires``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["document"]

_DESCRIPTION = (
    "FHIR R4 facade of the IMR adapter. EHRs post ServiceRequests or Da Vinci PAS Claim Bundles and get the "
    "ClaimResponse at once; payers read ClaimResponses; physician reviewers read and complete review Tasks. "
    "Bodies are FHIR JSON (Content-Type: application/fhir+json); every error is an OperationOutcome. "
    "The request collection in fixtures/http/ has a working example of each call."
)
_ANSWERS = {
    "2XX": {"description": "FHIR JSON", "content": {"application/fhir+json": {}}},
    "default": {
        "description": "an OperationOutcome saying what is wrong (400, 401, 403, 404, 409, 412, 413, 415, 422, "
        "429; 503 with Retry-After while the state database fails)",
        "content": {"application/fhir+json": {}},
    },
}


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document for ``app``, made once."""
    if app.openapi_schema is None:
        spec = get_openapi(title=app.title, version=app.version, description=_DESCRIPTION, routes=app.routes)
        for path, operations in spec["paths"].items():
            for operation in operations.values():
                if "description" in operation:
                    operation["description"] = " ".join(operation["description"].replace("``", "").split())
                if path == "/metrics":
                    operation["responses"] = {
                        "200": {"description": "Prometheus metrics", "content": {"text/plain": {}}}
                    }
                else:
                    operation["responses"] = _ANSWERS
        components = spec.get("components", {})
        for name in ("HTTPValidationError", "ValidationError"):  # named only by the 422 answers dropped
            components.get("schemas", {}).pop(name, None)
        if not components.get("schemas", True):
            del components["schemas"]
        app.openapi_schema = spec
    return app.openapi_schema
