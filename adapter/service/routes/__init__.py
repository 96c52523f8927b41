"""The service's routes, one module per area; what they share (the app's context, admission and the
body as dependencies) is here."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adapter.config import Settings
from adapter.fhir.inbound import Limits, check_inbound
from adapter.review.policy import Policy
from adapter.service.admission import Admission, Principal, parse_json, read_body
from adapter.service.http import ServiceError, fhir_response
from adapter.service.metrics import Metrics
from adapter.service.search import MAX_COUNT, MAX_OFFSET, number
from adapter.service.state import Store
from adapter.tables import mappings
from adapter.types import JSON

#: Search parameters whose every value is read (``_lastUpdated`` bounds all hold, ``status`` values are a list).
_REPEATABLE = frozenset({"_lastUpdated", "status"})
#: The result parameters every search takes (FHIR search.html#return; ``_totalMethod`` is what fhirpy's
#: ``.count()`` sends beside ``_count=0``: a total is always given, however asked for).
_RESULT = frozenset({"_count", "_offset", "_summary", "_total", "_totalMethod", "_elements", "_format"})
_SUMMARY = frozenset({"count", "false"})
_TOTAL = frozenset({"none", "estimate", "accurate"})
_FORMATS = frozenset({"json", "application/json", "application/fhir+json"})
_ELEMENT = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
#: Said in the CapabilityStatement: what a search does with a parameter it does not know.
UNKNOWN_PARAMETERS = (
    "A search parameter the service does not know is refused (400) unless the request says Prefer: "
    "handling=lenient, which ignores it and names it in an OperationOutcome in the Bundle (handling=strict: "
    "refused, the default)."
)
SUBSETTED = {"system": mappings().tables.fhir.code_systems.observation_value, "code": "SUBSETTED"}


@dataclass(frozen=True)
class Search:
    """A search's paging and result parameters, read once."""

    offset: int
    count: int
    #: ``_summary=count``: the total only.
    summary: bool = False
    #: ``_total=none``: no total.
    total: bool = True
    #: ``_elements``: the top-level elements each match keeps.
    elements: tuple[str, ...] = ()
    #: Unknown parameters ignored under ``Prefer: handling=lenient``.
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class Capability:
    """What a module of routes offers, as the CapabilityStatement says it (every module has one, beside its
    routes): its resources' entries (``rest.resource``) and its system operations (``rest.operation``), made
    when the statement is (they name canonicals from the tables)."""

    resources: Callable[[], list[JSON]] = list
    operations: Callable[[], list[JSON]] = list


@dataclass
class ServiceContext:
    """Everything a route needs, made once per app."""

    settings: Settings
    store: Store
    admission: Admission
    metrics: Metrics
    limits: Limits
    #: The jurisdiction's review policy (``adapter.review.policy``), resolved from the settings once.
    policy: Policy
    #: What each module of routes offers, in the app's order (the CapabilityStatement's content).
    offered: Sequence[Capability] = ()

    @property
    def base(self) -> str:
        """The configured public FHIR base URL (never the client's Host header)."""
        return self.settings.service.base_url.rstrip("/")

    def inbound(self, raw: bytes) -> JSON:
        """Parse and check a request body once, at the edge (blocking work: call from a ``def`` route)."""
        return check_inbound(parse_json(raw), limits=self.limits)


def served(resource: JSON | None, rtype: str) -> Response:
    """A resource the service serves by id (its own conformance resources), or 404 naming its type."""
    if resource is None:
        raise ServiceError(404, f"no such {rtype}", code="not-found", issue_type="not-found")
    return fhir_response(resource)


def catalogue_search(request: Request, rtype: str, resources: list[JSON], parameters: Collection[str],
                     matches: Callable[[JSON, str, str], bool]) -> Response:  # fmt: skip
    """A search of resources the service holds itself (its conformance resources): every parameter given must
    match (``matches(resource, name, value)``), paged and shaped as any search."""
    search = search_params(request, set(parameters))
    wanted = [(n, v) for n, v in request.query_params.multi_items() if n in parameters]
    found = [r for r in resources if all(matches(r, n, v) for n, v in wanted)]
    page = found[search.offset : search.offset + search.count]
    return fhir_response(searchset(context(request), request, rtype, (len(found), page), search))


def context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def audited(request: Request, target: str) -> ServiceContext:
    """The service's context for a request about one resource, whose audit row names it as ``target`` (as long
    as the audit log keeps, 160 characters)."""
    request.state.target = target[:160]
    return context(request)


#: Only names the bearer token in the OpenAPI document (so FastAPI marks exactly the routes that need one);
#: admission reads and checks the header itself.
_BEARER = HTTPBearer(auto_error=False, description="a static token from service.tokens or a SMART access token")


