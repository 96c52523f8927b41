"""The adapter's Da Vinci DTR questionnaires, one per documentation criterion, and the facts their answers state.

A criterion of ``mappings/documentation.yaml`` that names facts is served as a Questionnaire (DTR 2.x
``dtr-std-questionnaire``, ``input/fsh/DTRQuestionnaireStandard.fsh`` and ``DTRQuestionnaireBase.fsh``:
``subjectType`` Patient, at least one item, every item with ``text``; its ``cqf-library`` is optional, and these
need no CQL): canonical ``url`` ``{canonical_base}/Questionnaire/{criterion}``, the adapter's version, one
required group item (``linkId`` the criterion, ``text`` its question) holding one question per fact it names
(``mappings/questionnaires.yaml``) typed so that an answer is the fact's value: ``boolean`` for a documentation
fact (yes present, no stated absent, unanswered as the records have it) or a diagnosis, ``integer`` for a count;
and a ``text`` item, ``note``, for the record's own words, which the facts quote.

``stated_facts`` reads a QuestionnaireResponse answering one of them (DTR ``questionnaire`` 1..1, status completed
or amended) into ``Stated`` facts, refusing one that answers no questionnaire served here
(``QuestionnaireUnknownError``), a question it does not ask or an answer of the wrong type
(``QuestionnaireAnswerError``), or a note over ``MAX_NOTE`` characters (``InputLimitError``).
"""

from __future__ import annotations

import copy
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from adapter.determination.documentation import DOCUMENTATION, DocumentationTable, guideline_criteria
from adapter.determination.facts import Context, build_facts
from adapter.determination.stated import Stated, answer_kind
from adapter.errors import InputLimitError, MappingError
from adapter.fhir.pas import ordered_text
from adapter.tables import DEFAULT_MAPPINGS, TableFile, mappings
from adapter.types import JSON
from adapter.version import __version__

PROFILE = mappings().tables.fhir.canonicals.dtr_questionnaire
#: The item for the record's own words (quoted by the facts the answers state).
NOTE = "note"
#: The longest note an answer may carry (it is quoted as evidence on the answer and the review page).
MAX_NOTE = 2000
#: The largest count an answer may state.
MAX_COUNT = 999
#: The QuestionnaireResponse statuses whose answers state facts (an answer in progress states nothing yet).
ANSWERED = ("completed", "amended")
_VALUE = {"boolean": "valueBoolean", "integer": "valueInteger", "text": "valueString"}


class QuestionnaireUnknownError(MappingError):
    """A QuestionnaireResponse that answers no questionnaire served here (or another version of one)."""

    code = "questionnaire-unknown"
    issue_type = "not-found"


class QuestionnaireAnswerError(MappingError):
    """A QuestionnaireResponse whose answers are not its questionnaire's: a question it does not ask, an answer of
    the wrong type, a question answered twice, or no question answered."""

    code = "questionnaire-answer-invalid"
    issue_type = "invalid"


