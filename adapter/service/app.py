"""The adapter's HTTP service: a FHIR-style facade under ``/fhir``.

EHRs push ServiceRequests (``POST /fhir/ServiceRequest``) or Da Vinci PAS Bundles
(``POST /fhir/Claim/$submit``) and get the ClaimResponse at once; payers pull ClaimResponses
(``GET /fhir/ClaimResponse[/{id}]``). Every answer is recorded before it is sent and queued for the
payer server.

This module only assembles the app: the routers (``routes/``), admission as dependencies
(``admission.py``), one exception handler per error class, and the middleware that audits, counts and
logs each exchange. Errors are OperationOutcomes with the right status, whatever raised them:

    ServiceError          its own status (400, 401, 403, 404, 412, 413, 415, 429)
    RequestConflictError  409
    ReviewClosedError     409 (a review Task already decided)
    InputLimitError       413
    ConformanceError      400 (one issue per broken PAS rule)
    MappingError, other AdapterError   422
    StateError            503 with Retry-After (the state database failed; nothing was half-stored)
    unknown route/method  404/405; anything else 500 (never a stack trace)
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapter.config import Settings
from adapter.errors import (
    AdapterError,
    ConformanceError,
    InputLimitError,
    RequestConflictError,
    ReviewClosedError,
    StateError,
)
from adapter.review.policy import Policy, review_policy
from adapter.service import openapi, tracing
from adapter.service.admission import Admission
from adapter.service.attachments import HeldAnswerer
from adapter.service.forwarder import Forwarder
from adapter.service.http import ServiceError, outcome_response
from adapter.service.metrics import Metrics
from adapter.service.pipeline import service_limits, warm_up
from adapter.service.routes import (
    ServiceContext,
    attachments,
    cases,
    claim_responses,
    metadata,
    questionnaires,
    requests,
    resources,
    signin,
    subscriptions,
    tasks,
)
from adapter.service.state import Store
from adapter.service.subscriptions import Notifier, keep_configured
from adapter.version import __version__

log = logging.getLogger("adapter.service")
#: Seconds a client is asked to wait when the state database is failing.
STATE_RETRY_AFTER = "5"
_UNAUDITED = ("/fhir/metadata", "/metrics", "/docs", "/openapi.json")
#: The modules of routes, each with its ``router`` and its ``CAPABILITY`` (what the CapabilityStatement says of
#: it), in the order their routes are matched: a new endpoint is its module and its place here.
AREAS = (metadata, requests, claim_responses, tasks, cases, signin, subscriptions, resources, attachments,
         questionnaires)  # fmt: skip


def error_response(exc: Exception) -> Response:
    """The OperationOutcome (and status) for anything a route can raise."""
    if isinstance(exc, ServiceError):
        return outcome_response(exc.status, exc, exc.headers)
    if isinstance(exc, RequestConflictError | ReviewClosedError):
        return outcome_response(409, exc)
    if isinstance(exc, InputLimitError):
        return outcome_response(413, exc)
    if isinstance(exc, ConformanceError):
        return outcome_response(400, exc)
    if isinstance(exc, StateError):
        log.error("state database failed", extra={"code": exc.code})
        return outcome_response(503, exc, {"Retry-After": STATE_RETRY_AFTER})
    if isinstance(exc, AdapterError):
        return outcome_response(422, exc)
    if isinstance(exc, HTTPException):
        issue = "not-found" if exc.status_code == 404 else "not-supported"
        detail = "no such endpoint" if exc.status_code == 404 else f"{exc.detail}"
        return outcome_response(exc.status_code, ServiceError(exc.status_code, detail, code="route", issue_type=issue))
    if isinstance(exc, RequestValidationError):
        return outcome_response(400, ServiceError(400, "malformed request", code="malformed", issue_type="structure"))
    log.exception("unexpected error")
    return outcome_response(500, AdapterError(f"internal error ({type(exc).__name__})"))


class Observe:
    """The middleware that audits, counts and logs every exchange, and renders whatever a route raised as an
    OperationOutcome (never a stack trace). A plain ASGI middleware: the response passes through as the app sends
    it. An exchange the route did not audit itself is audited before its answer leaves; when that audit cannot be
    written, the answer is a 503 instead (no audit, no answer)."""

    def __init__(self, app: ASGIApp, ctx: ServiceContext) -> None:
        self.app, self.ctx = app, ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})  # the dict behind the routes' ``request.state``
        answering = replaced = False  # replaced: the app's answer refused for want of an audit, its body dropped

        async def audited(message: Message) -> None:
            nonlocal answering, replaced
            if message["type"] == "http.response.start":
                answering, route = True, _route(scope)
                refused = await self._audit(scope, state, route, message["status"])
                self._observed(scope, state, route, refused.status_code if refused else message["status"], started)
                if refused is not None:
                    replaced = True
                    await refused(scope, receive, send)
                    return
            elif replaced:
                return
            await send(message)

        with tracing.tracer.start_as_current_span(f"{scope['method']} request"):
            try:
                await self.app(scope, receive, audited)
            except Exception as exc:
                if answering:  # too late for another answer: the server closes the connection
                    raise
                await error_response(exc)(scope, receive, audited)  # an OperationOutcome, never a stack trace

    async def _audit(self, scope: Scope, state: dict[str, Any], route: str, status: int) -> Response | None:
        """Audit the exchange unless the route did (in the transaction of the answer it made) or it is not
        audited; the 503 to send instead when the audit cannot be written."""
        if scope["path"] in _UNAUDITED or state.get("quiet") or state.get("audited"):
            return None
        action = f"{scope['method']} {route}"
        try:
            await anyio.to_thread.run_sync(
                self.ctx.store.audit, state.get("principal", "anonymous"), action, state.get("target"), str(status)
            )
        except StateError as exc:
            return error_response(exc)
        return None

    def _observed(self, scope: Scope, state: dict[str, Any], route: str, status: int, started: float) -> None:
        seconds = time.perf_counter() - started
        self.ctx.metrics.observe(route, scope["method"], status, seconds)
        log.info(
            "request",
            extra={"method": scope["method"], "route": route, "status": status, "ms": round(seconds * 1000, 1),
                   "who": state.get("principal", "anonymous")},
        )  # fmt: skip


def _route(scope: Scope) -> str:
    """The route's path template (``/fhir/ClaimResponse/{rid}``), never the path itself (no ids in metrics)."""
    path = scope["path"]
    return getattr(scope.get("route"), "path", None) or (path if path in _UNAUDITED else "unknown")


