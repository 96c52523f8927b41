"""The service's routes, one module per area; what they share (the app's context, admission and the
body as dependencies) is here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from adapter.config import Settings
from adapter.fhir.inbound import Limits, check_inbound
from adapter.service.admission import Admission, Principal, parse_json, read_body
from adapter.service.metrics import Metrics
from adapter.service.state import Store

JSON = dict[str, Any]


@dataclass
class ServiceContext:
    """Everything a route needs, made once per app."""

    settings: Settings
    store: Store
    admission: Admission
    metrics: Metrics
    limits: Limits

    @property
    def base(self) -> str:
        """The configured public FHIR base URL (never the client's Host header)."""
        return self.settings.service.base_url.rstrip("/")

    def inbound(self, raw: bytes) -> JSON:
        """Parse and check a request body once, at the edge (blocking work: call from a ``def`` route)."""
        return check_inbound(parse_json(raw), limits=self.limits)


def context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def requires(resource: str, letter: str) -> Callable[[Request], Principal]:
    """A dependency admitting a request that may do ``letter`` (c r u d s) on ``resource``."""

    def admitted(request: Request) -> Principal:
        return context(request).admission.admit(request, resource, letter)

    return admitted


def body() -> Callable[[Request], Awaitable[bytes]]:
    """A dependency reading the raw FHIR JSON body, bounded (parsing happens in the route's thread)."""

    async def raw(request: Request) -> bytes:
        return await read_body(request, context(request).settings.service.max_body)

    return raw
