"""``GET /fhir/metadata``: the CapabilityStatement of what the service really does; ``GET /metrics``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from adapter.fhir.definitions import structure_definition, structure_definitions
from adapter.service.http import ACCEPTED_TYPES, ServiceError, fhir_response
from adapter.service.metrics import CONTENT_TYPE
from adapter.service.routes import UNKNOWN_PARAMETERS, Capability, catalogue_search, context, served
from adapter.tables import mappings
from adapter.types import JSON
from adapter.version import __version__

router = APIRouter()


def capability_statement(base: str, offered: Sequence[Capability]) -> dict[str, Any]:
    """What the service really does: its terms (formats, search, security), and what each module of routes
    ``offered`` says of its own resources and operations (``Capability``, beside the routes)."""
    fhir = mappings().tables.fhir
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": datetime.now(UTC).date().isoformat(),
        "kind": "instance",
        "software": {"name": "imr-adapter", "version": __version__},
        "implementation": {"description": "IMR adapter: guideline determinations for service requests", "url": base},
        "fhirVersion": "4.0.1",
        "format": list(ACCEPTED_TYPES),
        "rest": [
            {
                "mode": "server",
                "documentation": f"Searches take _count (0: the total only), _offset, _summary=count, _total, "
                f"_elements and _format=json. {UNKNOWN_PARAMETERS}",
                "security": {
                    "service": [{"coding": [{"system": fhir.code_systems.restful_security_service,
                                             "code": "SMART-on-FHIR"}]}],
                    "description": "Bearer tokens: configured static tokens or SMART Backend Services JWTs; "
                    "SMART v1 and v2 scopes decide create, read and search.",
                },
                "resource": [resource for area in offered for resource in area.resources()],
                "operation": [operation for area in offered for operation in area.operations()],
            }
        ],
    }  # fmt: skip


def _offered() -> list[JSON]:
    return [
        {
            "type": "StructureDefinition",
            "documentation": "The adapter's own extensions (no token needed, like this statement).",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": "url", "type": "uri"}],
        }
    ]


CAPABILITY = Capability(resources=_offered)


@router.get("/fhir/metadata")
async def metadata(request: Request) -> Response:
    ctx = context(request)
    return fhir_response(capability_statement(ctx.base, ctx.offered))


@router.get("/fhir/StructureDefinition/{sid}")
def read_structure_definition(sid: str) -> Response:
    """The StructureDefinition of one of the adapter's own extensions (public: it holds no data)."""
    return served(structure_definition(sid), "StructureDefinition")


@router.get("/fhir/StructureDefinition")
def search_structure_definitions(request: Request) -> Response:
    """The adapter's extension definitions, all or those whose canonical ``url`` is given (values joined by
    commas: any of them)."""
    return catalogue_search(request, "StructureDefinition", structure_definitions(), {"url"},
                            lambda definition, _, urls: definition["url"] in urls.split(","))  # fmt: skip


@router.get("/metrics")
def metrics(request: Request) -> Response:
    ctx = context(request)
    if not ctx.settings.service.metrics:
        raise ServiceError(404, "metrics are switched off", code="not-found", issue_type="not-found")
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)
