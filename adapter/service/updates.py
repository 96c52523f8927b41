"""A PAS Claim update (PASClaimUpdate: ``related.claim`` the earlier Claim, included in the Bundle; spec-63..72)
answered as the next version of the same ClaimResponse: items the update flags as changed or added
(``infoChanged``) are determined again, cancelled ones (``infoCancelled``) leave the answer with a note, the
rest keep their result, their review number (a pended item its pend reference number) and their review Task;
the Tasks of changed and cancelled items are cancelled, and a changed item that pends gets a new one."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from adapter.actions import ReviewAction
from adapter.errors import MappingError
from adapter.fhir.attachments import ask, carried_attachments, pended_lines, with_carried, withdraw
from adapter.fhir.inbound import DEFAULT_LIMITS, Limits
from adapter.fhir.navigate import Index
from adapter.fhir.navigate import extensions as _ext
from adapter.fhir.pas import PAS, review_action_code, support_items
from adapter.fhir.response import authorization_period, decide_item, note, settle
from adapter.review import ReviewTask, review_tasks
from adapter.review.policy import Policy
from adapter.review.tasks import next_version, sequence_of
from adapter.service.pipeline import answered_before, decide, for_payer
from adapter.service.state import Store
from adapter.tables import mappings
from adapter.types import JSON


class UnknownClaimError(MappingError):
    """A Claim update whose earlier Claim was not answered here (or is not in the Bundle, spec-65)."""

    code = "claim-update-unknown"
    issue_type = "not-found"


def is_update(claim: JSON) -> bool:
    """A PASClaimUpdate: it declares the profile, or relates to an earlier Claim."""
    profiles = (claim.get("meta") or {}).get("profile", [])
    return "related" in claim or any(str(p).split("|")[0].endswith("profile-claim-update") for p in profiles)


def earlier_claim(bundle: JSON, claim: JSON) -> JSON:
    """The Claim an update's ``related.claim`` names, in the Bundle (spec-65), or ``UnknownClaimError``."""
    related = (claim.get("related") or [{}])[0].get("claim")
    found = Index.of_bundle(bundle).find(related)
    if found is None or found.get("resourceType") != "Claim" or found is claim:
        raise UnknownClaimError(
            "a Claim update names the Claim it updates in related.claim and includes it in the Bundle (spec-65)",
            location="Claim.related.claim",
        )
    return found


@dataclass
class Changes:
    """What an update does to each item sequence."""

    changed: set[int]
    cancelled: set[int]


def changes(claim: JSON, answered: JSON) -> Changes:
    """From the update's flags (spec-69, spec-71) and the items answered before: which sequences to determine
    again (flagged infoChanged, or new) and which are cancelled (infoCancelled true; every one when the Claim
    itself carries certificationType 3, Cancel)."""
    pas = mappings()[PAS]
    ext = pas.extensions
    before = {i.get("itemSequence") for i in answered.get("item", [])}
    kinds = [e.get("valueCodeableConcept", {}) for e in _ext(claim, ext.certification_type)]
    if any(c.get("system") == pas.code_systems.certification_type and c.get("code") == "3"
           for kind in kinds for c in kind.get("coding", [])):  # fmt: skip
        return Changes(set(), {s for s in before if isinstance(s, int)})  # the whole request cancelled
    changed, cancelled = set(), set()
    for item in claim.get("item", []):
        sequence = item.get("sequence")
        if any(e.get("valueBoolean") is True for e in _ext({"extension": item.get("modifierExtension", [])},
                                                           ext.info_cancelled)):  # fmt: skip
            cancelled.add(sequence)
        elif _ext(item, ext.info_changed) or sequence not in before:
            changed.add(sequence)
    return Changes(changed, cancelled)


def _only(bundle: JSON, sequences: set[int]) -> JSON:
    """A copy of an update Bundle whose Claim holds only these items (what is determined again), and only the
    supporting information that supports them (``pas.support_items``: none named by the others alone)."""
    copied = copy.deepcopy(bundle)
    claim = copied["entry"][0]["resource"]
    others = {n for n, items in support_items(claim).items() if not items & sequences}
    claim["item"] = [i for i in claim.get("item", []) if i.get("sequence") in sequences]
    kept = [i for i in claim.pop("supportingInfo", []) if i.get("sequence") not in others]
    if kept:  # FHIR arrays are never empty
        claim["supportingInfo"] = kept
    return copied


