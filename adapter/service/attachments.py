"""Answering a documentation request: a CDex ``$submit-attachment`` for a pended prior authorization.

The open request is found by its tracking id (an item's pend reference number, which the asks carry as their
identifier, or the Claim's identifier) and the submission's member and provider ids are checked against the
request (refused, nothing stored, when they differ). The items it answers are determined again with the
attachment's text read as their own notes (it counts for its line items only; none named: every pended
item), and the result is the next version of the ClaimResponse, kept in one transaction with the attachment
(stored with the answer, tagged with its lines, and read again for those lines at every later decision): an
item the text now lets the rules certify goes out A1, one still pended asks again for what it lacks, an
adverse recommendation goes to the physician with the new quotes (a new review Task, the old one cancelled).
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from adapter.actions import ReviewAction
from adapter.determination import AdversePolicy
from adapter.errors import AdapterError, MappingError
from adapter.fhir.attachments import Submission, ask, content_text, information_due, pend_number
from adapter.fhir.conformance import claim_npis, member_ids
from adapter.fhir.inbound import DEFAULT_LIMITS, Limits
from adapter.fhir.navigate import Index
from adapter.fhir.pas import load_pas, review_action_code
from adapter.review import review_tasks
from adapter.review.tasks import first_input, sequence_of
from adapter.service.pipeline import decide, for_payer
from adapter.service.state import Store
from adapter.service.updates import Changes, merged
from adapter.types import JSON

#: The tag of a stored attachment: the line items (Claim item sequences) its text counts for.
ATTACHMENT_TAG = "urn:imr-adapter:attachment-line"


class UnknownTrackingError(AdapterError):
    """No open prior authorization has this tracking id."""

    code = "attachment-unknown"
    issue_type = "not-found"


class AttachmentMismatchError(MappingError):
    """The member or provider of a submission is not the request's."""

    code = "attachment-mismatch"
    issue_type = "business-rule"


class NotPendedError(MappingError):
    """A line item the attachment names is not waiting for information (decided, or not on the request)."""

    code = "attachment-not-pended"
    issue_type = "business-rule"


@dataclass
class Open:
    """The answer an attachment is for: the ClaimResponse, the request Bundle as kept, the lines it names."""

    response: JSON
    bundle: JSON
    lines: set[int]


def _identifier_key(identifier: JSON) -> str:
    return f"{identifier.get('system')}|{identifier['value']}"


def _pended(response: JSON) -> set[int]:
    return {i["itemSequence"] for i in response.get("item", [])
            if review_action_code(i.get("adjudication", [])) == ReviewAction.PENDED}  # fmt: skip


def kept_request(store: Store, response: JSON) -> JSON:
    """The request Bundle a ClaimResponse answers, as the service keeps it: the Claim first, then the
    resources stored with it (other Claims, a later update's, aside)."""
    claim_ref = str((response.get("request") or {}).get("reference", ""))
    rtype, _, cid = claim_ref.partition("/")
    claim = store.resource(rtype, cid) if rtype == "Claim" else None
    if claim is None:
        raise UnknownTrackingError("the Claim this answer is for is not kept here")
    seen = {("Claim", cid)}
    entries = [{"fullUrl": claim_ref, "resource": claim}]
    for resource in store.resources_of(response["id"]):
        key = (resource["resourceType"], resource["id"])
        if key not in seen and resource["resourceType"] != "Claim":
            seen.add(key)
            entries.append({"fullUrl": f"{key[0]}/{key[1]}", "resource": resource})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def find_open(store: Store, submitted: Submission) -> Open:
    """The pended answer a submission is for, its member and provider checked (``UnknownTrackingError``,
    ``AttachmentMismatchError``, ``NotPendedError``)."""
    tracking = submitted.tracking
    value = str(tracking["value"])
    rid, line = None, None
    head, _, tail = value.rpartition("-")
    if head and tail.isdigit():  # a pend reference number: {ClaimResponse id}-{item sequence}
        found = store.claim_response(head)
        item = next((i for i in (found or {}).get("item", []) if i.get("itemSequence") == int(tail)), None)
        if found is not None and item is not None and pend_number(item) == value:
            rid, line = head, int(tail)
    if rid is None and tracking.get("system"):
        rid = store.processed(f"claim:{_identifier_key(tracking)}")
    response = store.claim_response(rid) if rid else None
    if response is None:
        raise UnknownTrackingError(f"no prior authorization here has the tracking id {value!r}",
                                   location="Parameters.parameter[TrackingId]")  # fmt: skip
    bundle = kept_request(store, response)
    claim = bundle["entry"][0]["resource"]
    members = member_ids(bundle, claim.get("patient"))
    member = submitted.member
    if not any(m.rsplit("|", 1)[1] == member["value"] and (not member.get("system") or
               m.startswith(f"{member['system']}|")) for m in members):  # fmt: skip
        raise AttachmentMismatchError("MemberId is not the member of the request this tracking id names",
                                      location="Parameters.parameter[MemberId]")  # fmt: skip
    npis = claim_npis(bundle, claim)
    provider = Index.of_bundle(bundle).find(claim.get("provider")) or {}
    known = {(i.get("system"), str(i["value"])) for i in provider.get("identifier", []) if i.get("value")}
    if not any(p["value"] in npis or (p.get("system"), p["value"]) in known or (not p.get("system") and any(
            v == p["value"] for _, v in known)) for p in submitted.providers):  # fmt: skip
        raise AttachmentMismatchError("ProviderId / OrganizationId is not a provider of the request this tracking "
                                      "id names", location="Parameters.parameter[ProviderId]")  # fmt: skip
    pended = _pended(response)
    named = {n for a in submitted.attachments for n in a.lines}
    if any(not a.lines for a in submitted.attachments):
        named |= {line} if line is not None else pended
    if not named:
        raise NotPendedError("no item of this request is waiting for information")
    for n in sorted(named - pended):
        raise NotPendedError(f"line item {n} is not pended on this request (decided, or not on it)",
                             location="Parameters.parameter[Attachment].part[LineItem]")  # fmt: skip
    return Open(response, bundle, named)


