"""What the sync and async FHIR clients share: building requests, reading responses, mapping errors,
deciding retries and checking next links. Everything here is free of I/O; the clients only send.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from adapter.config import RetrySettings
from adapter.errors import (
    AuthError,
    ConflictError,
    FHIRServerError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    PagingError,
    RetryableError,
    TransportError,
)
from adapter.types import JSON

log = logging.getLogger("adapter.exchange")

FHIR_JSON = "application/fhir+json"
#: Request extension marking a request as safe to repeat (conditional creates, conditional transactions).
IDEMPOTENT = "imr_idempotent"
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_ERRORS: dict[int, type[FHIRServerError]] = {
    400: InvalidRequestError, 422: InvalidRequestError, 401: AuthError, 403: AuthError, 404: NotFoundError,
    410: NotFoundError, 409: ConflictError, 412: ConflictError, 429: RetryableError,
}  # fmt: skip


@dataclass(frozen=True)
class WriteResult:
    """The answer to a create, update, patch or delete, or to one entry of a transaction or batch."""

    status: int
    location: str | None = None
    etag: str | None = None
    resource: Any = None
    outcome: JSON | None = None

    @property
    def created(self) -> bool:
        return self.status == 201

    @property
    def id(self) -> str | None:
        """The id from the Location (``Type/id/_history/v``) or from the returned resource."""
        if self.location:
            parts = urlsplit(self.location).path.strip("/").split("/")
            if "_history" in parts:
                parts = parts[: parts.index("_history")]
            return parts[-1]
        if isinstance(self.resource, dict):
            value = self.resource.get("id")
            return str(value) if value else None
        return None


@dataclass
class RetryState:
    """Attempts made and time spent on one logical request."""

    policy: RetrySettings
    started: float = field(default_factory=time.monotonic)
    attempts: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, request: httpx.Request, outcome: httpx.Response | Exception) -> float | None:
        """Seconds to wait before trying again, or None when this outcome is final."""
        self.attempts += 1
        if isinstance(outcome, httpx.Response):
            if outcome.status_code not in _RETRY_STATUSES or not is_idempotent(request):
                return None
            after = retry_after(outcome)
        elif isinstance(outcome, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            after = None  # nothing reached the server: any request may be sent again
        elif isinstance(outcome, httpx.TransportError) and is_idempotent(request):
            after = None
        else:
            return None
        if self.attempts >= self.policy.attempts:
            return None
        if after is None:
            cap = min(self.policy.backoff_max, self.policy.backoff * 2 ** (self.attempts - 1))
            after = self.rng.uniform(0, cap)
        if time.monotonic() - self.started + after > self.policy.total:
            return None
        return after


def is_idempotent(request: httpx.Request) -> bool:
    """Whether sending the request twice has the effect of sending it once."""
    return request.method in _IDEMPOTENT_METHODS or bool(
        request.method == "POST" and ("if-none-exist" in request.headers or request.extensions.get(IDEMPOTENT))
    )


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), when the server sent one."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _port(url: httpx.URL) -> int | None:
    """The URL's port, its scheme's default when none is written."""
    return url.port or {"http": 80, "https": 443}.get(url.scheme)


def transaction_is_idempotent(bundle: Mapping[str, Any]) -> bool:
    """A transaction or batch is safe to repeat when every entry is: conditional creates, PUT, GET, DELETE."""
    for entry in bundle.get("entry", []):
        request = entry.get("request", {})
        method = request.get("method")
        if method == "POST" and not request.get("ifNoneExist"):
            return False
        if method not in {"POST", "PUT", "GET", "HEAD", "DELETE"}:
            return False
    return True


def translate_transport(exc: httpx.HTTPError, request: httpx.Request) -> TransportError:
    """httpx's transport errors as the adapter's, without the request's headers (they may hold secrets)."""
    target = f"{request.method} {request.url.copy_with(query=None)}"
    if isinstance(exc, httpx.TimeoutException):
        what = "timed out"
    elif isinstance(exc, httpx.ConnectError):
        what = "could not connect"
    elif isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError | httpx.CloseError):
        what = "the connection was dropped"
    elif isinstance(exc, httpx.ProtocolError):
        what = "HTTP protocol error"
    elif isinstance(exc, httpx.ProxyError):
        what = "the proxy refused"
    elif isinstance(exc, httpx.UnsupportedProtocol):
        what = "unsupported protocol"
    else:
        what = "transport error"
    return TransportError(f"{what} ({type(exc).__name__})", location=target)


