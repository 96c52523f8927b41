"""``GET /fhir/metadata``: the CapabilityStatement of what the service really does; ``GET /metrics``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from adapter.fhir.definitions import structure_definition, structure_definitions
from adapter.fhir.pas import PAS
from adapter.service.http import ACCEPTED_TYPES, ServiceError, fhir_response
from adapter.service.metrics import CONTENT_TYPE
from adapter.service.routes import UNKNOWN_PARAMETERS, catalogue_search, context, questionnaires, served
from adapter.service.subscriptions import TOPIC
from adapter.tables import mappings
from adapter.version import __version__

router = APIRouter()


def capability_statement(base: str) -> dict[str, Any]:
    """What the service really does."""
    pas, fhir = mappings()[PAS], mappings().tables.fhir
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
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": fhir.code_systems.restful_security_service,
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "Bearer tokens: configured static tokens or SMART Backend Services JWTs; "
                    "SMART v1 and v2 scopes decide create, read and search.",
                },
                "resource": [
                    {"type": "ServiceRequest", "interaction": [{"code": "create"}]},
                    {
                        "type": "Claim",
                        "operation": [
                            {
                                "name": "submit",
                                "definition": pas.canonicals.claim_submit,
                            },
                            {
                                "name": "inquire",
                                "definition": pas.canonicals.claim_inquiry,
                            },
                        ],
                    },
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
                    },
                    {
                        "type": "Task",
                        "documentation": "Physician review of pended items: user/Task.* scopes only; complete "
                        "with PUT (status completed, owner, outputs decision, rationale, authorized-quantity).",
                        "interaction": [{"code": "read"}, {"code": "update"}, {"code": "search-type"}],
                        "conditionalUpdate": False,
                        "searchParam": [
                            {"name": n, "type": t}
                            for n, t in (
                                ("status", "token"),
                                ("owner", "reference"),  # by :identifier (system|value)
                                ("focus", "reference"),
                                ("patient", "reference"),
                                ("_lastUpdated", "date"),
                                ("_count", "number"),
                            )
                        ],
                    },
                    {
                        "extension": [
                            {
                                "url": fhir.canonicals.backport_topic_canonical,
                                "valueCanonical": TOPIC,
                            }
                        ],
                        "type": "Subscription",
                        "documentation": "PAS subscriptions (R4 backport): rest-hook, full-resource, one "
                        "orgIdentifier filter (the sending system of one's own requests, or one configured for "
                        "the client); $status and $events. A search finds one's own and the Subscriptions the "
                        "service keeps for its configured sending systems (service.senders).",
                        "interaction": [{"code": c} for c in ("create", "read", "update", "delete", "search-type")],
                        "searchParam": [{"name": "status", "type": "token"}],
                        "operation": [
                            {
                                "name": "status",
                                "definition": fhir.canonicals.backport_status_operation,
                            },
                            {
                                "name": "events",
                                "definition": fhir.canonicals.backport_events_operation,
                            },
                        ],
                    },  # fmt: skip
                    {
                        "type": "Questionnaire",
                        "profile": fhir.canonicals.dtr_questionnaire,
                        "documentation": "Da Vinci DTR questionnaires, one per documentation criterion a pended item "
                        "may ask for (no token needed): answer one with a QuestionnaireResponse as $submit-attachment "
                        "Content, whose answers state the criterion's facts for its line item.",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [{"name": n, "type": t} for n, t in questionnaires.PARAMETERS.items()],
                    },
                    {
                        "type": "StructureDefinition",
                        "documentation": "The adapter's own extensions (no token needed, like this statement).",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [{"name": "url", "type": "uri"}],
                    },
                ],
                "operation": [
                    {
                        "name": "submit-attachment",
                        "definition": fhir.canonicals.cdex_submit_attachment,
                        "documentation": "CDex attachments answering a pended prior authorization's documentation "
                        "requests (AttachTo preauthorization; Content a DocumentReference with inline text/plain "
                        "or PDF data, or a QuestionnaireResponse to one of the Questionnaires served here): the "
                        "items it answers are determined again.",
                    }
                ],
            }
        ],
    }


@router.get("/fhir/metadata")
async def metadata(request: Request) -> Response:
    return fhir_response(capability_statement(context(request).base))


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
