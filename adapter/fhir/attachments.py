"""Documentation requests on the wire (Da Vinci PAS and CDex).

Asking: a pended item that lacks documentation (``Determination.documentation``) carries its pend reference
number in ``item.extension[administrationReferenceNumber]`` and the ClaimResponse one PASCommunicationRequest
per LOINC code asked (PAS 2.2.1 ``CommunicationRequest.fsh``), contained in it and named from
``ClaimResponse.communicationRequest``: ``status`` active, ``medium`` PASTempCodes ``CDEX`` (answer with
``$submit-attachment``), ``payload.contentString`` the LOINC code, ``extension-serviceLineNumber`` the item,
the pend reference number as its identifier (the attachment control number a CDex ``TrackingId`` echoes),
``occurrencePeriod.end`` the information deadline, requester the insurer, recipient and sender the requestor,
the questions for the provider in ``note``. Contained, each version of the answer carries the asks still open.

Answering: ``submission(parameters)`` reads a CDex ``$submit-attachment`` Parameters (``TrackingId``,
``AttachTo``, ``MemberId``, ``ProviderId`` / ``OrganizationId``, ``Attachment`` with ``LineItem``, ``Code``,
``Content``); ``content_text`` the text of a DocumentReference (inline text/plain or PDF); a QuestionnaireResponse
answers one of the adapter's questionnaires, and its answers state facts (``adapter.fhir.questionnaires``).
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from adapter.actions import ReviewAction
from adapter.deadlines import DeadlineTable, information_due
from adapter.determination.documentation import Need, to_ask
from adapter.errors import MappingError, PDFReadError
from adapter.fhir.navigate import Index, typed_id
from adapter.fhir.navigate import extensions as _ext
from adapter.fhir.pas import PAS, review_action_code, review_number, support_items
from adapter.fhir.questionnaires import answers_in, stated_facts
from adapter.letters.pdf import pdf_text
from adapter.tables import mappings
from adapter.types import JSON

PROFILE = mappings()[PAS].profiles.communication_request
#: PAS ``ServiceLineNumber`` (CommunicationRequest.fsh:55): the Claim item the content is asked for.
SERVICE_LINE_NUMBER = mappings()[PAS].extensions.service_line_number
#: PAS ``AdministrationReferenceNumber`` (Claim-update.fsh:89): the UMO's number of a pended item.
ADMINISTRATION_REFERENCE = mappings()[PAS].extensions.administration_reference
LOINC = mappings().tables.fhir.code_systems.loinc
#: The CDex tracking id system of the adapter's asks (an item's pend reference number is the value).
TRACKING_SYSTEM = mappings().tables.identifier_system("attachment-request")
#: The tag of a kept attachment: the line items (Claim item sequences) its text counts for.
ATTACHMENT_TAG = mappings().tables.fhir.systems.attachment_line
#: ``AttachTo`` (CDex cdex-claim-use): the adapter answers prior authorizations.
PREAUTHORIZATION = "preauthorization"


class AttachmentError(MappingError):
    """A ``$submit-attachment`` that cannot be read (a parameter missing or of the wrong kind, no text)."""

    code = "attachment-invalid"
    issue_type = "invalid"


def _line(request: JSON) -> int | None:
    values = [e.get("valuePositiveInt") for e in _ext(request, SERVICE_LINE_NUMBER)]
    return values[0] if values and isinstance(values[0], int) else None


def asked_lines(response: JSON) -> dict[int, list[str]]:
    """The LOINC codes the answer asks for, by item sequence."""
    out: dict[int, list[str]] = {}
    for contained in response.get("contained", []):
        line = _line(contained)
        if contained.get("resourceType") == "CommunicationRequest" and line is not None:
            out.setdefault(line, []).extend(str(p.get("contentString")) for p in contained.get("payload", []))
    return out


def asked_on(response: JSON) -> dict[int, str]:
    """When the answer asked for each item's documentation (its PASCommunicationRequests' ``authoredOn``), by
    item sequence."""
    out: dict[int, str] = {}
    for contained in response.get("contained", []):
        line = _line(contained)
        if contained.get("resourceType") == "CommunicationRequest" and line is not None and contained.get("authoredOn"):
            out.setdefault(line, str(contained["authoredOn"]))
    return out


def addressees(requestor: JSON | None, index: Index | None = None) -> tuple[list[JSON], JSON | None]:
    """Whom an ask for a ClaimResponse's ``requestor`` goes to (``recipient``: only a PASPractitioner or
    PASOrganization) and comes from (``sender``: only a PASRequestor, an Organization), CommunicationRequest.fsh
    25-28: a requestor Organization both; a PASPractitionerRole (as PAS lets a Claim's provider be) its
    practitioner, else its organization, and its organization. A role ``index`` cannot resolve is named in
    neither (never a reference of a type the profile refuses); a logical reference (another server's) as it is."""
    if not requestor or not (requestor.get("reference") or requestor.get("identifier")):
        return [], None
    if not requestor.get("reference"):
        return [requestor], requestor
    found = index.find(requestor) if index is not None else None
    target = typed_id(str(requestor["reference"]))
    rtype = found.get("resourceType") if found is not None else target[0] if target else None
    if rtype != "PractitionerRole":
        return [requestor], requestor
    if found is None:
        return [], None
    organization = found.get("organization") if isinstance(found.get("organization"), dict) else None
    practitioner = found.get("practitioner") if isinstance(found.get("practitioner"), dict) else None
    recipient = practitioner or organization
    return ([recipient] if recipient else []), organization


def _address(request: JSON, requestor: JSON | None, index: Index | None) -> None:
    request.pop("recipient", None)
    request.pop("sender", None)
    recipients, sender = addressees(requestor, index)
    if recipients:
        request["recipient"] = recipients
    if sender:
        request["sender"] = sender


def ask(response: JSON, needs: Mapping[int, Sequence[Need]], *, received: datetime, deadlines: DeadlineTable,
        lines: set[int] | None = None, index: Index | None = None) -> None:  # fmt: skip
    """Put on a PAS ClaimResponse what its pended items lack (``needs`` by item sequence): the pend reference
    number on each pended item, and one contained PASCommunicationRequest per LOINC code asked (each criterion's
    first code, most decisive first, of the criteria ``to_ask`` picks), named from ``communicationRequest``, due
    by ``deadlines``' information clock, of the requestor as ``addressees`` says (``index``: the request Bundle's,
    which resolves it). ``lines``: only these items are asked anew; the asks of the others are kept as they are."""
    pas = mappings()[PAS]
    kept = [c for c in response.get("contained", []) if c.get("resourceType") != "CommunicationRequest"
            or (lines is not None and _line(c) not in lines)]  # fmt: skip
    claim = (response.get("request") or {}).get("reference")
    due = information_due(received, deadlines).isoformat()
    report = pas.supporting_report_type  # what is asked is support data for the request (X12 755)
    category = {"system": pas.code_systems.report_type, "code": report.code, "display": report.display}
    medium = {"system": pas.code_systems.temp_codes, "code": "CDEX", "display": "CDex Submit-Attachment"}
    for item in response.get("item", []):
        sequence = item.get("itemSequence")
        if lines is not None and sequence not in lines:
            continue
        item["extension"] = [e for e in item.get("extension", []) if e.get("url") != ADMINISTRATION_REFERENCE]
        if review_action_code(item.get("adjudication", [])) != ReviewAction.PENDED:
            continue
        number = review_number(item)
        if number:
            item["extension"].append({"url": ADMINISTRATION_REFERENCE, "valueString": number})
        codes: dict[str, list[Need]] = {}
        for need in to_ask(needs.get(sequence, [])) if isinstance(sequence, int) else []:
            codes.setdefault(need.loinc[0], []).append(need)
        for n, (code, criteria) in enumerate(codes.items(), start=1):
            request: JSON = {
                "resourceType": "CommunicationRequest",
                "id": f"ask-{sequence}-{n}",
                "meta": {"profile": [PROFILE]},
                "extension": [{"url": SERVICE_LINE_NUMBER, "valuePositiveInt": sequence}],
                "identifier": [{"system": TRACKING_SYSTEM, "value": number or f"{response['id']}-{sequence}"}],
                "status": "active",
                "category": [{"coding": [category]}],
                "medium": [{"coding": [medium]}],
                "payload": [{"contentString": code}],
                "occurrencePeriod": {"start": received.isoformat(timespec="seconds"), "end": due},
                "authoredOn": received.isoformat(timespec="seconds"),
                "reasonCode": [{"text": need.criterion} for need in criteria],
                "note": [{"text": f"{need.question} ({need.citation})"} for need in criteria],
            }
            if response.get("patient", {}).get("reference"):
                request["subject"] = response["patient"]
            if claim:
                request["about"] = [{"reference": claim}]
            if response.get("insurer", {}).get("reference"):
                request["requester"] = response["insurer"]
            _address(request, response.get("requestor"), index)
            kept.append(request)
    asks = sorted((c for c in kept if c.get("resourceType") == "CommunicationRequest"),
                  key=lambda c: (_line(c) or 0, c["id"]))  # fmt: skip
    others = [c for c in kept if c.get("resourceType") != "CommunicationRequest"]
    response.pop("contained", None)
    response.pop("communicationRequest", None)
    if others or asks:
        response["contained"] = others + asks
    if asks:
        response["communicationRequest"] = [{"reference": f"#{c['id']}"} for c in asks]


# --- $submit-attachment ------------------------------------------------------------------------------------


@dataclass
class Attachment:
    """One ``Attachment`` parameter: the line items it is for (none: the whole request), its code, content."""

    lines: list[int]
    code: JSON | None
    content: JSON


@dataclass
class Submission:
    """A CDex ``$submit-attachment`` as read."""

    tracking: JSON
    member: JSON
    providers: list[JSON]
    attachments: list[Attachment] = field(default_factory=list)
    final: bool = True


def _parameters(parts: Any, where: str) -> list[JSON]:
    if not isinstance(parts, list):
        raise AttachmentError("a $submit-attachment body is a Parameters with parameters", location=where)
    return [p for p in parts if isinstance(p, dict)]


def _one(parameters: list[JSON], name: str, value: str, *, required: bool = True, where: str = "Parameters") -> Any:
    found = [p for p in parameters if p.get("name") == name]
    if len(found) > 1:
        raise AttachmentError(f"{name} is given more than once", location=f"{where}.parameter")
    if not found or found[0].get(value) in (None, "", {}):
        if required:
            raise AttachmentError(f"{name} ({value}) is required", location=f"{where}.parameter")
        return None
    return found[0][value]


def _identifier(value: Any, name: str) -> JSON:
    if not isinstance(value, dict) or not isinstance(value.get("value"), str) or not value["value"]:
        raise AttachmentError(f"{name} is an Identifier with a value", location="Parameters.parameter")
    return value


def submission(parameters: JSON) -> Submission:
    """Read a CDex ``$submit-attachment`` Parameters (``AttachmentError`` naming what is wrong)."""
    if parameters.get("resourceType") != "Parameters":
        raise AttachmentError("post a Parameters resource (CDex $submit-attachment)", location="resourceType")
    top = _parameters(parameters.get("parameter", []), "Parameters.parameter")
    tracking = _identifier(_one(top, "TrackingId", "valueIdentifier"), "TrackingId")
    attach_to = _one(top, "AttachTo", "valueCode")
    if attach_to != PREAUTHORIZATION:
        raise AttachmentError(f"AttachTo is {PREAUTHORIZATION!r} here (prior authorization), not {attach_to!r}",
                              location="Parameters.parameter")  # fmt: skip
    member = _identifier(_one(top, "MemberId", "valueIdentifier"), "MemberId")
    providers = [_identifier(v, name) for name in ("ProviderId", "OrganizationId")
                 if (v := _one(top, name, "valueIdentifier", required=False)) is not None]  # fmt: skip
    if not providers:
        raise AttachmentError("a ProviderId or an OrganizationId (or both) is required",
                              location="Parameters.parameter")  # fmt: skip
    final = _one(top, "Final", "valueBoolean", required=False)
    attachments = []
    for n, parameter in enumerate(p for p in top if p.get("name") == "Attachment"):
        where = f"Parameters.parameter[Attachment][{n}]"
        parts = _parameters(parameter.get("part", []), where)
        lines = []
        for part in (p for p in parts if p.get("name") == "LineItem"):
            value = str(part.get("valueString", ""))
            if not value.isdigit() or int(value) < 1:
                raise AttachmentError("LineItem is the Claim item's sequence number", location=f"{where}.part")
            lines.append(int(value))
        content = _one(parts, "Content", "resource", where=where)
        if not isinstance(content, dict):
            raise AttachmentError("Content is a resource", location=f"{where}.part")
        if content.get("resourceType") == "QuestionnaireResponse":  # refused before it is held or kept
            stated_facts(content, "QuestionnaireResponse")
        code = _one(parts, "Code", "valueCodeableConcept", required=False, where=where)
        attachments.append(Attachment(sorted(set(lines)), code, content))
    if not attachments:
        raise AttachmentError("at least one Attachment is required", location="Parameters.parameter")
    return Submission(tracking, member, providers, attachments, final is not False)


def line_tags(lines: Sequence[int]) -> list[JSON]:
    """The tags that say which line items a kept attachment's text counts for."""
    return [{"system": ATTACHMENT_TAG, "code": str(line)} for line in lines]


def attachment_lines(resource: JSON) -> set[int]:
    """The lines a kept attachment counts for (none: not an attachment)."""
    tags = (resource.get("meta") or {}).get("tag", [])
    return {int(t["code"]) for t in tags if t.get("system") == ATTACHMENT_TAG and str(t.get("code", "")).isdigit()}


def as_notes(bundle: JSON, lines: set[int]) -> JSON:
    """A copy of a request Bundle (a PAS Bundle as kept, or an EHR request's context) in which every tagged
    attachment counts for the requests of its lines only: a document's text as their note (the document out of
    the shared context), a QuestionnaireResponse named as their support (``supportingInfo``), whose answers
    state facts (``adapter.fhir.questionnaires``)."""
    copied = copy.deepcopy(bundle)
    attachments = [e for e in copied["entry"] if attachment_lines(e["resource"])]
    copied["entry"] = [e for e in copied["entry"] if not attachment_lines(e["resource"])
                       or e["resource"].get("resourceType") == "QuestionnaireResponse"]  # fmt: skip
    first = copied["entry"][0]["resource"]
    index = Index.of_bundle(copied)
    requested_url = mappings()[PAS].extensions.requested_service
    # a PAS Claim names each line's request; an EHR request's context Bundle is that one request
    items: list[JSON] = (
        first.get("item", []) if first.get("resourceType") == "Claim" else [{"sequence": s} for s in lines]
    )
    for item in items:
        sequence = item.get("sequence")
        if sequence not in lines:
            continue
        refs = [e.get("valueReference") for e in item.get("extension", []) if e.get("url") == requested_url]
        request = index.find(refs[0]) if refs else None if first.get("resourceType") == "Claim" else first
        if request is None:
            raise AttachmentError(f"line item {sequence} names no requested service to read the attachment for",
                                  location="Claim.item")  # fmt: skip
        support = "supportingInformation" if request.get("resourceType") == "MedicationRequest" else "supportingInfo"
        for entry in attachments:
            attachment = entry["resource"]
            if sequence not in attachment_lines(attachment):
                continue
            if attachment.get("resourceType") == "QuestionnaireResponse":
                request.setdefault(support, []).append({"reference": entry["fullUrl"]})
            else:
                request.setdefault("note", []).append({"text": content_text(attachment)})
    return copied


def pended_lines(response: JSON) -> set[int]:
    """The item sequences of an answer that are pended (waiting for information or a physician)."""
    return {i["itemSequence"] for i in response.get("item", [])
            if review_action_code(i.get("adjudication", [])) == ReviewAction.PENDED}  # fmt: skip


def with_carried(bundle: JSON, brought: Sequence[Attachment], waiting: set[int]) -> JSON:
    """A copy of a PAS Claim update Bundle in which the attachments it carries (``carried_attachments``) are notes
    of the requests of their lines (none named: every line ``waiting``), out of the shared context."""
    contents = {id(a.content) for a in brought}
    entries = [e for e in bundle.get("entry", []) if id(answers_in(e.get("resource")) or e.get("resource"))
               not in contents]  # fmt: skip
    tagged = [{"fullUrl": f"{mappings().tables.fhir.systems.carried_attachment}:{n}",
               "resource": {**a.content, "meta": {"tag": line_tags(a.lines or sorted(waiting))}}}
              for n, a in enumerate(brought)]  # fmt: skip
    return as_notes({**bundle, "entry": entries + tagged}, waiting)


def carried_attachments(bundle: JSON, claim: JSON, earlier: JSON) -> list[Attachment]:
    """The attachments a PAS Claim update carries: its ``additionalInformation`` supportingInfo that the earlier
    Claim did not have, whose value is a DocumentReference or QuestionnaireResponse in the Bundle or an inline
    Attachment (a DTR QuestionnaireResponse Bundle: its QuestionnaireResponse, ``answers_in``); each for the items
    that name it (``pas.support_items``), or none named (every pended item) when no item does. The contents are
    the Bundle's own resources (not copies)."""
    temp = mappings()[PAS].code_systems.temp_codes
    before = [orjson.dumps(_value(i)) for i in earlier.get("supportingInfo", []) if isinstance(i, dict)]
    index = Index.of_bundle(bundle)
    named = support_items(claim)
    found = []
    for info in claim.get("supportingInfo", []):
        category = (info.get("category") or {}).get("coding", []) if isinstance(info, dict) else []
        if not any(c.get("system") == temp and c.get("code") == "additionalInformation" for c in category):
            continue
        value = _value(info)
        if value is None or orjson.dumps(value) in before:
            continue
        if "contentType" in value:  # valueAttachment
            content: JSON | None = {"resourceType": "DocumentReference", "status": "current",
                                    "content": [{"attachment": value}]}  # fmt: skip
        else:
            target = index.find(value)
            content = answers_in(target) or target
        if content is None or content.get("resourceType") not in ("DocumentReference", "QuestionnaireResponse"):
            continue
        if content.get("resourceType") == "QuestionnaireResponse":  # refused before anything is decided
            stated_facts(content, "QuestionnaireResponse")
        sequence = info.get("sequence")
        lines = sorted(named.get(sequence, set())) if isinstance(sequence, int) else []
        found.append(Attachment(lines, None, content))
    return found


def _value(info: JSON) -> JSON | None:
    value = info.get("valueReference") or info.get("valueAttachment")
    return value if isinstance(value, dict) else None


def check_content(content: JSON) -> None:
    """Refuse an attachment that brings nothing to read: a DocumentReference without text (``content_text``), a
    QuestionnaireResponse that does not answer one of the adapter's questionnaires (``stated_facts``)."""
    if content.get("resourceType") == "QuestionnaireResponse":
        stated_facts(content, "QuestionnaireResponse")
    else:
        content_text(content)


def content_text(content: JSON) -> str:
    """The text a DocumentReference brings: its inline text/plain and PDF attachments (``AttachmentError`` when
    it has none, or the content is no DocumentReference)."""
    rtype = content.get("resourceType")
    if rtype == "DocumentReference":
        texts = []
        for entry in content.get("content", []):
            attachment = entry.get("attachment", {}) if isinstance(entry, dict) else {}
            kind = str(attachment.get("contentType", ""))
            if not (kind.startswith(("text/plain", "application/pdf")) and attachment.get("data")):
                continue
            try:
                data = base64.b64decode(attachment["data"], validate=True)
                texts.append(pdf_text(data) if kind.startswith("application/pdf") else data.decode("utf-8"))
            except (binascii.Error, ValueError) as exc:
                raise AttachmentError("the attachment's data is not base64 UTF-8 text",
                                      location="DocumentReference.content.attachment.data") from exc  # fmt: skip
            except PDFReadError as exc:
                raise AttachmentError(f"the attachment's PDF cannot be read ({exc.message})",
                                      location="DocumentReference.content.attachment.data") from exc  # fmt: skip
        if not any(t.strip() for t in texts):
            raise AttachmentError("the DocumentReference holds no inline text/plain or PDF attachment (data) with "
                                  "text to read", location="DocumentReference.content")  # fmt: skip
        return "\n\n".join(texts)
    raise AttachmentError(f"Content is a DocumentReference or a QuestionnaireResponse, not {rtype!r}",
                          location="Parameters.parameter[Attachment].part[Content]")  # fmt: skip


def readdress_asks(response: JSON, index: Index | None = None) -> None:
    """Name in a ClaimResponse's contained asks the parties the ClaimResponse itself names (the patient, the
    Claim, the insurer; the requestor as ``addressees`` says, ``index`` resolving it), as another copy of it
    does (the payer's, an inquiry's answer)."""
    for contained in response.get("contained", []):
        if contained.get("resourceType") != "CommunicationRequest":
            continue
        for element, party in (("subject", "patient"), ("requester", "insurer")):
            if element in contained and response.get(party):
                contained[element] = response[party]
        if "about" in contained and response.get("request"):
            contained["about"] = [response["request"]]
        if response.get("requestor"):
            _address(contained, response["requestor"], index)


def withdraw(response: JSON, lines: set[int]) -> None:
    """The asks of these items withdrawn (decided by a physician, cancelled): their contained
    PASCommunicationRequests out, a decided item's pend reference number off it."""
    for item in response.get("item", []):
        decided = review_action_code(item.get("adjudication", [])) != ReviewAction.PENDED
        if item.get("itemSequence") in lines and decided:
            item["extension"] = [e for e in item.get("extension", []) if e.get("url") != ADMINISTRATION_REFERENCE]
    kept = [c for c in response.get("contained", []) if c.get("resourceType") != "CommunicationRequest"
            or _line(c) not in lines]  # fmt: skip
    response.pop("contained", None)
    if kept:
        response["contained"] = kept
    named = {c["id"] for c in kept}
    asks = [r for r in response.get("communicationRequest", []) if str(r.get("reference", ""))[1:] in named]
    response.pop("communicationRequest", None)
    if asks:
        response["communicationRequest"] = asks


def extend_reviews(
    tasks: Sequence[JSON],
    response: JSON,
    received: datetime,
    *,
    deadlines: DeadlineTable,
    lines: Iterable[int] | None = None,
) -> None:
    """A review Task on the standard clock whose item asks for information is due by ``deadlines``' information
    clock (California, 8 CCR 9792.9.1: at most 14 days from the request once reasonably necessary information
    is asked for); expedited and retrospective clocks keep their own. The items asked: those the answer asks
    for in PAS, or ``lines`` (asked of the EHR)."""
    asked = set(asked_lines(response)) if lines is None else set(lines)
    due = information_due(received, deadlines).isoformat(timespec="seconds")
    for task in tasks:
        values = {i.get("type", {}).get("text"): next((v for k, v in i.items() if k.startswith("value")), None)
                  for i in task.get("input", [])}  # fmt: skip
        if values.get("item-sequence") in asked and values.get("clock") == "standard":
            task["restriction"]["period"]["end"] = due