def merged(answered: JSON, fresh: JSON | None, change: Changes, moment: datetime) -> JSON:
    """The next version of ``answered``: changed items as ``fresh`` answers them (under the earlier answer's id,
    so an item's review number stays its own), cancelled items out with a note, the others as they were."""
    response = copy.deepcopy(answered)
    fresh_items = {i["itemSequence"]: i for i in (fresh or {}).get("item", [])}
    fresh_notes = {n["number"]: n for n in (fresh or {}).get("processNote", [])}
    period = response.get("preAuthPeriod") or authorization_period(moment)
    items = []
    for item in response.get("item", []):
        sequence = item["itemSequence"]
        if sequence in change.cancelled:
            note(response, f"Item {sequence} cancelled by the requester's update.")
            continue
        items.append(fresh_items.pop(sequence, item) if sequence in change.changed else item)
    items += [fresh_items.pop(s) for s in sorted(fresh_items) if s in change.changed]
    for item in items:
        if item["itemSequence"] not in change.changed:
            continue
        item["noteNumber"] = [
            note(response, fresh_notes[n]["text"]) for n in item.get("noteNumber", []) if n in fresh_notes
        ]
        action = ReviewAction(review_action_code(item.get("adjudication", [])) or ReviewAction.PENDED)
        decide_item(response, item, action, period)
    response["item"] = items
    response["addItem"] = [a for a in response.get("addItem", []) if not set(a.get("itemSequence", [])) & (
        change.changed | change.cancelled)] + [a for a in (fresh or {}).get("addItem", [])]  # fmt: skip
    if not response["addItem"]:
        del response["addItem"]
    settle(response)
    if not items:  # the whole request cancelled (FHIR arrays and strings are never empty)
        del response["item"]
        response["disposition"] = "Cancelled by the requester"
    next_version(response, moment.isoformat(timespec="milliseconds"))
    return response


def answer_update(
    store: Store,
    data: JSON,
    key: str,
    answered: JSON,
    *,
    forward: bool,
    also: Sequence[str] = (),
    limits: Limits = DEFAULT_LIMITS,
    policy: Policy,
    inquiry: Sequence[tuple[str, str]] = (),
    resources: Sequence[JSON] = (),
    who: str = "service",
    senders: Sequence[tuple[str, str]] = (),
) -> tuple[JSON, bool]:
    """(ClaimResponse, changed?) for a checked Claim update whose earlier Claim ``answered`` answers: the same
    update sent again gets the version it made."""
    current = answered_before(store, key, also)
    if current is not None:
        return current, False
    claim = data["entry"][0]["resource"]
    change = changes(claim, answered)
    brought = carried_attachments(data, claim, earlier_claim(data, claim))
    if brought:  # attachments answering the asks: the pended items they are for are determined again with them
        waiting = pended_lines(answered) - change.cancelled
        attached = {line for a in brought for line in (a.lines or waiting)} & waiting
        change = Changes(change.changed | attached, change.cancelled)
        data = with_carried(data, brought, attached)
    moment = datetime.now(UTC)
    fresh = None
    if change.changed:
        fresh = decide(_only(data, change.changed), checked=True, limits=limits, policy=policy)
    response = merged(answered, fresh.response if fresh else None, change, moment)
    withdraw(response, change.changed | change.cancelled)
    if fresh is not None:  # a changed item that pends asks again for what it lacks
        ask(
            response,
            fresh.needs,
            received=datetime.fromisoformat(str(answered["created"])),
            deadlines=policy.deadlines,
            lines=change.changed,
        )
    reviews: list[ReviewTask] = []
    if fresh is not None:
        reviews = [r for r in review_tasks(response, fresh.requested, data, moment, fresh.needs,
                                                 answers=fresh.determinations, policy=policy)
                   if sequence_of(r.resource) in change.changed]  # fmt: skip
    stored = store.update_answer(
        response,
        cancel=change.changed | change.cancelled,
        reviews=reviews,
        forward=for_payer(response) if forward else None,
        key=key,
        also=also,
        inquiry=inquiry,
        resources=resources,
        who=who,
        senders=senders,
    )
    return stored, True