def create_app(
    settings: Settings, store: Store, forwarder: Forwarder | None = None, policy: Policy | None = None
) -> FastAPI:
    """The ASGI app; starts the forwarder with it when one is given. ``policy``: the review policy resolved from
    ``settings`` at the entry point (resolved here when not given)."""
    service = settings.service
    tracing.configure(service.otlp_endpoint)
    ctx = ServiceContext(
        settings=settings,
        store=store,
        admission=Admission(service),
        metrics=Metrics(store),
        limits=service_limits(service),
        policy=policy or review_policy(settings),
        offered=[area.CAPABILITY for area in AREAS],
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = service.workers
        await anyio.to_thread.run_sync(warm_up)
        if forwarder is not None:
            forwarder.start()
        await anyio.to_thread.run_sync(keep_configured, store, service.senders)
        notifier = None
        if service.notify:  # looks for due notifications at least as often as the first retry is due
            notifier = Notifier(store, ctx.base, interval=min(1.0, service.notify_backoff),
                                backoff=service.notify_backoff, backoff_max=service.notify_backoff_max)  # fmt: skip
        if notifier is not None:
            notifier.start()
        held = HeldAnswerer(store, forward=settings.forwarding, policy=ctx.policy, interval=service.poll_seconds)
        held.start()
        with store.checkpointing():  # SQLite's WAL copied beside the requests, not inside one of them
            yield
        await anyio.to_thread.run_sync(held.stop)
        if notifier is not None:
            await anyio.to_thread.run_sync(notifier.stop)
        if forwarder is not None:
            await anyio.to_thread.run_sync(forwarder.stop)

    app = FastAPI(title="IMR adapter", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.openapi = lambda: openapi.document(app)  # type: ignore[method-assign]
    app.state.ctx = ctx
    for error in (AdapterError, HTTPException, RequestValidationError):
        app.add_exception_handler(error, lambda _, exc: error_response(exc))
    for area in AREAS:
        app.include_router(area.router)

    app.add_middleware(Observe, ctx=ctx)
    return app
