"""Every ClaimResponse the adapter writes: determinations -> a FHIR R4 ClaimResponse shaped like Da Vinci PAS
(``claim_response``, and the PAS response Bundle); an IMR letter's decisions -> the ClaimResponse of its case
Bundle (``letter_response``); and the edits a later decision or update makes to one (``decide_item``, ``note``,
``settle``).

One item per requested service with the PAS reviewAction (A1/A3/A4/A6: the action sent); the engine's
recommendation and the evidence it read (fact, status, quote, source) in the adapter's recommendation and
evidence extensions; for A6, what is certified in an ``addItem``; the rationale in ``processNote`` linked by
``noteNumber``; each rule's guideline citation in the adapter's guideline extension. ``outcome`` is
``complete`` when every item is decided, else ``partial`` (PAS does not allow ``queued``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import orjson

from adapter.actions import ReviewAction
from adapter.determination import Citation, Determination
from adapter.fhir import extensions as extension
from adapter.fhir.attachments import readdress_asks
from adapter.fhir.navigate import Index
from adapter.fhir.pas import PAS, collection, review_action, review_action_code
from adapter.model import Decision, IMRCase
from adapter.tables import Tables, mappings
from adapter.types import JSON

if TYPE_CHECKING:
    from adapter.fhir.request_facts import Requested

UNKNOWN_PATIENT: JSON = {"display": "unknown patient"}
#: The system of logical references to resources on another server (``Type/id`` or ``urn:uuid`` as value).
FOREIGN_REFERENCE_SYSTEM = mappings().tables.fhir.systems.ehr_reference


def logical(reference: JSON | None, base: str | None = None) -> JSON | None:
    """A reference to another server (or another Bundle) as a logical one, which nobody needs to resolve; with
    ``base``, a relative ``Type/id`` (a resource the service keeps and serves) becomes an absolute URL on it."""
    if not reference or "reference" not in reference:
        return reference
    ref = str(reference["reference"])
    if base and ref.startswith(f"{base.rstrip('/')}/"):
        return reference
    if base and "/" in ref and ":" not in ref:
        return {**reference, "reference": f"{base.rstrip('/')}/{ref}"}
    return {"identifier": {"system": FOREIGN_REFERENCE_SYSTEM, "value": ref}}


def detached(response: JSON, base: str | None = None) -> JSON:
    """A copy of a ClaimResponse whose references are all logical (for the payer, or for another Bundle);
    with ``base``, those to resources the service serves are absolute URLs on it instead."""
    copy: JSON = orjson.loads(orjson.dumps(response))
    copy["patient"] = logical(copy.get("patient"), base) or UNKNOWN_PATIENT
    for party in ("request", "insurer", "requestor"):
        if party in copy:
            copy[party] = logical(copy[party], base)
    for item in copy.get("item", []):
        for found in item.get("extension", []):
            if "valueReference" in found:
                found["valueReference"] = logical(found["valueReference"], base)
    return copy


@dataclass(frozen=True)
class Parties:
    """Who a ClaimResponse names: the patient, the Claim it answers, the insurer (the UMO) and the requestor,
    as references into the request (or displays when the request does not say)."""

    patient: JSON | None = None
    claim: str | None = None
    insurer: JSON | None = None
    requestor: JSON | None = None


def _pages(pages: str | None) -> list[int]:
    out: list[int] = []
    for start, end in re.findall(r"(\d+)(?:\s*-\s*(\d+))?", pages or ""):
        out.extend(range(int(start), int(end) + 1) if end and 0 < int(end) - int(start) < 50 else [int(start)])
    return out


def citation_text(citation: Citation) -> str:
    """ "MTUS Chronic Pain Medical Treatment Guidelines, Opioids, p. 76, 77": the guideline extension's words."""
    pages = _pages(citation.pages)
    words = [citation.guideline, *([citation.section] if citation.section else [])]
    return ", ".join([*words, *(["p. " + ", ".join(map(str, pages))] if pages else [])])