class BaseFHIRClient:
    """Request building and response handling for one FHIR server; subclasses add the sending."""

    _http: httpx.Client | httpx.AsyncClient

    def __init__(self, base_url: str, *, retry: RetrySettings | None = None, as_models: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetrySettings()
        self.as_models = as_models
        parts = urlsplit(self.base_url)
        self._base_path = parts.path.rstrip("/")

    # --- building --------------------------------------------------------------------------------

    def url(self, path: str = "") -> str:
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    def build(
        self,
        method: str,
        path: str = "",
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        resource: Mapping[str, Any] | list[Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content_type: str = FHIR_JSON,
        idempotent: bool = False,
        url: str | None = None,
    ) -> httpx.Request:
        all_headers = {"Accept": FHIR_JSON}
        content = None
        if resource is not None:
            content = orjson.dumps(resource)
            all_headers["Content-Type"] = content_type
        all_headers.update(headers or {})
        request = self._http.build_request(
            method, url or self.url(path), params=params, content=content, headers=all_headers
        )
        if idempotent:
            request.extensions[IDEMPOTENT] = True
        return request

    def check_next(self, link: str) -> str:
        """A next link (or an export's status or file URL) as it will be sent, refused unless it stays on
        this server's base URL (no SSRF, no token leaks). It is read as httpx sends it (``..`` segments
        resolved, default ports dropped), and dot segments or backslashes that a server could still decode
        (``%2e%2e``, ``..%2f``) are refused outright."""
        try:
            url, base = httpx.URL(link), httpx.URL(self.base_url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise PagingError("next link is not a URL; refused", url=link[:200]) from exc
        path = url.path  # decoded, after httpx removed dot segments
        climbs = "\\" in path or any(part in (".", "..") for part in path.split("/"))
        on_base = (
            (url.scheme, url.host, _port(url)) == (base.scheme, base.host, _port(base))
            and not climbs
            and (path == self._base_path or path.startswith(self._base_path + "/"))
        )
        if not on_base:
            raise PagingError("next link leaves the server's base URL; refused", url=link[:200])
        return str(url)

    @staticmethod
    def next_link(bundle: JSON) -> str | None:
        return next((link.get("url") for link in bundle.get("link", []) if link.get("relation") == "next"), None)

    # --- reading ---------------------------------------------------------------------------------

    def parse(self, response: httpx.Response) -> JSON | None:
        """The response's JSON body (None when empty), or the mapped error for an error status."""
        request = response.request
        body: JSON | None = None
        if response.content:
            try:
                loaded = orjson.loads(response.content)
            except orjson.JSONDecodeError:
                loaded = None
                if response.status_code < 400:
                    raise MalformedResponseError(
                        "the body is not JSON", status=response.status_code, method=request.method,
                        url=str(request.url),
                    ) from None  # fmt: skip
            if isinstance(loaded, dict):
                body = loaded
            elif loaded is not None and response.status_code < 400:
                raise MalformedResponseError(
                    "the body is not a JSON object",
                    status=response.status_code,
                    method=request.method,
                    url=str(request.url),
                )
        if response.status_code >= 400:
            raise self.error(response, body)
        return body

    def error(self, response: httpx.Response, body: JSON | None) -> FHIRServerError:
        status = response.status_code
        cls = _ERRORS.get(status) or (RetryableError if status >= 500 else FHIRServerError)
        outcome = body if body and body.get("resourceType") == "OperationOutcome" else None
        details = ""
        if outcome:
            texts = [i.get("diagnostics") or i.get("details", {}).get("text") for i in outcome.get("issue", [])]
            details = "; ".join(t for t in texts if t)[:500]
        message = f"HTTP {status} {response.reason_phrase}" + (f": {details}" if details else "")
        request = response.request
        return cls(
            message, status=status, outcome=outcome, method=request.method, url=str(request.url.copy_with(query=None))
        )

    def write_result(self, response: httpx.Response) -> WriteResult:
        body = self.parse(response)
        outcome = body if body and body.get("resourceType") == "OperationOutcome" else None
        resource = None if outcome is not None else body
        return WriteResult(
            status=response.status_code,
            location=response.headers.get("location") or response.headers.get("content-location"),
            etag=response.headers.get("etag"),
            resource=self.typed(resource) if resource is not None else None,
            outcome=outcome,
        )

    def entry_results(self, bundle: JSON) -> list[WriteResult]:
        """Per-entry results of a transaction or batch response."""
        results = []
        for entry in bundle.get("entry", []):
            answer = entry.get("response", {})
            status = str(answer.get("status", "0")).split(" ", 1)[0]
            outcome = answer.get("outcome")
            resource = entry.get("resource")
            results.append(
                WriteResult(
                    status=int(status) if status.isdigit() else 0,
                    location=answer.get("location"),
                    etag=answer.get("etag"),
                    resource=self.typed(resource) if resource is not None else None,
                    outcome=outcome,
                )
            )
        return results

    def typed(self, resource: JSON) -> Any:
        """The resource as the caller asked for it: a dict, or a fhir.resources R4B model."""
        if not self.as_models:
            return resource
        from fhir.resources.R4B import get_fhir_model_class

        return get_fhir_model_class(resource["resourceType"]).model_validate(resource)

    @staticmethod
    def log(request: httpx.Request, response: httpx.Response | None, started: float) -> None:
        status = response.status_code if response is not None else "-"
        log.debug("%s %s -> %s in %.0f ms", request.method, request.url.copy_with(query=None), status,
                  (time.monotonic() - started) * 1000)  # fmt: skip


class RequestsMixin(BaseFHIRClient):
    """One request builder per FHIR interaction; the sync and async clients send them."""

    def req_capabilities(self) -> httpx.Request:
        return self.build("GET", "metadata")

    def req_read(self, rtype: str, rid: str) -> httpx.Request:
        return self.build("GET", f"{rtype}/{rid}")

    def req_vread(self, rtype: str, rid: str, vid: str) -> httpx.Request:
        return self.build("GET", f"{rtype}/{rid}/_history/{vid}")

    def req_create(self, resource: Mapping[str, Any], if_none_exist: str | None) -> httpx.Request:
        headers = {"Prefer": "return=representation"}
        if if_none_exist:
            headers["If-None-Exist"] = if_none_exist
        return self.build("POST", str(resource["resourceType"]), resource=resource, headers=headers)

    def req_update(self, resource: Mapping[str, Any], if_match: str | None) -> httpx.Request:
        headers = {"Prefer": "return=representation"}
        if if_match:
            headers["If-Match"] = if_match if if_match.startswith('W/"') else f'W/"{if_match}"'
        return self.build("PUT", f"{resource['resourceType']}/{resource['id']}", resource=resource, headers=headers)

    def req_conditional_update(self, resource: Mapping[str, Any], params: Mapping[str, Any]) -> httpx.Request:
        return self.build("PUT", str(resource["resourceType"]), params=params, resource=resource,
                          headers={"Prefer": "return=representation"})  # fmt: skip

    def req_patch(self, rtype: str, rid: str, operations: list[JSON], if_match: str | None) -> httpx.Request:
        headers = {"Prefer": "return=representation"}
        if if_match:
            headers["If-Match"] = if_match if if_match.startswith('W/"') else f'W/"{if_match}"'
        return self.build(
            "PATCH", f"{rtype}/{rid}", resource=operations, headers=headers, content_type="application/json-patch+json"
        )

    def req_delete(self, rtype: str, rid: str) -> httpx.Request:
        return self.build("DELETE", f"{rtype}/{rid}")

    def req_search(self, rtype: str, params: Mapping[str, Any] | list[tuple[str, Any]] | None) -> httpx.Request:
        return self.build("GET", rtype, params=params)

    def req_next(self, link: str) -> httpx.Request:
        return self.build("GET", url=self.check_next(link))

    def req_bundle(self, bundle: Mapping[str, Any]) -> httpx.Request:
        return self.build("POST", "", resource=bundle, idempotent=transaction_is_idempotent(bundle),
                          headers={"Prefer": "return=representation"})  # fmt: skip

    def req_operation(
        self,
        name: str,
        *,
        rtype: str | None = None,
        rid: str | None = None,
        params: Mapping[str, Any] | None = None,
        resource: Mapping[str, Any] | None = None,
        method: str = "POST",
    ) -> httpx.Request:
        path = "/".join(p for p in (rtype, rid, f"${name.lstrip('$')}") if p)
        return self.build(method, path, params=params, resource=resource, idempotent=method == "GET")

    def page_resources(self, bundle: JSON) -> list[Any]:
        """The matches of one search page (``search.mode`` "include" entries are left out)."""
        return [
            self.typed(e["resource"])
            for e in bundle.get("entry", [])
            if "resource" in e and e.get("search", {}).get("mode", "match") == "match"
        ]

    def bundle_answer(self, body: JSON | None, request: httpx.Request) -> list[WriteResult]:
        if body is None or body.get("resourceType") != "Bundle":
            raise MalformedResponseError("a transaction or batch answered without a Bundle", method="POST",
                                         url=str(request.url))  # fmt: skip
        return self.entry_results(body)

    def resource_answer(self, body: JSON | None, request: httpx.Request) -> Any:
        if body is None or "resourceType" not in body:
            raise MalformedResponseError("expected a resource", method=request.method, url=str(request.url))
        return self.typed(body)
