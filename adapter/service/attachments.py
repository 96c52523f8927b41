"""Answering a documentation request: a CDex ``$submit-attachment`` for a pended prior authorization.

The open request is found by its tracking id (an item's pend reference number, which the asks carry as their
identifier, or the Claim's identifier) and the submission's member and provider ids are checked against the
request (refused, nothing stored, when they differ). The items it answers are determined again with the
attachment's text read as their own notes (it counts for its line items only; none named: every pended
item), and the result is the next version of the ClaimResponse, kept in one transaction with the attachment
(stored with the answer, tagged with its lines, and read again for those lines at every later decision): an
item the text now lets the rules certify goes out A1, one still pended asks again for what it lacks, an
adverse recommendation goes to the physician with the new quotes (a new review Task, the old one cancelled).

Every attachment is kept as received before anything is decided from it (``Store.hold_attachment``): one whose
tracking id names no request known here is held, as CDex says (``Received.held``), and answered once its
request is known; one whose process was killed before the new version is answered at the next pass
(``answer_held``). A tracking id the worker asked the EHR with (a CDex Task, ``adapter.fhir.cdex``) is the
worker's to answer: it reads the request's context from the EHR again (``answer_asked``).
"""

from __future__ import annotations

import copy
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapter.deadlines import information_due
from adapter.errors import AdapterError, MappingError, RequestConflictError
from adapter.fhir.attachments import (
    Submission,
    as_notes,
    ask,
    attachment_lines,
    check_content,
    line_tags,
    pended_lines,
    submission,
)
from adapter.fhir.conformance import claim_npis, member_ids
from adapter.fhir.inbound import DEFAULT_LIMITS, Limits
from adapter.fhir.navigate import Index, typed_id
from adapter.fhir.pas import review_number
from adapter.review import review_tasks
from adapter.review.policy import DEFAULT_POLICY, Policy
from adapter.review.tasks import first_input, sequence_of
from adapter.service.pipeline import decide, for_payer
from adapter.service.state import AttachmentRequest, HeldAttachment, Store
from adapter.service.updates import Changes, merged
from adapter.types import JSON

log = logging.getLogger("adapter.service.attachments")


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


def kept_request(store: Store, response: JSON) -> JSON:
    """The request Bundle a ClaimResponse answers, as the service keeps it: the Claim first, then the
    resources stored with it (other Claims, a later update's, aside)."""
    claim_ref = str((response.get("request") or {}).get("reference", ""))
    rtype, cid = typed_id(claim_ref) or ("", "")
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


def check_parties(submitted: Submission, members: set[str], known: set[tuple[Any, str]], npis: set[str]) -> None:
    """The submission's member is one of ``members`` (``system|value``) and one of its providers one of ``known``
    (system, value) or ``npis`` (``AttachmentMismatchError`` otherwise)."""
    member = submitted.member
    if not any(m.rsplit("|", 1)[1] == member["value"] and (not member.get("system") or
               m.startswith(f"{member['system']}|")) for m in members):  # fmt: skip
        raise AttachmentMismatchError("MemberId is not the member of the request this tracking id names",
                                      location="Parameters.parameter[MemberId]")  # fmt: skip
    if not any(p["value"] in npis or (p.get("system"), p["value"]) in known or (not p.get("system") and any(
            v == p["value"] for _, v in known)) for p in submitted.providers):  # fmt: skip
        raise AttachmentMismatchError("ProviderId / OrganizationId is not a provider of the request this tracking "
                                      "id names", location="Parameters.parameter[ProviderId]")  # fmt: skip