class QuestionTable(BaseModel):
    """``mappings/questionnaires.yaml``: the question for each fact a documentation criterion names; checked
    against the criteria: every fact a criterion names has one (a yes/no or a number fact), nothing else does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    facts: dict[str, str] = Field(min_length=1)

    @model_validator(mode="after")
    def _every_fact(self, info: ValidationInfo) -> QuestionTable:
        documentation: DocumentationTable = (info.context or {})["documentation"]
        named = {f for c in documentation.criteria.values() for f in c.facts}
        if named - set(self.facts):
            raise ValueError(f"no question for facts the criteria name: {sorted(named - set(self.facts))}")
        if set(self.facts) - named:
            raise ValueError(f"questions for facts no criterion names: {sorted(set(self.facts) - named)}")
        untyped = sorted(f for f in named if answer_kind(f) is None)
        if untyped:
            raise ValueError(f"facts a provider cannot answer yes, no or with a number: {untyped}")
        if any(not q.strip() for q in self.facts.values()):
            raise ValueError("a question is empty")
        return self


QUESTIONS = TableFile("questionnaires.yaml", QuestionTable, reads={"documentation": DOCUMENTATION})


def _name(criterion: str) -> str:
    return "".join(part.capitalize() for part in criterion.split("-"))


def _question(fact: str, text: str) -> JSON:
    kind = answer_kind(fact)
    item: JSON = {"linkId": fact, "text": text, "type": kind, "required": False, "repeats": False}
    if kind == "integer":
        extensions = mappings().tables.fhir.extensions
        item["extension"] = [{"url": extensions.min_value, "valueInteger": 1},
                             {"url": extensions.max_value, "valueInteger": MAX_COUNT}]  # fmt: skip
    return item


@lru_cache(maxsize=4)
def _served(folder: Path) -> dict[str, JSON]:
    tables = mappings(folder)
    documentation, questions = tables[DOCUMENTATION], tables[QUESTIONS].facts
    base = tables.tables.fhir.canonical_base.rstrip("/")
    out: dict[str, JSON] = {}
    for code, criterion in documentation.criteria.items():
        if not criterion.facts:
            continue  # nothing an answer could state: asked for as a document
        note = {"linkId": NOTE, "type": "text", "required": False, "repeats": False, "maxLength": MAX_NOTE,
                "text": "What the records say about it, in their own words (quoted as the evidence)"}  # fmt: skip
        out[code] = {
            "resourceType": "Questionnaire",
            "id": code,
            "meta": {"profile": [PROFILE]},
            "url": f"{base}/Questionnaire/{code}",
            "version": __version__,
            "name": _name(code),
            "title": f"Documentation request: {code.replace('-', ' ')}",
            "status": "active",
            "subjectType": ["Patient"],
            "publisher": "imr-adapter",
            "description": f"{criterion.question} ({criterion.guideline}). Answer yes or no what the records "
            "document; leave unanswered what they do not say.",
            "code": [{"system": mappings().tables.fhir.code_systems.loinc, "code": loinc} for loinc in criterion.loinc],
            "item": [{
                "linkId": code, "text": criterion.question, "type": "group", "required": True,
                "item": [*(_question(fact, questions[fact]) for fact in criterion.facts), note],
            }],
        }  # fmt: skip
    return out


def questionnaires(folder: Path = DEFAULT_MAPPINGS) -> list[JSON]:
    """Every questionnaire served, in the criteria's order (each a fresh copy)."""
    return [copy.deepcopy(q) for q in _served(folder).values()]


def questionnaire(criterion: str, folder: Path = DEFAULT_MAPPINGS) -> JSON | None:
    """The questionnaire of one documentation criterion (None: no such criterion, or one that names no facts)."""
    found = _served(folder).get(criterion)
    return copy.deepcopy(found) if found is not None else None


def _answered(questionnaire_json: JSON, items: Any) -> dict[str, Any]:
    """The group's answers by linkId, each checked against its question."""
    code = questionnaire_json["id"]
    if not (isinstance(items, list) and len(items) == 1 and isinstance(items[0], dict)
            and items[0].get("linkId") == code):  # fmt: skip
        raise QuestionnaireAnswerError(f"the answers are one group item, linkId {code!r}",
                                       location="QuestionnaireResponse.item")  # fmt: skip
    questions = {q["linkId"]: q for q in questionnaire_json["item"][0]["item"]}
    inner = items[0].get("item", [])
    if not isinstance(inner, list):
        raise QuestionnaireAnswerError("the group's answers are a list", location="QuestionnaireResponse.item[0]")
    answers: dict[str, Any] = {}
    for n, item in enumerate(inner):
        at = f"QuestionnaireResponse.item[0].item[{n}]"
        link = item.get("linkId") if isinstance(item, dict) else None
        question = questions.get(link) if isinstance(link, str) else None
        if question is None or not isinstance(link, str):
            raise QuestionnaireAnswerError(f"{str(link)[:80]!r} is no question of {code!r} (its linkIds: "
                                           f"{', '.join(questions)})", location=f"{at}.linkId")  # fmt: skip
        if link in answers:
            raise QuestionnaireAnswerError(f"{link!r} is answered twice", location=f"{at}.linkId")
        given = item.get("answer", [])
        if not isinstance(given, list) or len(given) > 1 or any(not isinstance(a, dict) for a in given):
            raise QuestionnaireAnswerError(f"{link!r} takes one answer", location=f"{at}.answer")
        if not given:
            continue
        key = _VALUE[question["type"]]
        values = {k: v for k, v in given[0].items() if k.startswith("value")}
        value = values.get(key)
        typed = isinstance(value, bool) if key == "valueBoolean" else isinstance(value, str) if key == "valueString" \
            else isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_COUNT  # fmt: skip
        if set(values) != {key} or not typed or given[0].get("item"):
            wanted = f"a whole number from 1 to {MAX_COUNT}" if key == "valueInteger" else key
            raise QuestionnaireAnswerError(f"{link!r} is answered with {wanted}", location=f"{at}.answer[0]")
        if isinstance(value, str) and len(value) > MAX_NOTE:
            raise InputLimitError(f"the note is {len(value)} characters, more than {MAX_NOTE}: quote what bears on "
                                  "the question", location=f"{at}.answer[0].valueString")  # fmt: skip
        answers[link] = value
    return answers


