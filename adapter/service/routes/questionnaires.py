"""``GET /fhir/Questionnaire``: the Da Vinci DTR questionnaires of the documentation criteria
(``adapter.fhir.questionnaires``), public like the CapabilityStatement (they hold no data); and DTR's
``POST /fhir/Questionnaire/$questionnaire-package``, which takes a Coverage and orders (so a token that may read
Questionnaires) and stores nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from adapter.fhir.questionnaires import package, questionnaire, questionnaires
from adapter.service.admission import Principal
from adapter.service.http import fhir_response
from adapter.service.routes import Capability, body, catalogue_search, context, requires, served
from adapter.tables import mappings
from adapter.types import JSON

router = APIRouter(prefix="/fhir")

#: The search parameters (FHIR R4 Questionnaire): ``url`` and ``version`` exact (a ``url`` of ``url|version``
#: too), ``name`` and ``title`` strings (case-insensitive, starting with), ``status`` and ``code`` tokens (the
#: LOINC attachment codes a documentation request asks with), ``_id``.
PARAMETERS = {"_id": "token", "url": "uri", "version": "token", "name": "string", "title": "string",
              "status": "token", "code": "token"}  # fmt: skip


def _offered() -> list[JSON]:
    return [
        {
            "type": "Questionnaire",
            "profile": mappings().tables.fhir.canonicals.dtr_questionnaire,
            "documentation": "Da Vinci DTR questionnaires, one per documentation criterion a pended item "
            "may ask for (no token needed): answer one with a QuestionnaireResponse as $submit-attachment "
            "Content, whose answers state the criterion's facts for its line item.",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": n, "type": t} for n, t in PARAMETERS.items()],
            "operation": [
                {
                    "name": "questionnaire-package",
                    "definition": mappings().tables.fhir.canonicals.dtr_questionnaire_package,
                    "documentation": "Da Vinci DTR: the questionnaires the named canonicals, or the documentation "
                    "criteria of what the orders ask for, each in a package Bundle with a draft "
                    "QuestionnaireResponse (a token that may read Questionnaires; nothing is kept).",
                }
            ],
        }
    ]


CAPABILITY = Capability(resources=_offered)


def _token(value: str, codes: list[str], system: str = "") -> bool:
    wanted_system, bar, code = value.rpartition("|")
    return code in codes and (not bar or wanted_system in ("", system))


def _matches(resource: JSON, name: str, value: str) -> bool:
    """Whether a questionnaire matches one value of a search parameter (values joined by commas: any of them)."""
    for one in value.split(","):
        if name == "_id" and resource["id"] == one:
            return True
        url, _, version = one.partition("|")
        if name == "url" and url == resource["url"] and version in ("", resource["version"]):
            return True
        if name == "version" and resource["version"] == one:
            return True
        if name in ("name", "title") and str(resource[name]).casefold().startswith(one.casefold()):
            return True
        if name == "status" and _token(one, [resource["status"]]):
            return True
        if name == "code" and any(_token(one, [c["code"]], c["system"]) for c in resource["code"]):
            return True
    return False


@router.post("/Questionnaire/$questionnaire-package")
def questionnaire_package(
    request: Request,
    _: Annotated[Principal, Depends(requires("Questionnaire", "r"))],
    raw: Annotated[bytes, Depends(body())],
) -> Response:
    """DTR ``$questionnaire-package``: a Parameters with the package Bundles of the questionnaires asked for by
    canonical or called for by the orders, and an ``outcome`` warning of what was not found (422 when the input is
    not the operation's: no Coverage, an order that is no request)."""
    return fhir_response(package(context(request).inbound(raw), now=datetime.now(UTC)))


@router.get("/Questionnaire/{qid}")
def read_questionnaire(qid: str) -> Response:
    """One documentation criterion's questionnaire, by id (the criterion's code)."""
    return served(questionnaire(qid), "Questionnaire")


@router.get("/Questionnaire")
def search_questionnaires(request: Request) -> Response:
    """The questionnaires, all or those the search parameters match (each parameter: all of them must)."""
    return catalogue_search(request, "Questionnaire", questionnaires(), PARAMETERS, _matches)