def find_asked(store: Store, submitted: Submission) -> AttachmentRequest | None:
    """The open CDex request asked of the EHR that a submission answers (None: its tracking id is no such
    request), its member and provider checked against the Task's contained Patient and PractitionerRole and its
    lines against the line asked (``AttachmentMismatchError``, ``NotPendedError``)."""
    found = store.attachment_requests(tracking=str(submitted.tracking["value"]))
    if not found:
        return None
    asked = found[0]
    contained = {c.get("resourceType"): c for c in asked.task.get("contained", [])}
    patient, role = contained.get("Patient", {}), contained.get("PractitionerRole", {})
    members = {f"{i.get('system')}|{i['value']}" for i in patient.get("identifier", []) if i.get("value")}
    known = {(i.get("system"), str(i.get("value"))) for k in ("practitioner", "organization")
             if (i := (role.get(k) or {}).get("identifier"))}  # fmt: skip
    check_parties(submitted, members, known, set())
    if asked.status in ("answered", "cancelled"):
        raise NotPendedError("this documentation request is closed (answered, or the item decided)")
    for line in sorted({n for a in submitted.attachments for n in a.lines} - {asked.line}):
        raise NotPendedError(f"line item {line} is not the line this request asks for",
                             location="Parameters.parameter[Attachment].part[LineItem]")  # fmt: skip
    return asked


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
        if found is not None and item is not None and review_number(item) == value:
            rid, line = head, int(tail)
    if rid is None and tracking.get("system"):
        rid = store.processed(f"claim:{_identifier_key(tracking)}")
    response = store.claim_response(rid) if rid else None
    if response is None:
        raise UnknownTrackingError(f"no prior authorization here has the tracking id {value!r}",
                                   location="Parameters.parameter[TrackingId]")  # fmt: skip
    bundle = kept_request(store, response)
    claim = bundle["entry"][0]["resource"]
    index = Index.of_bundle(bundle)
    provider = index.find(claim.get("provider")) or {}
    known = {(i.get("system"), str(i["value"])) for i in provider.get("identifier", []) if i.get("value")}
    check_parties(submitted, member_ids(index, claim.get("patient")), known, claim_npis(index, claim))
    pended = pended_lines(response)
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
        content["meta"] = {
            "tag": line_tags(attachment.lines or default),
            "lastUpdated": received.isoformat(timespec="milliseconds"),
        }
        for party in ("subject", "patient"):
            if party in content and claim.get("patient"):
                content[party] = claim["patient"]
        kept.append(content)
    return kept


