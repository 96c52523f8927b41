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
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

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
    for router in (metadata.router, requests.router, claim_responses.router, tasks.router, cases.router,
                   signin.router, subscriptions.router, resources.router, attachments.router,
                   questionnaires.router):  # fmt: skip
        app.include_router(router)

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Audit, count and log every exchange; no error leaves as anything but an OperationOutcome."""
        started = time.perf_counter()
        with tracing.tracer.start_as_current_span(f"{request.method} request"):
            try:
                response = await call_next(request)
            except Exception as exc:  # noqa: BLE001 - rendered as an OperationOutcome, never a stack trace
                response = error_response(exc)
        known = request.url.path if request.url.path in _UNAUDITED else "unknown"  # /docs: no route in scope
        route = getattr(request.scope.get("route"), "path", None) or known
        who = getattr(request.state, "principal", "anonymous")
        audited = getattr(request.state, "audited", False)  # by the route, in the transaction of the answer it made
        if request.url.path not in _UNAUDITED and not getattr(request.state, "quiet", False) and not audited:
            action = f"{request.method} {route}"
            try:
                await anyio.to_thread.run_sync(
                    store.audit, who, action, getattr(request.state, "target", None), str(response.status_code)
                )
            except StateError as exc:  # no audit, no answer: the exchange is refused as unavailable
                response = error_response(exc)
        seconds = time.perf_counter() - started
        ctx.metrics.observe(route, request.method, response.status_code, seconds)
        log.info(
            "request",
            extra={"method": request.method, "route": route, "status": response.status_code,
                   "ms": round(seconds * 1000, 1), "who": who},
        )  # fmt: skip
        return response

    return app