def recommendation(answer: Determination) -> JSON:
    """What the rules recommend, as the recommendation extension's CodeableConcept (PAS review action)."""
    return {"coding": [{"system": mappings()[PAS].code_systems.review_action, "code": answer.recommendation}]}


def claim_response(
    answers: Sequence[tuple[Requested, Determination]],
    *,
    parties: Parties | None = None,
    created: datetime | None = None,
    tables: Tables | None = None,
    products: Mapping[int, JSON] | None = None,
) -> JSON:
    """A ClaimResponse for (requested service, Determination) pairs, in order. Each item echoes its Claim
    item's sequence (its position when the request came without a Claim); certified care carries an
    authorization number (``preAuthRef``, and per item the reviewAction ``number``) and period; a modified
    item's ``addItem`` names what its Claim item does (``products`` by sequence: its productOrService, the
    PAS-coded service), else the request's own code."""
    tables = tables or mappings().tables
    ext = tables.fhir.extensions
    parties = parties or Parties()
    response_id = str(uuid.uuid4())
    created = created or datetime.now(UTC)
    period = authorization_period(created)
    items, added, notes = [], [], []
    for n, (requested, answer) in enumerate(answers, start=1):
        sequence = requested.sequence or n
        action = ReviewAction(answer.action)
        extensions = [extension.simple(ext.service_request, "valueReference", {"reference": requested.reference})]
        extensions += [extension.simple(ext.determination_rule, "valueString", rule) for rule in answer.rules]
        for citation in answer.citations:
            sections = [citation.section] if citation.section else []
            cited = extension.citation(mtus=citation.guideline.startswith("MTUS"), title=citation.guideline,
                                  sections=sections, pages=_pages(citation.pages))  # fmt: skip
            extensions.append(extension.guideline(ext.guideline, "rule", citation.rule, [cited]))
        extensions.append(extension.recommendation(ext.recommendation, recommendation(answer)))
        extensions += [extension.evidence(ext.evidence, f.fact, f.status, f.quote, f.source) for f in answer.evidence]
        notes.append({"number": n, "type": "display", "text": answer.rationale})
        item: JSON = {"extension": extensions, "itemSequence": sequence, "noteNumber": [n]}
        number = adjudicate(item, action, response_id, period)
        items.append(item)
        if action is ReviewAction.MODIFIED and answer.certified_quantity is not None:
            code = requested.resource.get("code") or requested.resource.get("codeCodeableConcept") or {}
            product = (products or {}).get(sequence) or code.get("concept", code)
            added.append(modified_item(sequence, product, answer.certified_quantity, number))
    actions = [ReviewAction(a.action) for _, a in answers]
    response = _opening(
        {"id": response_id},
        patient=parties.patient or UNKNOWN_PATIENT,
        created=created.isoformat(timespec="seconds"),
        insurer=parties.insurer or {"display": "IMR adapter utilization review"},
        tables=tables,
    )
    response |= {"item": items, "processNote": notes}
    settle(response)
    if parties.requestor:
        response["requestor"] = parties.requestor
    if parties.claim:
        response["request"] = {"reference": parties.claim}
    if any(a.certifies for a in actions):
        response["preAuthRef"] = response_id
        response["preAuthPeriod"] = period
    if added:
        response["addItem"] = added
    return response


def _opening(lead: JSON, *, patient: JSON, created: str, insurer: JSON, tables: Tables) -> JSON:
    """How every ClaimResponse the adapter writes begins: ``lead`` (its id or its extensions), then an active
    professional preauthorization answer to ``patient``, made ``created`` by ``insurer``."""
    return {
        "resourceType": "ClaimResponse",
        **lead,
        "status": "active",
        "type": {"coding": [{"system": tables.system_uris["claim_type"], "code": "professional"}]},
        "use": "preauthorization",
        "patient": patient,
        "created": created,
        "insurer": insurer,
    }


