"""What the service and the worker both do with a request: determine it, shape the ClaimResponse, and
prepare the copy the payer receives. No I/O here but the state store the caller passes."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from adapter.config import ServiceSettings
from adapter.determination import RULES, Determination, RuleSet, determine_all
from adapter.determination.documentation import Need
from adapter.errors import AdapterError, RequestConflictError, StateError
from adapter.fhir.attachments import ask, extend_reviews, readdress_asks
from adapter.fhir.conformance import check_request
from adapter.fhir.inbound import DEFAULT_LIMITS, Limits, check_resource
from adapter.fhir.request import RequestBundle, request_bundle
from adapter.fhir.request_facts import Requested, requested_services
from adapter.fhir.response import Parties, claim_response, detached, response_bundle
from adapter.review import ReviewTask, review_tasks
from adapter.review.cases import CaseContext, case_context
from adapter.review.policy import DEFAULT_POLICY, Policy
from adapter.service.state import AuditRow, Recording, Store
from adapter.tables import Tables, mappings
from adapter.types import JSON

DETERMINATION_SYSTEM = mappings().tables.identifier_system("determination")
#: The tag on the payer's copy that says which version of the adapter's ClaimResponse it is.
VERSION_TAG_SYSTEM = mappings().tables.fhir.systems.determination_version


def service_limits(service: ServiceSettings) -> Limits:
    """How much one request may hold, as configured: the same for a request pushed and one the worker reads."""
    return Limits(
        max_entries=service.max_entries, max_text=service.max_text, max_clinical_text=service.max_clinical_text
    )


@dataclass
class Decided:
    response: JSON
    requested: list[Requested]
    #: A physician review Task per pended item.
    reviews: list[ReviewTask]
    #: What the rules answered, item by item (what a pended item lacks: ``documentation``).
    determinations: list[Determination] = field(default_factory=list)
    #: The case as a reviewer reads it (patient, history, items), kept with the answer.
    case: CaseContext | None = None

    @property
    def needs(self) -> dict[int, list[Need]]:
        """What each item's records lack, by item sequence (for asking, and for the review Tasks)."""
        return needs_of(self.requested, self.determinations)


def needs_of(requested: Sequence[Requested], answers: Sequence[Determination]) -> dict[int, list[Need]]:
    """What each item's records lack, by item sequence."""
    return {(r.sequence or n): a.documentation for n, (r, a) in enumerate(zip(requested, answers, strict=True), 1)}


def decide(
    data: JSON | RequestBundle,
    *,
    rules: RuleSet | None = None,
    tables: Tables | None = None,
    checked: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    policy: Policy,
) -> Decided:
    """A ServiceRequest, context Bundle or PAS Bundle (as the edge read it, or JSON) -> its ClaimResponse
    (``MappingError`` when unreadable; ``checked``: the caller already ran the edge check on ``data``), its
    adverse recommendations and review Tasks' due dates as the jurisdiction's ``policy`` says."""
    rules = rules or mappings()[RULES]
    bundle = request_bundle(data, checked=checked, limits=limits)
    requested = requested_services(bundle, limits=limits)
    answers = list(
        zip(requested, determine_all([r.facts for r in requested], rules, adverse=policy.adverse), strict=True)
    )
    first = requested[0].resource
    parties = Parties(patient=first.get("subject"), requestor=first.get("requester"))
    products: dict[int, JSON] = {}
    if (claim := bundle.claim) is not None:
        parties = Parties(
            patient=claim.get("patient") or parties.patient,
            # a stored Claim (adapter.fhir.local) by the id the service serves it under
            claim=f"Claim/{claim['id']}" if claim.get("id") else bundle.entries[0][0],
            insurer=claim.get("insurer"),
            requestor=claim.get("provider") or parties.requestor,
        )
        products = {i["sequence"]: i["productOrService"] for i in claim.get("item", [])
                    if isinstance(i.get("sequence"), int) and i.get("productOrService")}  # fmt: skip
    received = datetime.now(UTC)
    response = claim_response(answers, parties=parties, tables=tables, created=received, products=products)
    response["meta"] = {"versionId": "1", "lastUpdated": received.isoformat(timespec="milliseconds")}
    response["identifier"] = [{"system": DETERMINATION_SYSTEM, "value": response["id"]}]
    determinations = [a for _, a in answers]
    needs = needs_of(requested, determinations)
    if parties.claim:  # PAS: what a pended item lacks is asked for (PASCommunicationRequest)
        ask(response, needs, received=received, deadlines=policy.deadlines, index=bundle.index)
    reviews = review_tasks(response, requested, bundle, received, needs, answers=determinations, policy=policy)
    extend_reviews([r.resource for r in reviews], response, received, deadlines=policy.deadlines)
    return Decided(
        response,
        requested,
        reviews,
        determinations,
        case_context(response, requested, bundle, received, determinations, rules),
    )


#: The resource types a request or its answer may hold: their models are loaded at start.
WARM_TYPES = ("Bundle", "Claim", "ClaimResponse", "Patient", "Coverage", "Organization", "Practitioner",
              "ServiceRequest", "MedicationRequest", "DeviceRequest", "Condition", "Procedure", "DocumentReference",
              "Observation", "MedicationStatement", "Task", "OperationOutcome")  # fmt: skip


