"""Asking the EHR for documentation the Da Vinci CDex way, and reading its answer.

``attachment_request`` builds a CDex Task Attachment Request (``cdex-task-attachment-request``, CDex 2.1
``structuredefinition-cdex-task-attachment-request.yml``): ``code`` PASTempCodes ``attachment-request-code``,
the tracking id (an item's pend reference number) as ``identifier:TrackingId``, the member in a contained
Patient (``for`` ``#patient``), the requesting provider in a contained PractitionerRole (``owner``
``#practitionerrole``), the pended item's number as ``identifier:AdminRefNumber`` (what PAS carries in
``administrationReferenceNumber``), ``reasonCode`` preauthorization and ``reasonReference`` the answer's
identifier, one ``AttachmentsNeeded`` input per LOINC code with the line number (``extension-paLineNumber``),
``PayerUrl`` the adapter's ``$submit-attachment``, ``POU`` COVAUTH, ``restriction.period.end`` the information
deadline, and the questions for the provider in ``note``.

A line whose criteria have the adapter's DTR questionnaires (``adapter.fhir.questionnaires``) is also asked with
a Task of its own (``by_questionnaire``): ``code`` ``attachment-request-questionnaire`` and one
``QuestionnaireContext`` input per questionnaire (type PASTempCodes ``questionnaire-context``, ``valueCanonical``
its canonical url, the line number as on ``AttachmentsNeeded``), never beside ``AttachmentsNeeded`` (cdex-5,
cdex-6); its tracking id is the line's with ``-questionnaire`` after it (``questionnaire_tracking``: each Task
is found by its own), the rest as above.

``task_submission`` reads a completed Task back as the ``$submit-attachment`` it stands for: its outputs
(DocumentReference, Binary or QuestionnaireResponse, contained or on the EHR) become the attachments for its
lines, its contained Patient and PractitionerRole the member and provider.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from adapter.determination.documentation import Need, to_ask
from adapter.fhir.attachments import LOINC, PREAUTHORIZATION, TRACKING_SYSTEM, Attachment, AttachmentError, Submission
from adapter.fhir.navigate import typed_id
from adapter.fhir.pas import PAS, review_number
from adapter.fhir.questionnaires import questionnaire
from adapter.npi import NPI_SYSTEM
from adapter.tables import mappings
from adapter.types import JSON

PROFILE = mappings().tables.fhir.canonicals.cdex_attachment_request
PAS_TEMP = mappings()[PAS].code_systems.temp_codes
CDEX_TEMP = mappings().tables.fhir.code_systems.cdex_temp
PA_LINE_NUMBER = mappings()[PAS].extensions.pa_line_number
#: A questionnaire's name beside its canonical (FHIR core ``display`` extension, as CDex's example 22 has it).
DISPLAY = mappings().tables.fhir.extensions.display
#: The system of the pend reference number a Task names as its ``identifier:AdminRefNumber`` (another than the
#: tracking id's, so that a search by tracking id finds one Task).
ADMIN_REF_SYSTEM = mappings().tables.identifier_system("administration-reference")
#: The adapter as the payer that asks (``Task.requester.identifier``).
PAYER_ID = {"system": mappings().tables.identifier_system("payer"), "value": "imr-adapter"}
#: Task statuses after which nothing more comes (HRex task status): the request is closed.
CLOSED = ("completed", "failed", "rejected", "cancelled", "entered-in-error")
#: The resource types a completed Task's output may name as an attachment.
CONTENT_TYPES = ("DocumentReference", "Binary", "QuestionnaireResponse")
#: The ``Task.code`` of each way of asking (PASTempCodes, ValueSet PASTaskCodes).
BY_CODE, BY_QUESTIONNAIRE = "attachment-request-code", "attachment-request-questionnaire"


def _coding(system: str, code: str, display: str | None = None) -> JSON:
    coding = {"system": system, "code": code}
    return {"coding": [{**coding, "display": display} if display else coding]}


def _input(code: str, system: str = PAS_TEMP, **value: Any) -> JSON:
    return {"type": _coding(system, code), **value}


def _member(identifier: JSON) -> bool:
    """An identifier of type member number (v2-0203 MB)."""
    kind = identifier.get("type")
    codings = kind.get("coding") if isinstance(kind, dict) else None
    return isinstance(codings, list) and any(isinstance(c, dict) and c.get("code") == "MB" for c in codings)


def contained_patient(patient: JSON | None, reference: JSON | None, coverages: Sequence[JSON] = ()) -> JSON:
    """The CDex Patient Demographics the Task names: the EHR Patient's identifiers, name and birth date (its
    reference as the identifier when it has none, so the member is always named). The member number
    (``identifier:mb``, 1..1 in ``cdex-patient-demographics``): the Patient's own, else the first of the
    ``coverages`` (the EHR's Coverages of the patient) has."""
    found = patient or {}
    identifiers = [i for i in found.get("identifier", []) if isinstance(i, dict) and i.get("value")]
    covered = [i for c in coverages for i in c.get("identifier", []) if isinstance(i, dict) and i.get("value")]
    members = [i for i in covered if _member(i)]
    if members and not any(_member(i) for i in identifiers):
        identifiers.append({k: members[0][k] for k in ("type", "system", "value") if k in members[0]})
    if not identifiers:
        ref = str((reference or {}).get("reference", "unknown"))
        identifiers = [{"system": mappings().tables.identifier_system("ehr-patient"), "value": ref}]
    contained: JSON = {"resourceType": "Patient", "id": "patient", "identifier": identifiers}
    contained |= {k: found[k] for k in ("name", "birthDate", "gender") if found.get(k)}
    return contained


def contained_provider(provider: JSON | None, reference: JSON | None) -> JSON:
    """The CDex PractitionerRole the Task is owned by: the requester's identifiers (an NPI when it has one) as
    the practitioner's, or the organization's when the requester is an Organization."""
    found = provider or {}
    identifiers = [i for i in found.get("identifier", []) if isinstance(i, dict) and i.get("value")]
    npi = next((i for i in identifiers if i.get("system") == NPI_SYSTEM), None)
    identifier = npi or (identifiers[0] if identifiers else
                         {"system": mappings().tables.identifier_system("ehr-provider"),
                          "value": str((reference or {}).get("reference", "unknown"))})  # fmt: skip
    role = "organization" if found.get("resourceType") == "Organization" else "practitioner"
    return {"resourceType": "PractitionerRole", "id": "practitionerrole",
            role: {"identifier": {k: identifier[k] for k in ("system", "value") if k in identifier}}}  # fmt: skip


def questionnaire_tracking(tracking: str) -> str:
    """The tracking id of a line's questionnaire Task, beside its attachment-request Task's ``tracking``."""
    return f"{tracking}-questionnaire"


def asked_questionnaires(needs: Sequence[Need]) -> list[JSON]:
    """The adapter's DTR questionnaires for the criteria a line asks for (``to_ask``), in their order (those that
    name no facts have none: they are asked for as documents only)."""
    return [found for need in to_ask(needs) if (found := questionnaire(need.criterion)) is not None]


def attachment_request(
    *,
    tracking: str,
    response: JSON,
    line: int,
    needs: Sequence[Need],
    payer_url: str,
    due: datetime,
    authored: datetime,
    patient: JSON,
    provider: JSON,
    by_questionnaire: bool = False,
) -> JSON:
    """The CDex Task asking the EHR for what one pended line lacks (``patient`` and ``provider`` the contained
    Patient and PractitionerRole): by LOINC code, or with ``by_questionnaire`` by the line's DTR questionnaires
    (``tracking`` then the questionnaire Task's own)."""
    systems = mappings().tables.fhir.code_systems
    line_number = {"extension": [{"url": PA_LINE_NUMBER, "valueInteger": line}]}
    if by_questionnaire:
        asked = asked_questionnaires(needs)
        inputs = [
            {**line_number, **_input("questionnaire-context"), "valueCanonical": found["url"],
             "_valueCanonical": {"extension": [{"url": DISPLAY, "valueString": found["title"]}]}}
            for found in asked
        ]  # fmt: skip
        criteria = {found["id"] for found in asked}
        notes = [need for need in needs if need.criterion in criteria]
    else:
        notes = to_ask(needs)
        codes = list(dict.fromkeys(need.loinc[0] for need in notes))
        inputs = [{**line_number, **_input("attachments-needed"), "valueCodeableConcept": _coding(LOINC, code)}
                  for code in codes]  # fmt: skip
    inputs += [
        _input("payer-url", valueUrl=payer_url),
        _input("purpose-of-use", CDEX_TEMP,
               valueCodeableConcept=_coding(systems.act_reason, "COVAUTH",
                                            "coverage authorization")),
    ]  # fmt: skip
    stamp = authored.isoformat(timespec="seconds")
    identifiers = [
        {"type": _coding(CDEX_TEMP, "tracking-id", "Tracking Id"), "system": TRACKING_SYSTEM, "value": tracking}
    ]  # fmt: skip
    item: JSON = next((i for i in response.get("item", []) if i.get("itemSequence") == line), {})
    if number := review_number(item):  # the pended item's number, as PAS's administrationReferenceNumber has it
        identifiers.append({"type": _coding(CDEX_TEMP, "admin-ref-number", "Administrative Reference Number"),
                            "system": ADMIN_REF_SYSTEM, "value": number})  # fmt: skip
    return {
        "resourceType": "Task",
        "meta": {"profile": [PROFILE]},
        "contained": [patient, provider],
        "identifier": identifiers,
        "status": "requested",
        "intent": "order",
        "code": _coding(PAS_TEMP, BY_QUESTIONNAIRE if by_questionnaire else BY_CODE),
        "for": {"reference": "#patient"},
        "authoredOn": stamp,
        "lastModified": stamp,
        "requester": {"identifier": PAYER_ID},
        "owner": {"reference": "#practitionerrole"},
        "reasonCode": {**_coding(systems.claim_use, PREAUTHORIZATION), "text": PREAUTHORIZATION},
        "reasonReference": {"identifier": response["identifier"][0]},
        "restriction": {"period": {"end": due.isoformat(timespec="seconds")}},
        "input": inputs,
        "note": [{"text": f"{need.question} ({need.citation})"} for need in notes],
    }


def _contained(task: JSON, rtype: str, rid: str) -> JSON:
    found = next((c for c in task.get("contained", []) if isinstance(c, dict) and c.get("resourceType") == rtype
                  and c.get("id") == rid), None)  # fmt: skip
    if found is None:
        raise AttachmentError(f"the attachment request names no contained {rtype} #{rid}", location="Task.contained")
    return found


def _as_document(resource: JSON) -> JSON:
    """A Binary as the DocumentReference that carries its content inline (what ``content_text`` reads)."""
    if resource.get("resourceType") != "Binary":
        return resource
    attachment = {"contentType": resource.get("contentType", ""), "data": resource.get("data", "")}
    return {"resourceType": "DocumentReference", "status": "current", "content": [{"attachment": attachment}]}


def task_submission(asked: JSON, done: JSON, fetch: Callable[[str, str], JSON]) -> Submission:
    """A completed CDex Task read as the ``$submit-attachment`` it stands for: the tracking id, member and
    provider of the Task as asked (``asked``: the EHR may not change who it was for), and one attachment per
    output of ``done`` (contained, or read with ``fetch(type, id)`` for a ``Type/id`` reference) for the lines asked."""
    lines = sorted({e.get("valueInteger") for i in asked.get("input", []) for e in i.get("extension", [])
                    if e.get("url") == PA_LINE_NUMBER and isinstance(e.get("valueInteger"), int)})  # fmt: skip
    patient = _contained(asked, "Patient", "patient")
    role = _contained(asked, "PractitionerRole", "practitionerrole")
    providers = [role[k]["identifier"] for k in ("practitioner", "organization") if k in role]
    attachments = []
    for n, output in enumerate(done.get("output", []) if isinstance(done.get("output"), list) else []):
        reference = str((output.get("valueReference") or {}).get("reference", "")) if isinstance(output, dict) else ""
        where = f"Task.output[{n}].valueReference"
        if reference.startswith("#"):
            resource = _contained(done, next((str(c.get("resourceType")) for c in done.get("contained", [])
                                              if c.get("id") == reference[1:]), ""), reference[1:])  # fmt: skip
        elif (target := typed_id(reference)) is not None and target[0] in CONTENT_TYPES:
            resource = fetch(*target)
        else:
            raise AttachmentError("an output names a DocumentReference, Binary or QuestionnaireResponse",
                                  location=where)  # fmt: skip
        attachments.append(Attachment(lines, None, _as_document(resource)))
    if not attachments:
        raise AttachmentError("the completed attachment request has no output", location="Task.output")
    return Submission(asked["identifier"][0], patient["identifier"][0], providers, attachments)