def letter_response(
    case: IMRCase, *, patient: JSON, insurer: JSON, claim: JSON, reviewer: JSON, created: str, tables: Tables
) -> JSON:
    """The ClaimResponse of an IMR letter: the IMR's decision on each item (upheld A3, overturned A1, modified A6
    with what was authorized in an ``addItem``), the guidelines the reviewer and the claims administrator relied
    on, the letter's dates, layout, reviewer and parse warnings; the rationale in ``processNote``."""
    ext, actions = tables.fhir.extensions, tables.fhir.review_actions
    extensions: list[JSON] = [
        extension.simple(ext.letter_layout, "valueCode", case.layout.value),
        extension.simple(ext.reviewer, "valueReference", reviewer),
        extension.pas_reviewer(
            mappings()[PAS].extensions.claim_response_reviewer,
            specialty=case.reviewer.specialty[0] if case.reviewer.specialty else None,
        ),
    ]
    if (dates := extension.case_dates(ext.case_dates, case.dates)) is not None:
        extensions.append(dates)
    extensions += [extension.parse_warning(ext.parse_warning, w) for w in case.warnings]

    items, added, notes = [], [], []
    for n, item in enumerate(case.items, start=1):
        line: JSON = {"itemSequence": n}
        item_ext = [extension.simple(ext.guideline_basis, "valueCode", item.guideline_basis.value)]
        for source, text, cited in (
            ("reviewer", item.maximus_guideline, item.citations),
            ("claims-administrator", item.claims_administrator_guideline, item.claims_administrator_citations),
        ):
            if text is not None or cited:
                citations = [extension.citation(mtus=c.mtus, title=c.title, edition=c.edition_year,
                                                sections=c.sections, pages=c.pages) for c in cited]  # fmt: skip
                item_ext.append(extension.guideline(ext.guideline, source, text, citations))
        modified = extension.modified_request(ext.modified_request, original=item.original_request,
                                              authorized=item.authorized,
                                              statement=item.request if item.disputed else None)  # fmt: skip
        if modified is not None:
            item_ext.append(modified)
        line["extension"] = item_ext
        if item.rationale is not None:
            notes.append({"number": n, "type": "display", "text": item.rationale})
            line["noteNumber"] = [n]
        if item.decision is Decision.OVERTURNED:
            action = actions.overturned
        else:
            action = actions.modified if item.original_request else actions.upheld
        line["adjudication"] = [review_action(action)]
        items.append(line)
        if action == actions.modified and item.authorized is not None:
            added.append(modified_item(n, {"text": item.authorized}, None, None))

    upheld = sum(1 for i in case.items if i.decision is Decision.UPHELD)
    response = _opening({"extension": extensions}, patient=patient, created=created, insurer=insurer, tables=tables)
    response |= {
        "request": claim,
        "outcome": "complete",
        "disposition": f"IMR Final Determination: {upheld} upheld, {len(case.items) - upheld} overturned",
        "item": items,
    }
    if case.case_number:
        response["identifier"] = [{"system": tables.fhir.case_number_system, "value": case.case_number}]
        response["preAuthRef"] = case.case_number
    if added:
        response["addItem"] = added
    if notes:
        response["processNote"] = notes
    return response


def authorization_period(start: datetime) -> JSON:
    """How long certified care is authorized from ``start`` (``mappings/pas.yaml``)."""
    end = start + timedelta(days=mappings()[PAS].authorization_days)
    return {"start": start.date().isoformat(), "end": end.date().isoformat()}


