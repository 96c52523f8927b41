"""The service's routes, one module per area; what they share (the app's context, admission and the
body as dependencies) is here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from adapter.config import Settings
from adapter.fhir.inbound import Limits, check_inbound
from adapter.service.admission import Admission, Principal, parse_json, read_body
from adapter.service.http import ServiceError
from adapter.service.metrics import Metrics
from adapter.service.search import MAX_COUNT, MAX_OFFSET, number
from adapter.service.state import Store

JSON = dict[str, Any]
#: Search parameters whose every value is read (``_lastUpdated`` bounds all hold, ``status`` values are a list).
_REPEATABLE = frozenset({"_lastUpdated", "status"})


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


def requires(
    resource: str, letter: str, contexts: tuple[str, ...] = ("system", "user")
) -> Callable[[Request], Principal]:
    """A dependency admitting a request that may do ``letter`` (c r u d s) on ``resource`` with a scope of
    one of ``contexts``."""

    def admitted(request: Request) -> Principal:
        return context(request).admission.admit(request, resource, letter, contexts)

    return admitted


def body(*, update: bool = False) -> Callable[[Request], Awaitable[bytes]]:
    """A dependency reading the raw FHIR JSON body, bounded (parsing happens in the route's thread);
    ``update``: a PUT, which may carry ``If-Match``."""

    async def raw(request: Request) -> bytes:
        return await read_body(request, context(request).settings.service.max_body, update=update)

    return raw


def searchset(ctx: ServiceContext, request: Request, rtype: str, page: tuple[int, list[JSON]], offset: int,
              count: int) -> JSON:  # fmt: skip
    """A searchset Bundle of one page, with ``self`` and ``next`` links on the configured base URL."""
    total, found = page
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "_offset"]
    base = f"{ctx.base}/{rtype}"
    links = [{"relation": "self", "url": f"{base}?{urlencode([*kept, ('_offset', offset)])}"}]
    if offset + count < total:
        links.append({"relation": "next", "url": f"{base}?{urlencode([*kept, ('_offset', offset + count)])}"})
    entries = [{"fullUrl": f"{base}/{r['id']}", "resource": r, "search": {"mode": "match"}} for r in found]
    return {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links, "entry": entries}


def search_params(request: Request, allowed: set[str]) -> tuple[int, int]:
    """(offset, count) of a search whose parameters are all in ``allowed`` (400 naming the others)."""
    params = request.query_params
    unknown = set(params) - allowed - {"_count", "_offset"}
    if unknown:
        names = ", ".join(sorted(n[:40] for n in unknown)[:5])
        raise ServiceError(
            400, f"unsupported search parameters: {names}", code="bad-search", issue_type="not-supported"
        )
    # A search reads one value of each of these; a second would be ignored, and a scope binding the first
    # would not bind the search (``?patient=X&patient=Y``): refused rather than half read.
    repeated = sorted({name[:40] for name in params if name not in _REPEATABLE and len(params.getlist(name)) > 1})
    if repeated:
        raise ServiceError(
            400, f"a search parameter given more than once: {', '.join(repeated[:5])}", code="bad-search",
            issue_type="value",
        )  # fmt: skip
    count = number(params.get("_count"), "_count", default=20, low=1, high=MAX_COUNT, clamp=True)
    offset = number(params.get("_offset"), "_offset", default=0, low=0, high=MAX_OFFSET)
    return offset, count