def _answering(response: JSON) -> JSON:
    """The questionnaire served here that a QuestionnaireResponse answers (``QuestionnaireUnknownError``)."""
    canonical, where = response.get("questionnaire"), "QuestionnaireResponse.questionnaire"
    if not isinstance(canonical, str) or not canonical:
        raise QuestionnaireUnknownError("a QuestionnaireResponse names the questionnaire it answers (GET "
                                        "/fhir/Questionnaire)", location=where)  # fmt: skip
    url, _, version = canonical.partition("|")
    found = next((q for q in _served(DEFAULT_MAPPINGS).values() if q["url"] == url), None)
    if found is None or (version and version != found["version"]):
        raise QuestionnaireUnknownError(f"{canonical[:200]!r} is not a questionnaire served here (GET "
                                        "/fhir/Questionnaire lists them)", location=where)  # fmt: skip
    return found


def answers_in(resource: JSON | None) -> JSON | None:
    """The QuestionnaireResponse a supporting resource is, or brings as a DTR QuestionnaireResponse Bundle
    (``DTR-QRBundle``, what PAS's ``supportingInfo[AdditionalInformation]`` names as a Bundle: a collection whose
    first entry is its one QuestionnaireResponse, DTR spec-156/157); None for anything else."""
    if not isinstance(resource, dict):
        return None
    if resource.get("resourceType") == "Bundle" and resource.get("type") == "collection":
        entries = resource.get("entry")
        first = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], dict) else {}
        resource = first.get("resource")
    if not isinstance(resource, dict) or resource.get("resourceType") != "QuestionnaireResponse":
        return None
    return resource


def stated_facts(response: JSON, source: str) -> list[Stated]:
    """The facts a QuestionnaireResponse to one of the adapter's questionnaires states, each quoting its question,
    the answer and the note, its ``source`` the response (``source``) and the question's linkId."""
    found = _answering(response)
    if response.get("status") not in ANSWERED:
        raise QuestionnaireAnswerError(f"only a {' or '.join(ANSWERED)} QuestionnaireResponse states facts",
                                       location="QuestionnaireResponse.status")  # fmt: skip
    answers = _answered(found, response.get("item"))
    note = str(answers.pop(NOTE, "") or "").strip()
    if not answers:
        raise QuestionnaireAnswerError("the QuestionnaireResponse answers none of its questions (yes, no or a number)",
                                       location="QuestionnaireResponse.item[0].item")  # fmt: skip
    texts = {q["linkId"]: q["text"] for q in found["item"][0]["item"]}
    stated = []
    for fact, value in answers.items():
        said = "Yes." if value is True else "No." if value is False else f"{value}."
        quote = " ".join(part for part in (texts[fact], said, note) if part)
        stated.append(Stated(fact=fact, value=value, quote=quote, source=f"{source}#{fact}"))
    return stated


# --- $questionnaire-package ---------------------------------------------------------------------------------


class QuestionnairePackageError(MappingError):
    """A DTR ``$questionnaire-package`` call that is not one: not Parameters, no Coverage, or an order that is no
    request resource."""

    code = "questionnaire-package-invalid"
    issue_type = "invalid"


#: The resources DTR lets an ``order`` parameter be that name a service (DTROperation-QuestionnairePackage.fsh).
ORDER_TYPES = ("ServiceRequest", "MedicationRequest", "DeviceRequest", "NutritionOrder", "SupplyRequest",
               "VisionPrescription", "CommunicationRequest", "Appointment", "Encounter")  # fmt: skip
#: The most orders and questionnaire canonicals one call may name (each order is read, work is bounded).
MOST_ASKED = 50


def _parameters(data: JSON) -> list[JSON]:
    if data.get("resourceType") != "Parameters" or not isinstance(data.get("parameter"), list):
        raise QuestionnairePackageError("$questionnaire-package takes a Parameters resource", location="Parameters")
    parameters = [p for p in data["parameter"] if isinstance(p, dict)]
    if len(parameters) != len(data["parameter"]):
        raise QuestionnairePackageError("each parameter is an object", location="Parameters.parameter")
    return parameters


def _reference(resource: JSON) -> JSON | None:
    rid = resource.get("id")
    return {"reference": f"{resource['resourceType']}/{rid}"} if isinstance(rid, str) and rid else None