def warm_up() -> None:
    """Load the tables, rules, NLP pipeline and FHIR models and compile their patterns now, not in the first
    requests' time (a cold first second would be the service's slowest)."""
    sample = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/warm-up"},
        "code": {"text": "MRI of the lumbar spine"},
        "note": [{"text": "A 40 year old male with low back pain. No numbness. Pain 7/10."}],
    }
    for rtype in WARM_TYPES:  # each model's validators are built at its first use
        with contextlib.suppress(AdapterError):
            check_resource({"resourceType": rtype, "id": "warm-up"})
    with contextlib.suppress(AdapterError):
        check_request({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": sample}]})
    decided = decide({"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "ServiceRequest/w",
                      "resource": {**sample, "id": "w"}}]}, policy=DEFAULT_POLICY)  # fmt: skip
    response_bundle(decided.response, "ClaimResponse/warm-up", None, timestamp=decided.response["created"])
    for_payer(decided.response)
    # What start-up made lives as long as the process: out of the collector's way, so that no request pays
    # for a full collection over the models, tables and NLP pipeline (and forked workers share the pages).
    gc.collect()
    gc.freeze()


def for_payer(response: JSON) -> JSON:
    """The copy of a ClaimResponse written to the payer server: no server id, references made logical, and
    the adapter's version as a tag (a later version replaces an earlier one there, never the reverse)."""
    copy = detached({k: v for k, v in response.items() if k not in ("id", "meta")})
    readdress_asks(copy)
    version = str(response.get("meta", {}).get("versionId", "1"))
    copy["meta"] = {"tag": [{"system": VERSION_TAG_SYSTEM, "code": version}]}
    return copy


def recording(
    decided: Decided,
    *,
    forward: bool,
    key: str | None = None,
    also: Sequence[str] = (),
    audited: AuditRow | None = None,
    inquiry: Sequence[tuple[str, str]] = (),
    resources: Sequence[JSON] = (),
    senders: Sequence[tuple[str, str]] = (),
) -> Recording:
    """What the store keeps of a decision: the ClaimResponse, its payer copy (when ``forward``), its review
    Tasks, the idempotency ``key`` and business keys ``also``, and the audit row."""
    response = decided.response
    patient = (response.get("patient") or {}).get("reference")
    request = (response.get("request") or {}).get("reference") or (
        decided.requested[0].reference if decided.requested else None
    )
    payer_copy = for_payer(response) if forward else None
    return Recording(response, patient, request, payer_copy, key, also, decided.reviews, audited, inquiry, resources,
                     senders, case=decided.case)  # fmt: skip


def record(
    store: Store,
    decided: Decided,
    *,
    forward: bool,
    key: str | None = None,
    also: Sequence[str] = (),
    inquiry: Sequence[tuple[str, str]] = (),
    resources: Sequence[JSON] = (),
    senders: Sequence[tuple[str, str]] = (),
    audited: AuditRow | None = None,
) -> str:
    """Keep a decision (atomically: the ClaimResponse, its payer copy, the keys, the inquiry keys, the request's
    resources, the audit row); the id of the ClaimResponse that answers ``key`` (another one when a racing twin
    was recorded first)."""
    chosen = recording(decided, forward=forward, key=key, also=also, inquiry=inquiry, resources=resources,
                       senders=senders, audited=audited)  # fmt: skip
    return store.record_all([chosen])[0]


def answered_before(store: Store, key: str, also: Sequence[str]) -> JSON | None:
    """The answer already recorded for ``key`` (the same content sent again), else None; other content reusing
    one of the business keys ``also`` is a ``RequestConflictError``."""
    claimed = store.processed_of([key, *also])  # one read: a new request finds none of its keys
    existing = claimed.get(key)
    found = store.claim_response(existing) if existing is not None else None
    if found is None and any(claimed.get(k) is not None for k in also):
        raise RequestConflictError()
    return found


def answer(
    store: Store,
    data: JSON | RequestBundle,
    key: str,
    *,
    forward: bool,
    also: Sequence[str] = (),
    limits: Limits = DEFAULT_LIMITS,
    policy: Policy,
    inquiry: Sequence[tuple[str, str]] = (),
    resources: Sequence[JSON] = (),
    senders: Sequence[tuple[str, str]] = (),
    exchange: tuple[str, str, str] | None = None,
) -> tuple[JSON, bool]:
    """(ClaimResponse, created?) for checked input: an identical request sent again (or racing on another
    replica) gets the answer already recorded, not a second one (its key is claimed as the answer is recorded:
    a retry is determined again and finds it taken, rather than every new request reading first whether it is);
    ``also`` are business keys (a Claim's identifiers) that other content must not reuse
    (``RequestConflictError``); ``inquiry`` the (member id, NPI) pairs a PAS inquiry finds the answer by;
    ``resources`` those of the request the service serves; ``senders`` (sending system, client) pairs (whose
    subscriptions hear of it); ``exchange`` (who, action, outcome) of the HTTP exchange that asks: its audit row,
    naming the ClaimResponse, is kept with a new answer in its transaction (an answer already recorded keeps none:
    the caller audits that exchange)."""
    decided = decide(data, checked=True, limits=limits, policy=policy)
    audited = None
    if exchange is not None:
        who, action, outcome = exchange
        audited = AuditRow(who, action, f"ClaimResponse/{decided.response['id']}", outcome)
    stored = record(store, decided, forward=forward, key=key, also=also, inquiry=inquiry, resources=resources,
                    senders=senders, audited=audited)  # fmt: skip
    if stored == decided.response["id"]:
        return decided.response, True
    first = store.claim_response(stored)
    if first is None:
        raise StateError(f"the recorded answer {stored} cannot be read back")
    return first, False
