"""PAS subscriptions (R4 Subscriptions backport, PASSubscription on the PASSubscriptionTopic): what a client
may subscribe with, the notification Bundles, and the notifier that delivers them through the outbox.

A Subscription names the topic (``criteria``), one ``orgIdentifier`` filter (the sending system: the
``applicationSenderCode`` of the Claims' TransmissionIdentifiers), a ``rest-hook`` endpoint and
``full-resource`` content (spec-62). Every new version of a ClaimResponse of that sending system is an event,
numbered in the subscription's own order and written with the version (``Store._notify``); the notifier sends
each subscription's notifications in order, one at a time, retrying with backoff, so none is lost when the
service is killed and none is sent twice once delivered. Each notification is a ``history`` Bundle: the
SubscriptionStatus (Parameters) first, then the full PAS response Bundle of that version (spec-61).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import httpx
import orjson

from adapter.config import SenderSettings, endpoint_allowed
from adapter.errors import MappingError
from adapter.fhir.navigate import extensions as _ext
from adapter.fhir.pas import PAS
from adapter.fhir.response import response_bundle
from adapter.service.state import CONFIGURED, Store
from adapter.tables import mappings
from adapter.types import JSON

log = logging.getLogger("adapter.service")
_PAS, _BACKPORT = mappings()[PAS], mappings().tables.fhir.canonicals
TOPIC = _PAS.canonicals.subscription_topic
PROFILE = _PAS.profiles.subscription
FILTER = _BACKPORT.backport_filter_criteria
CONTENT = _BACKPORT.backport_payload_content
STATUS_PROFILE = _BACKPORT.backport_status_profile
TRANSMISSION = _PAS.extensions.transmission_identifiers
HEARTBEAT = _BACKPORT.backport_heartbeat_period


class SubscriptionError(MappingError):
    """A Subscription the service cannot take (not a PAS subscription, an endpoint it may not call)."""

    code = "subscription"
    issue_type = "invalid"


def senders(claim: JSON) -> list[str]:
    """The sending systems a Claim names (its TransmissionIdentifiers applicationSenderCode)."""
    return [str(s["valueString"]) for t in _ext(claim, TRANSMISSION) for s in _ext(t, "applicationSenderCode")
            if s.get("valueString")]  # fmt: skip


def read_subscription(sent: JSON, endpoints: list[str]) -> tuple[JSON, str]:
    """A PASSubscription as kept (status ``requested`` until its handshake is delivered) and its orgIdentifier;
    ``SubscriptionError`` naming what is wrong. ``endpoints``: the URL prefixes an endpoint may start with
    (empty: any https URL)."""

    def bad(message: str, where: str) -> SubscriptionError:
        return SubscriptionError(message, location=f"Subscription.{where}")

    if sent.get("resourceType") != "Subscription":
        raise bad("send a Subscription", "resourceType")
    criteria = sent.get("criteria")
    if criteria != TOPIC:
        raise bad(f"criteria is the PAS topic, {TOPIC}", "criteria")
    channel = sent.get("channel") or {}
    if channel.get("type") != "rest-hook":
        raise bad("the channel is rest-hook (PASSubscription)", "channel.type")
    endpoint = channel.get("endpoint")
    if not endpoint_allowed(endpoint, endpoints):
        what = ", ".join(endpoints) if endpoints else "https://"
        raise bad(f"the endpoint must start with {what}", "channel.endpoint")
    payload = channel.get("payload")
    contents = [e.get("valueCode") for e in _ext(channel.get("_payload") or {}, CONTENT)]
    if payload != "application/fhir+json" or contents != ["full-resource"]:
        raise bad("the payload is application/fhir+json with content full-resource (spec-62)", "channel.payload")
    filters = [str(e.get("valueString", "")) for e in _ext(sent.get("_criteria") or {}, FILTER)]
    orgs = [f.split("=", 1)[1] for f in filters if f.startswith("orgIdentifier=") and f.split("=", 1)[1]]
    if len(orgs) != 1 or len(filters) != 1:
        raise bad("one filter, orgIdentifier=<the sending system>", "criteria")
    kept = {k: v for k, v in sent.items() if k not in ("meta", "text")}
    kept.update(status="requested", meta={"profile": [PROFILE]})
    return kept, orgs[0]


def configured_subscription(org: str, endpoint: str) -> JSON:
    """The PASSubscription the service keeps for a configured sending system: its id the same on every replica
    and at every start (made from the sending system), ``requested`` until its handshake is delivered."""
    return {
        "resourceType": "Subscription",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{TOPIC}?orgIdentifier={org}")),
        "meta": {"profile": [PROFILE]},
        "status": "requested",
        "reason": f"configured for the sending system {org} (service.senders)",
        "criteria": TOPIC,
        "_criteria": {"extension": [{"url": FILTER, "valueString": f"orgIdentifier={org}"}]},
        "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
                    "_payload": {"extension": [{"url": CONTENT, "valueCode": "full-resource"}]}},
    }  # fmt: skip


def keep_configured(store: Store, senders: dict[str, SenderSettings]) -> None:
    """Make the state's configured Subscriptions what ``service.senders`` says: one for each sending system with
    an endpoint (made with its handshake owed, or its endpoint changed), none for any other."""
    wanted = {org: configured_subscription(org, s.endpoint) for org, s in senders.items() if s.endpoint is not None}
    kept = {sid: subscription for subscription, sid in store.subscriptions_of(CONFIGURED)}
    for org, subscription in wanted.items():
        current = kept.pop(subscription["id"], None)
        if current is None:
            store.add_subscription({**subscription, "meta": {**subscription["meta"], "versionId": "1"}}, CONFIGURED,
                                   org)  # fmt: skip
        elif current["channel"]["endpoint"] != subscription["channel"]["endpoint"]:
            version = str(int(current["meta"].get("versionId", "1")) + 1)
            store.replace_subscription({**subscription, "status": current["status"],
                                        "meta": {**subscription["meta"], "versionId": version}}, org)  # fmt: skip
    for sid in kept:
        store.delete_subscription(sid)


def status(subscription: JSON, events: int, kind: str, numbers: list[tuple[int, str, str]]) -> JSON:
    """The SubscriptionStatus (a Parameters): ``numbers`` (event number, when, the ClaimResponse)."""
    parameters: list[JSON] = [
        {"name": "subscription", "valueReference": {"reference": f"Subscription/{subscription['id']}"}},
        {"name": "topic", "valueCanonical": TOPIC},
        {"name": "status", "valueCode": subscription["status"]},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(events)},
    ]
    parameters += [{"name": "notification-event", "part": [
        {"name": "event-number", "valueString": str(n)}, {"name": "timestamp", "valueInstant": at},
        {"name": "focus", "valueReference": {"reference": focus}}]} for n, at, focus in numbers]  # fmt: skip
    return {"resourceType": "Parameters", "id": str(uuid.uuid4()), "meta": {"profile": [STATUS_PROFILE]},
            "parameter": parameters}  # fmt: skip


def notification(store: Store, base: str, subscription: JSON, events: int, kind: str,
                 found: list[tuple[int, str, int, str]]) -> JSON:  # fmt: skip
    """A notification Bundle (``history``): the SubscriptionStatus first, then for each event the full PAS
    response Bundle of that ClaimResponse version (what the event is about)."""
    entries, numbers = [], []
    for number, rid, version, at in found:
        versions = [v for v in store.claim_response_versions(rid) if v["meta"]["versionId"] == str(version)]
        if not versions:
            continue
        pool = {"entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r}
                          for r in store.resources_of(rid)]}  # fmt: skip
        answer = response_bundle(versions[0], f"{base}/ClaimResponse/{rid}", pool,
                                 timestamp=versions[0]["meta"]["lastUpdated"])  # fmt: skip
        numbers.append((number, at, f"ClaimResponse/{rid}/_history/{version}"))
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": answer})
    head = status(subscription, events, kind, numbers)
    bundle: JSON = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "history",
                    "entry": [{"fullUrl": f"urn:uuid:{head['id']}", "resource": head}, *entries]}  # fmt: skip
    if numbers:
        bundle["timestamp"] = numbers[-1][1]
    return bundle


class Notifier:
    """Delivers the notifications owed to subscriptions: a thread, each subscription in order, with backoff."""

    def __init__(self, store: Store, base: str, *, client: httpx.Client | None = None, interval: float = 1.0,
                 backoff: float = 2.0, backoff_max: float = 300.0) -> None:  # fmt: skip
        self.store, self.base = store, base.rstrip("/")
        self.client = client or httpx.Client(timeout=10.0, follow_redirects=False)
        self.interval, self.backoff, self.backoff_max = interval, backoff, backoff_max
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: When each subscription was last sent something (heartbeats keep a quiet channel alive).
        self._last: dict[str, float] = {}

    def _post(self, endpoint: str, bundle: JSON) -> str:
        """POST a notification; '' when delivered, else why not."""
        try:
            answer = self.client.post(endpoint, content=orjson.dumps(bundle),
                                      headers={"Content-Type": "application/fhir+json"})  # fmt: skip
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return "" if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"

    def heartbeats(self, now: float | None = None) -> int:
        """A heartbeat to each active subscription with a heartbeatPeriod that has been sent nothing for that
        long (not numbered, not kept: a missed heartbeat is not owed)."""
        moment, sent = time.time() if now is None else now, 0
        for subscription, events in self.store.active_subscriptions():
            periods = [e.get("valueUnsignedInt") for e in _ext(subscription.get("channel") or {}, HEARTBEAT)]
            period = periods[0] if periods and isinstance(periods[0], int) and periods[0] > 0 else None
            last = self._last.setdefault(subscription["id"], moment)
            if period is None or moment - last < period:
                continue
            beat = {
                "resourceType": "Bundle",
                "id": str(uuid.uuid4()),
                "type": "history",
                "entry": [
                    {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": status(subscription, events, "heartbeat", [])}
                ],
            }
            if not self._post(subscription["channel"]["endpoint"], beat):
                sent += 1
            self._last[subscription["id"]] = moment
        return sent

    def send_due(self) -> int:
        """Send what is due now; the number delivered."""
        sent = 0
        for row in self.store.due_notifications():
            found = self.store.subscription(row["subscription_id"])
            if found is None:
                continue
            subscription, _owner, events = found
            kind = str(row["kind"])
            events_of = ([] if kind == "handshake" else
                         [(int(row["event_number"]), str(row["claim_response_id"]), int(row["version"]),
                           str(row["created"]))])  # fmt: skip
            bundle = notification(self.store, self.base, subscription, events if kind == "handshake" else
                                  int(row["event_number"]), kind, events_of)  # fmt: skip
            error = self._post(subscription["channel"]["endpoint"], bundle)
            if not error:
                self.store.notification_sent(int(row["seq"]))
                self._last[subscription["id"]] = time.time()
                sent += 1
                if kind == "handshake":
                    self.store.set_subscription_status(subscription["id"], "active")
            else:
                delay = min(self.backoff_max, self.backoff * 2 ** int(row["attempts"]))
                self.store.notification_failed(int(row["seq"]), error, delay)
                log.warning("notification not delivered", extra={"subscription": subscription["id"], "error": error})
        return sent

    def start(self) -> None:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    self.send_due()
                    self.heartbeats()
                except Exception:  # noqa: BLE001 - the state or an endpoint failing must not end the thread
                    log.exception("notifier pass failed")
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=run, name="notifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