def stored_attachments(submitted: Submission, opened: Open, key: str, received: datetime) -> list[JSON]:
    """The attachments as kept with the answer: each content with an id of its own (the same submission, the
    same ids), tagged with the lines its text counts for."""
    claim = opened.bundle["entry"][0]["resource"]
    default = sorted(opened.lines)
    kept = []
    for n, attachment in enumerate(submitted.attachments):
        content = copy.deepcopy(attachment.content)
        content["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key}#{n}"))
        tags = [{"system": ATTACHMENT_TAG, "code": str(line)} for line in attachment.lines or default]
        content["meta"] = {"tag": tags, "lastUpdated": received.isoformat(timespec="milliseconds")}
        for party in ("subject", "patient"):
            if party in content and claim.get("patient"):
                content[party] = claim["patient"]
        kept.append(content)
    return kept


def attachment_lines(resource: JSON) -> set[int]:
    """The lines a kept attachment counts for (none: not an attachment)."""
    tags = (resource.get("meta") or {}).get("tag", [])
    return {int(t["code"]) for t in tags if t.get("system") == ATTACHMENT_TAG and str(t.get("code", "")).isdigit()}


def _with_notes(bundle: JSON, lines: set[int]) -> JSON:
    """A copy of the kept request in which every attachment's text is a note of the requests of its lines
    (the attachments themselves out of the shared context)."""
    copied = copy.deepcopy(bundle)
    attachments = [e["resource"] for e in copied["entry"] if attachment_lines(e["resource"])]
    copied["entry"] = [e for e in copied["entry"] if not attachment_lines(e["resource"])]
    claim = copied["entry"][0]["resource"]
    index = Index.of_bundle(copied)
    requested_url = load_pas().extensions.requested_service
    for item in claim.get("item", []):
        sequence = item.get("sequence")
        if sequence not in lines:
            continue
        refs = [e.get("valueReference") for e in item.get("extension", []) if e.get("url") == requested_url]
        request = index.find(refs[0]) if refs else None
        if request is None:
            raise NotPendedError(f"line item {sequence} names no requested service to read the attachment for")
        for attachment in attachments:
            if sequence in attachment_lines(attachment):
                request.setdefault("note", []).append({"text": content_text(attachment)})
    return copied


def answer_attachment(
    store: Store,
    submitted: Submission,
    key: str,
    *,
    forward: bool,
    limits: Limits = DEFAULT_LIMITS,
    adverse: AdversePolicy = "pend",
    who: str = "service",
) -> tuple[JSON, set[int]]:
    """(ClaimResponse, the item sequences determined again) for a checked submission: the items it answers
    determined again, as the next version; the same submission sent again gets the version it made (none)."""
    existing = store.processed(key)
    if existing is not None and (current := store.claim_response(existing)) is not None:
        return current, set()
    opened = find_open(store, submitted)
    moment = datetime.now(UTC)
    for attachment in submitted.attachments:
        content_text(attachment.content)  # refused before anything is determined or kept
    attachments = stored_attachments(submitted, opened, key, moment)
    context = copy.deepcopy(opened.bundle)
    context["entry"] += [{"fullUrl": f"{a['resourceType']}/{a['id']}", "resource": a} for a in attachments]
    decided = _with_notes(context, opened.lines)
    fresh = decide(decided, checked=True, limits=limits, adverse=adverse)
    response = merged(opened.response, fresh.response, Changes(changed=set(opened.lines), cancelled=set()), moment)
    received = datetime.fromisoformat(str(opened.response["created"]))
    ask(response, fresh.needs, received=received, lines=set(opened.lines))
    reviews = [r for r in review_tasks(response, fresh.requested, decided, moment, fresh.needs)
               if sequence_of(r.resource) in opened.lines]  # fmt: skip
    deadline = information_due(received)
    for review in reviews:  # information received: 5 business days from it, at most 14 from the request
        period = review.resource["restriction"]["period"]
        if first_input(review.resource, "clock") == "standard" and datetime.fromisoformat(period["end"]) > deadline:
            period["end"] = deadline.isoformat(timespec="seconds")
    stored = store.update_answer(
        response,
        cancel=set(opened.lines),
        reviews=reviews,
        forward=for_payer(response) if forward else None,
        key=key,
        also=(),
        inquiry=(),
        resources=attachments,
        who=who,
        action="attachment",
    )
    return stored, set(opened.lines)
