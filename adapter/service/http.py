"""The service's HTTP vocabulary: refusals with their status, and FHIR JSON responses."""

from __future__ import annotations

import re
from typing import Any

import orjson
from fastapi import Response

from adapter.errors import AdapterError

FHIR_JSON = "application/fhir+json"
ACCEPTED_TYPES = ("application/fhir+json", "application/json")


class ServiceError(AdapterError):
    """An HTTP-level refusal with its status (400, 401, 403, 404, 405, 409, 412, 413, 415, 429, 503)."""

    code = "service"

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str,
        issue_type: str = "processing",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code  # type: ignore[misc]
        self.issue_type = issue_type  # type: ignore[misc]
        self.headers = headers or {}


#: A FHIR resource id (R4 "id" datatype): the only ids the service looks up.
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def etag(resource: dict[str, Any]) -> dict[str, str]:
    """The weak ETag header of a resource's version."""
    return {"ETag": f'W/"{resource["meta"]["versionId"]}"'}


def fhir_response(payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=FHIR_JSON, headers=headers)


def outcome_response(status: int, error: AdapterError, headers: dict[str, str] | None = None) -> Response:
    return fhir_response(error.to_operation_outcome(), status, headers)