def answer_asked(
    store: Store,
    submitted: Submission,
    key: str,
    asked: AttachmentRequest,
    context: JSON,
    *,
    forward: bool,
    policy: Policy = DEFAULT_POLICY,
    who: str = "worker",
) -> JSON:
    """The next version of the answer to an EHR request that a CDex request asked documentation for, its line
    determined again from ``context`` (the request's context Bundle, read from the EHR again) with the
    attachments this answer already holds and the new ones; the request marked answered (the same ``key`` again:
    the version it made)."""
    existing = store.processed(key)
    if existing is not None and (current := store.claim_response(existing)) is not None:
        store.set_attachment_request(asked.tracking, "answered")
        return current
    response = store.claim_response(asked.claim_response_id)
    if response is None:
        raise UnknownTrackingError("the answer this documentation request is for is not kept here")
    if asked.line not in pended_lines(response):
        raise NotPendedError(f"line item {asked.line} is not waiting for information any more")
    bundle = copy.deepcopy(context)
    bundle["entry"] += [{"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r}
                        for r in store.resources_of(response["id"]) if attachment_lines(r)]  # fmt: skip
    stored = _again(store, submitted, Open(response, bundle, {asked.line}), key, forward=forward,
                    limits=DEFAULT_LIMITS, policy=policy, who=who, pas=False)  # fmt: skip
    store.set_attachment_request(asked.tracking, "answered")
    return stored


def _again(
    store: Store,
    submitted: Submission,
    opened: Open,
    key: str,
    *,
    forward: bool,
    limits: Limits,
    policy: Policy,
    who: str,
    pas: bool = True,
) -> JSON:
    """Determine the lines ``opened`` names again with the submission's attachments as their notes, and keep the
    next version with the attachments in one transaction (``pas``: a line that still pends asks again)."""
    moment = datetime.now(UTC)
    for attachment in submitted.attachments:
        check_content(attachment.content)  # refused before anything is determined or kept
    attachments = stored_attachments(submitted, opened, key, moment)
    context = copy.deepcopy(opened.bundle)
    context["entry"] += [{"fullUrl": f"{a['resourceType']}/{a['id']}", "resource": a} for a in attachments]
    decided = as_notes(context, opened.lines)
    fresh = decide(decided, checked=True, limits=limits, policy=policy)
    if not pas:  # an EHR request's answer has one item, its sequence the line asked
        for item in fresh.response.get("item", []):
            item["itemSequence"] = min(opened.lines)
    response = merged(opened.response, fresh.response, Changes(changed=set(opened.lines), cancelled=set()), moment)
    received = datetime.fromisoformat(str(opened.response["created"]))
    if pas:
        ask(response, fresh.needs, received=received, deadlines=policy.deadlines, lines=set(opened.lines),
            index=Index.of_bundle(opened.bundle))  # fmt: skip
    reviews = [r for r in review_tasks(response, fresh.requested, decided, moment, fresh.needs,
                                              answers=fresh.determinations, policy=policy)
               if sequence_of(r.resource) in opened.lines]  # fmt: skip
    deadline = information_due(received, policy.deadlines)
    for review in reviews:  # information received: 5 business days from it, at most 14 from the request
        period = review.resource["restriction"]["period"]
        if first_input(review.resource, "clock") == "standard" and datetime.fromisoformat(period["end"]) > deadline:
            period["end"] = deadline.isoformat(timespec="seconds")
    return store.update_answer(
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


def tracking_key(submitted: Submission) -> str:
    """A submission's tracking id as kept (``system|value``)."""
    return _identifier_key(submitted.tracking)


@dataclass
class Received:
    """What became of a submission: the version it made (and the lines determined again), or held (why)."""

    response: JSON | None
    lines: set[int]
    held: str = ""


def receive(
    store: Store,
    submitted: Submission,
    data: JSON,
    key: str,
    *,
    forward: bool,
    limits: Limits = DEFAULT_LIMITS,
    policy: Policy = DEFAULT_POLICY,
    who: str = "service",
) -> Received:
    """A ``$submit-attachment`` as the service answers it: checked against its request (4xx, nothing kept, when
    its member, provider or lines are not the request's), kept, then decided; held when its tracking id names
    no request known here yet, or names one the worker asked the EHR for (the worker decides it)."""
    existing = store.processed(key)
    if existing is not None and (current := store.claim_response(existing)) is not None:
        return Received(current, set())
    try:
        opened = find_open(store, submitted)
    except UnknownTrackingError:
        asked = find_asked(store, submitted)
        store.hold_attachment(key, tracking_key(submitted), data)
        if asked is not None:
            return Received(None, set(), "accepted; the request it answers is decided again from the EHR's records")
        return Received(None, set(), "the attachments can not be associated with a current prior authorization and "
                                     "are being held for association with a future one")  # fmt: skip
    store.hold_attachment(key, tracking_key(submitted), data)  # kept first: a process killed next loses nothing
    try:
        response = _again(store, submitted, opened, key, forward=forward, limits=limits, policy=policy, who=who)
    except RequestConflictError:  # the held answerer decided it meanwhile: its version is this answer
        made = store.processed(key)
        current = store.claim_response(made) if made is not None else None
        if current is None:
            raise
        return Received(current, opened.lines)
    store.attachment_outcome(key, "answered", response=response["id"])
    return Received(response, opened.lines)


def answer_held(store: Store, *, forward: bool, policy: Policy = DEFAULT_POLICY, limits: Limits = DEFAULT_LIMITS,
                who: str = "service") -> int:  # fmt: skip
    """Answer the held attachments whose PAS request is now known (or whose process stopped before it answered);
    refuse, with the reason, those whose member or provider turn out not to be the request's. Those the worker
    asked the EHR for are left to it. The number answered."""
    done = 0
    for held in store.held_attachments():
        try:
            submitted = submission(held.payload)
            opened = find_open(store, submitted)
            response = _again(store, submitted, opened, held.key, forward=forward, limits=limits, policy=policy,
                              who=who)  # fmt: skip
        except UnknownTrackingError:
            continue  # no request known yet (or the worker's): held
        except RequestConflictError:
            continue  # another process answered it or the answer changed meanwhile: the next pass sees which
        except MappingError as exc:
            refuse(store, held, exc, who)
            continue
        store.attachment_outcome(held.key, "answered", response=response["id"])
        done += 1
    return done


def refuse(store: Store, held: HeldAttachment, error: AdapterError, who: str) -> None:
    """A held attachment that cannot answer its request (its member or provider not the request's, its line not
    pended, its content unreadable): refused with the reason, and audited."""
    store.attachment_outcome(held.key, "refused", reason=f"[{error.code}] {error.message}")
    store.audit(who, "attachment refused", f"tracking {held.tracking}"[:160], error.code)


class HeldAnswerer:
    """A thread beside the service that answers held attachments (``answer_held``): at start (what a killed
    process left), then every ``interval`` seconds (those whose request has come since)."""

    def __init__(self, store: Store, *, forward: bool, policy: Policy, interval: float) -> None:
        self.store = store
        self.forward = forward
        self.policy = policy
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    answer_held(self.store, forward=self.forward, policy=self.policy)
                except Exception:  # noqa: BLE001 - the state failing must not end the thread; the next pass retries
                    log.exception("answering held attachments failed")
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=run, name="held-attachments", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
