"""PAS subscriptions under ``/fhir/Subscription``: create, read, update and delete one's own (a client may
subscribe for the sending systems it submitted requests for, or those ``service.senders`` configures for it),
search them (with the configured ones of its sending systems, which only the configuration changes),
``$status`` and ``$events`` (the notifications since an event number, for one that missed some). Delivery is
the notifier's (``adapter.service.subscriptions``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from adapter.service.admission import Principal, client_name
from adapter.service.http import FHIR_ID, ServiceError, fhir_response
from adapter.service.routes import (
    Capability,
    ServiceContext,
    audited,
    body,
    context,
    requires,
    search_params,
    searchset,
)
from adapter.service.search import number
from adapter.service.state import CONFIGURED
from adapter.service.subscriptions import TOPIC, configured_subscription, notification, read_subscription, status
from adapter.tables import mappings
from adapter.types import JSON

router = APIRouter(prefix="/fhir")


def _offered() -> list[JSON]:
    fhir = mappings().tables.fhir
    return [
        {
            "extension": [{"url": fhir.canonicals.backport_topic_canonical, "valueCanonical": TOPIC}],
            "type": "Subscription",
            "documentation": "PAS subscriptions (R4 backport): rest-hook, full-resource, one "
            "orgIdentifier filter (the sending system of one's own requests, or one configured for "
            "the client); $status and $events. A search finds one's own and the Subscriptions the "
            "service keeps for its configured sending systems (service.senders).",
            "interaction": [{"code": c} for c in ("create", "read", "update", "delete", "search-type")],
            "searchParam": [{"name": "status", "type": "token"}],
            "operation": [
                {"name": "status", "definition": fhir.canonicals.backport_status_operation},
                {"name": "events", "definition": fhir.canonicals.backport_events_operation},
            ],
        }
    ]  # fmt: skip


CAPABILITY = Capability(resources=_offered)
#: Subscription.status (R4).
_STATUSES = frozenset({"requested", "active", "error", "off"})


def _speaks_for(ctx: ServiceContext, principal: Principal) -> list[str]:
    """The sending systems ``service.senders`` configures this client for."""
    senders = ctx.settings.service.senders
    return sorted(org for org, sender in senders.items() if principal.name in {client_name(c) for c in sender.clients})


def _own(ctx: ServiceContext, sid: str, principal: Principal, *, change: bool = False) -> tuple[JSON, int]:
    """The caller's own Subscription (or, to read, a configured one of its sending systems) and its event count;
    404 for another's (no one learns it exists), 409 to change a configured one."""
    found = ctx.store.subscription(sid) if FHIR_ID.fullmatch(sid) else None
    configured = (
        found is not None
        and found[1] == CONFIGURED
        and any(configured_subscription(org, "")["id"] == sid for org in _speaks_for(ctx, principal))
    )
    if found is None or (found[1] != principal.name and not configured):
        raise ServiceError(404, "no such Subscription", code="not-found", issue_type="not-found")
    if configured and change:
        raise ServiceError(409, "this Subscription is made from service.senders: it changes there",
                           code="configured", issue_type="business-rule")  # fmt: skip
    return found[0], found[2]


def _admitted(ctx: ServiceContext, org: str, principal: Principal) -> None:
    if not ctx.store.may_subscribe(org, principal.name) and org not in _speaks_for(ctx, principal):
        raise ServiceError(403, "a client subscribes for the sending systems it submitted requests for or is "
                           "configured for (service.senders)", code="forbidden", issue_type="forbidden")  # fmt: skip


def _stamped(resource: JSON, version: int) -> JSON:
    moment = datetime.now(UTC).isoformat(timespec="milliseconds")
    return {**resource, "meta": {**resource.get("meta", {}), "versionId": str(version), "lastUpdated": moment}}