def package(data: JSON, *, now: datetime, folder: Path = DEFAULT_MAPPINGS) -> JSON:
    """A Da Vinci DTR ``$questionnaire-package`` answer (``dtr-qpackage-output-parameters``) to its input
    Parameters (``dtr-qpackage-input-parameters``): one ``packagebundle`` per questionnaire, a collection Bundle
    holding the Questionnaire first and a draft QuestionnaireResponse naming it by version, its subject the
    Coverage's beneficiary and its ``qr-context`` the Coverage and the orders (oper-12, oper-16, oper-18). Which
    questionnaires: those the ``questionnaire`` canonicals name (optionally ``url|version``), and for each
    ``order`` those of the documentation criteria the guideline names for its service (``mappings/
    documentation.yaml``), each once. What is not found, or an order naming no service, is a warning in
    ``outcome`` (oper-9); no questionnaire at all, a warning saying how else documentation is asked for. The
    questionnaires change only with the adapter's version, so ``changedsince`` is answered with all of them, and
    ``context`` is not needed to choose them."""
    parameters = _parameters(data)
    coverages = [p.get("resource") for p in parameters if p.get("name") == "coverage"]
    if len(coverages) != 1 or not isinstance(coverages[0], dict) or coverages[0].get("resourceType") != "Coverage":
        raise QuestionnairePackageError("$questionnaire-package takes one coverage parameter, a Coverage resource",
                                        location="Parameters.parameter:coverage")  # fmt: skip
    coverage: JSON = coverages[0]
    orders = [p.get("resource") for p in parameters if p.get("name") == "order"]
    canonicals = [p.get("valueCanonical") for p in parameters if p.get("name") == "questionnaire"]
    if len(orders) + len(canonicals) > MOST_ASKED:
        raise InputLimitError(f"$questionnaire-package names at most {MOST_ASKED} orders and questionnaires")
    served = _served(folder)
    chosen: dict[str, JSON] = {}
    warnings: list[tuple[str, str]] = []
    for n, canonical in enumerate(canonicals):
        url, _, version = str(canonical or "").partition("|")
        found = next((q for q in served.values() if q["url"] == url), None)
        if found is None or (version and version != found["version"]):
            warnings.append((f"{canonical!s:.200} is not a questionnaire served here (GET /fhir/Questionnaire lists "
                             "them)", f"Parameters.parameter:questionnaire[{n}]"))  # fmt: skip
            continue
        chosen.setdefault(found["id"], found)
    documentation = mappings(folder)[DOCUMENTATION]
    for n, order in enumerate(orders):
        where = f"Parameters.parameter:order[{n}]"
        if not isinstance(order, dict) or order.get("resourceType") not in ORDER_TYPES:
            raise QuestionnairePackageError(f"an order is one of {', '.join(ORDER_TYPES)}", location=where)
        text = ordered_text(order)
        criteria = guideline_criteria(build_facts(text, Context()), documentation) if text else []
        named = [served[c] for c in criteria if c in served]
        if not named:
            warnings.append((f"no documentation is asked for what this {order['resourceType']} orders"
                             f"{f' ({text[:80]})' if text else ''}", where))  # fmt: skip
        for found in named:
            chosen.setdefault(found["id"], found)
    if not chosen:
        warnings.append(("no questionnaire: a pended prior authorization asks for what it lacks in its "
                         "ClaimResponse's CommunicationRequests and in CDex Tasks", "Parameters"))  # fmt: skip
    context = [ref for ref in (_reference(coverage), *(_reference(o) for o in orders if isinstance(o, dict))) if ref]
    qr_context = mappings(folder).tables.fhir.canonicals.dtr_qr_context
    subject = coverage.get("beneficiary") if isinstance(coverage.get("beneficiary"), dict) else None
    out: list[JSON] = []
    for found in chosen.values():
        draft: JSON = {
            "resourceType": "QuestionnaireResponse",
            "extension": [{"url": qr_context, "valueReference": ref} for ref in context],
            "questionnaire": f"{found['url']}|{found['version']}",
            "status": "in-progress",
            "authored": now.isoformat(timespec="seconds"),
        }
        if subject:
            draft["subject"] = subject
        if not draft["extension"]:
            del draft["extension"]
        entries = [{"fullUrl": found["url"], "resource": copy.deepcopy(found)}, {"resource": draft}]
        bundle = {"resourceType": "Bundle", "type": "collection", "timestamp": now.isoformat(timespec="seconds"),
                  "entry": entries}  # fmt: skip
        out.append({"name": "packagebundle", "resource": bundle})
    if warnings:
        issues = [{"severity": "warning", "code": "not-found", "details": {"text": text}, "expression": [where]}
                  for text, where in warnings]  # fmt: skip
        out.append({"name": "outcome", "resource": {"resourceType": "OperationOutcome", "issue": issues}})
    return {"resourceType": "Parameters", "parameter": out}