def requires(
    resource: str, letter: str, contexts: tuple[str, ...] = ("system", "user")
) -> Callable[[Request, HTTPAuthorizationCredentials | None], Principal]:
    """A dependency admitting a request that may do ``letter`` (c r u d s) on ``resource`` with a scope of
    one of ``contexts``."""

    def admitted(request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> Principal:
        return context(request).admission.admit(request, resource, letter, contexts)

    return admitted


def body(*, update: bool = False) -> Callable[[Request], Awaitable[bytes]]:
    """A dependency reading the raw FHIR JSON body, bounded (parsing happens in the route's thread);
    ``update``: a PUT, which may carry ``If-Match``."""

    async def raw(request: Request) -> bytes:
        return await read_body(request, context(request).settings.service.max_body, update=update)

    return raw


def _subset(resource: JSON, elements: tuple[str, ...]) -> JSON:
    """``_elements``: the resource with only the named top-level elements (and its id and meta), tagged
    SUBSETTED."""
    kept = {k: v for k, v in resource.items() if k in elements or k in ("resourceType", "id")}
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    return {**kept, "meta": meta}


def searchset(ctx: ServiceContext, request: Request, rtype: str, page: tuple[int, list[JSON]], search: Search) -> JSON:
    """A searchset Bundle of one page, with ``self`` and ``next`` links on the configured base URL; what the
    result parameters ask (``_summary=count``, ``_total=none``, ``_elements``), and an OperationOutcome entry
    naming the parameters a lenient search ignored."""
    total, found = page
    offset, count = search.offset, search.count
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "_offset"]
    base = f"{ctx.base}/{rtype}"
    links = [{"relation": "self", "url": f"{base}?{urlencode([*kept, ('_offset', offset)])}"}]
    if count and offset + count < total:
        links.append({"relation": "next", "url": f"{base}?{urlencode([*kept, ('_offset', offset + count)])}"})
    resources = [_subset(r, search.elements) for r in found] if search.elements else found
    entries = [{"fullUrl": f"{base}/{r['id']}", "resource": r, "search": {"mode": "match"}} for r in resources]
    if search.ignored:
        outcome = {"resourceType": "OperationOutcome", "issue": [{
            "severity": "warning", "code": "not-supported",
            "diagnostics": f"unknown search parameters ignored (Prefer: handling=lenient): {', '.join(search.ignored)}",
        }]}  # fmt: skip
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    bundle: JSON = {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}
    if search.total:
        bundle["total"] = total
    return bundle


def _lenient(request: Request) -> bool:
    """``Prefer: handling=lenient`` (any other handling, or none, is strict)."""
    prefer = ",".join(request.headers.getlist("prefer")).replace(";", ",")
    return "handling=lenient" in {p.strip().lower() for p in prefer.split(",")}


def _one_of(params: Any, name: str, allowed: frozenset[str]) -> str | None:
    value = params.get(name)
    if value is not None and value not in allowed:
        raise ServiceError(400, f"{name} is one of {', '.join(sorted(allowed))}", code="bad-search",
                           issue_type="value")  # fmt: skip
    return str(value) if value is not None else None


def search_params(request: Request, allowed: set[str]) -> Search:
    """The paging and result parameters of a search whose parameters are all in ``allowed``: the others are
    refused (400 naming them), or ignored and named under ``Prefer: handling=lenient``."""
    params = request.query_params
    unknown = sorted(n[:40] for n in set(params) - allowed - _RESULT)
    if unknown and not _lenient(request):
        raise ServiceError(
            400, f"unsupported search parameters: {', '.join(unknown[:5])} (Prefer: handling=lenient ignores them)",
            code="bad-search", issue_type="not-supported",
        )  # fmt: skip
    # A search reads one value of each of these; a second would be ignored, and a scope binding the first
    # would not bind the search (``?patient=X&patient=Y``): refused rather than half read.
    repeated = sorted({name[:40] for name in params if name not in _REPEATABLE and len(params.getlist(name)) > 1})
    if repeated:
        raise ServiceError(
            400, f"a search parameter given more than once: {', '.join(repeated[:5])}", code="bad-search",
            issue_type="value",
        )  # fmt: skip
    summary = _one_of(params, "_summary", _SUMMARY) == "count"
    total = _one_of(params, "_total", _TOTAL) != "none"
    _one_of(params, "_format", _FORMATS)
    elements = tuple(e.strip() for value in params.getlist("_elements") for e in value.split(",") if e.strip())
    if any(not _ELEMENT.fullmatch(e) for e in elements):
        raise ServiceError(400, "_elements names top-level elements (a comma-separated list)", code="bad-search",
                           issue_type="value")  # fmt: skip
    count = number(params.get("_count"), "_count", default=20, low=0, high=MAX_COUNT, clamp=True)
    offset = number(params.get("_offset"), "_offset", default=0, low=0, high=MAX_OFFSET)
    return Search(offset, 0 if summary else count, summary, total, elements, tuple(unknown[:20]))