def adjudicate(item: JSON, action: ReviewAction, response_id: str, period: JSON) -> str | None:
    """Put an item's review action on it; certified care also gets its authorization number (returned) and
    period (``itemPreAuthPeriod``, in place of any before). A pended item carries the same number as its pend
    reference number, which an update or a later decision keeps (it is the item's, under the ClaimResponse)."""
    pas = mappings()[PAS]
    numbered = action.certifies or action is ReviewAction.PENDED
    number = f"{response_id}-{item['itemSequence']}" if numbered else None
    item["adjudication"] = [review_action(action, number=number)]
    if not action.certifies:
        number = None
    if number is not None:
        extension.put(item, extension.simple(pas.extensions.item_preauth_period, "valuePeriod", period))
    return number


def decide_item(response: JSON, item: JSON, action: ReviewAction, period: JSON) -> str | None:
    """An item of ``response`` decided anew (``adjudicate``); certified care is authorized for ``period`` under
    the response's id (``preAuthRef``). The item's authorization number when certified."""
    number = adjudicate(item, action, response["id"], period)
    if number is not None:
        response["preAuthRef"], response["preAuthPeriod"] = response["id"], period
    return number


def note(response: JSON, text: str) -> int:
    """A ``processNote`` added to ``response``, numbered after the others; its number."""
    notes = response.setdefault("processNote", [])
    number = max((n.get("number", 0) for n in notes), default=0) + 1
    notes.append({"number": number, "type": "display", "text": text})
    return number


def modified_item(sequence: int, product: JSON | None, quantity: float | None, number: str | None) -> JSON:
    """The ``addItem`` that says what of a modified (A6) item is certified (how much, when it is a quantity)."""
    added: JSON = {"itemSequence": [sequence], "productOrService": product or {"text": "service"}}
    if quantity is not None:
        added["quantity"] = {"value": quantity}
    added["adjudication"] = [review_action(ReviewAction.CERTIFIED, number=number)]
    return added


def settle(response: JSON) -> None:
    """``outcome`` and ``disposition`` from the items' review actions: complete when none is pended."""
    actions = [ReviewAction(review_action_code(i.get("adjudication", [])) or ReviewAction.PENDED)
               for i in response["item"]]  # fmt: skip
    response["outcome"] = "partial" if ReviewAction.PENDED in actions else "complete"
    response["disposition"] = ", ".join(actions)


def response_bundle(response: JSON, full_url: str, request: JSON | None = None, *, timestamp: str) -> JSON:
    """The PAS response Bundle: its identifier and timestamp, the ClaimResponse first (at ``full_url``), then
    every resource of the ``request`` Bundle the ClaimResponse refers to, directly or not, so that each
    reference resolves inside it."""
    return collection(
        mappings()[PAS].profiles.response_bundle,
        {"system": mappings().tables.identifier_system("pas-response"), "value": response["id"]},
        timestamp,
        [{"fullUrl": full_url, "resource": response}],
        (request or {}).get("entry", []),
    )


def inquiry_bundle(response: JSON, inquiry: JSON, full_url: str, *, timestamp: str, index: Index) -> JSON:
    """The PAS inquiry response Bundle: the current ClaimResponse, naming the inquiry's own Patient, insurer and
    requestor, and the Claim and requests it answers at the service's URLs (resources it keeps and serves;
    references into an older submission made logical), then those resources. ``index``: the inquiry's, as the
    edge made it."""
    claim = inquiry["entry"][0]["resource"]
    answer = detached(response, full_url.rsplit("/ClaimResponse/", 1)[0])  # the stored Claim resolves (spec-44)
    answer["patient"] = claim.get("patient") or answer["patient"]
    for party, element in (("insurer", "insurer"), ("requestor", "provider")):
        if claim.get(element):
            answer[party] = claim[element]
    readdress_asks(answer, index)  # what is asked, asked by and of the inquiry's parties
    return collection(
        mappings()[PAS].profiles.inquiry_response_bundle,
        {"system": mappings().tables.identifier_system("pas-inquiry-response"), "value": response["id"]},
        timestamp,
        [{"fullUrl": full_url, "resource": answer}],
        inquiry.get("entry", [])[1:],
    )