@router.post("/Subscription")
def create_subscription(
    request: Request,
    principal: Annotated[Principal, Depends(requires("Subscription", "c"))],
    raw: Annotated[bytes, Depends(body())],
) -> Response:
    """A PASSubscription: kept as ``requested``, active once its handshake reached the endpoint."""
    ctx = context(request)
    subscription, org = read_subscription(ctx.inbound(raw), ctx.settings.service.subscription_endpoints)
    _admitted(ctx, org, principal)
    subscription = _stamped({**subscription, "id": str(uuid.uuid4())}, 1)
    ctx.store.add_subscription(subscription, principal.name, org)
    request.state.target = f"Subscription/{subscription['id']}"
    return fhir_response(subscription, 201, {"Location": f"{ctx.base}/Subscription/{subscription['id']}"})


@router.get("/Subscription")
def search_subscriptions(
    request: Request, principal: Annotated[Principal, Depends(requires("Subscription", "s"))]
) -> Response:
    """The caller's Subscriptions and the configured ones of its sending systems (``status``: any of a
    comma-separated list), paged."""
    ctx = context(request)
    search = search_params(request, {"status"})
    status = [s for value in request.query_params.getlist("status") for s in value.split(",") if s]
    if any(s not in _STATUSES for s in status):
        raise ServiceError(400, f"status is one of {', '.join(sorted(_STATUSES))}", code="bad-search",
                           issue_type="value")  # fmt: skip
    page = ctx.store.search_subscriptions(owner=principal.name, configured=_speaks_for(ctx, principal),
                                          status=status, offset=search.offset, count=search.count)  # fmt: skip
    return fhir_response(searchset(ctx, request, "Subscription", page, search))


@router.get("/Subscription/{sid}")
def read_subscription_route(
    sid: str, request: Request, principal: Annotated[Principal, Depends(requires("Subscription", "r"))]
) -> Response:
    return fhir_response(_own(audited(request, f"Subscription/{sid}"), sid, principal)[0])


@router.put("/Subscription/{sid}")
def update_subscription(
    sid: str,
    request: Request,
    principal: Annotated[Principal, Depends(requires("Subscription", "u"))],
    raw: Annotated[bytes, Depends(body(update=True))],
) -> Response:
    ctx = audited(request, f"Subscription/{sid}")
    current, _events = _own(ctx, sid, principal, change=True)
    subscription, org = read_subscription(ctx.inbound(raw), ctx.settings.service.subscription_endpoints)
    _admitted(ctx, org, principal)
    subscription = _stamped({**subscription, "id": sid, "status": current["status"]},
                            int(current["meta"]["versionId"]) + 1)  # fmt: skip
    ctx.store.replace_subscription(subscription, org)
    return fhir_response(subscription)


@router.delete("/Subscription/{sid}")
def delete_subscription(
    sid: str, request: Request, principal: Annotated[Principal, Depends(requires("Subscription", "d"))]
) -> Response:
    ctx = audited(request, f"Subscription/{sid}")
    _own(ctx, sid, principal, change=True)
    ctx.store.delete_subscription(sid)
    return Response(status_code=204)


@router.get("/Subscription/{sid}/$status")
def subscription_status(
    sid: str, request: Request, principal: Annotated[Principal, Depends(requires("Subscription", "r"))]
) -> Response:
    """The SubscriptionStatus (type query-status) in a searchset Bundle."""
    subscription, events = _own(context(request), sid, principal)
    found = status(subscription, events, "query-status", [])
    return fhir_response({"resourceType": "Bundle", "type": "searchset", "total": 1,
                          "entry": [{"resource": found, "search": {"mode": "match"}}]})  # fmt: skip


@router.get("/Subscription/{sid}/$events")
def subscription_events(
    sid: str, request: Request, principal: Annotated[Principal, Depends(requires("Subscription", "r"))]
) -> Response:
    """The events from ``eventsSinceNumber`` to ``eventsUntilNumber`` (query-event): what a subscriber that
    missed notifications fetches again, each with its full PAS response Bundle."""
    ctx = context(request)
    subscription, events = _own(ctx, sid, principal)
    params = request.query_params
    since = number(params.get("eventsSinceNumber"), "eventsSinceNumber", default=1, low=1, high=10**9)
    until = number(params.get("eventsUntilNumber"), "eventsUntilNumber", default=events, low=0, high=10**9)
    found = ctx.store.subscription_events(sid, since, min(until, since + 99))
    return fhir_response(notification(ctx.store, ctx.base, subscription, events, "query-event", found))
