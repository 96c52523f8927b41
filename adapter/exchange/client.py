"""FHIRClient and AsyncFHIRClient: the same interactions (everything is built and read in ``_base``);
only the sending differs. Both retry idempotent requests (see ``RetryState``), keep connections alive,
and follow search pages lazily.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from adapter.config import AuthSettings, RetrySettings
from adapter.errors import AdapterError
from adapter.exchange import deadline
from adapter.exchange._base import RequestsMixin, RetryState, WriteResult, translate_transport
from adapter.exchange.auth import auth_from_settings
from adapter.types import JSON

Params = Mapping[str, Any] | list[tuple[str, Any]] | None


def _http_options(base_url: str, auth: httpx.Auth | AuthSettings | None, timeout: float, concurrency: int) -> JSON:
    return {
        "auth": auth_from_settings(auth, base_url) if isinstance(auth, AuthSettings) else auth,
        "timeout": httpx.Timeout(timeout),
        "limits": httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        "follow_redirects": False,
    }


class FHIRClient(RequestsMixin):
    """A synchronous FHIR R4 REST client for one server."""

    _http: httpx.Client

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | AuthSettings | None = None,
        timeout: float = 30.0,
        retry: RetrySettings | None = None,
        as_models: bool = False,
        concurrency: int = 8,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, retry=retry, as_models=as_models)
        self._http = httpx.Client(transport=transport, **_http_options(base_url, auth, timeout, concurrency))
        if transport is None:
            deadline.bound(self._http)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FHIRClient:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def send(self, request: httpx.Request) -> httpx.Response:
        """Send with retries; the final response (any status) or a ``TransportError``. Every attempt, wait and
        byte of the answer falls within ``retry.total`` seconds."""
        state = RetryState(self.retry)
        limit = deadline.current() or deadline.Deadline.after(self.retry.total)
        while True:
            started = time.monotonic()
            try:
                with deadline.within(limit):
                    response = self._http.send(request)
            except httpx.HTTPError as exc:
                delay = state.delay(request, exc)
                if delay is None:
                    raise translate_transport(exc, request) from exc
                time.sleep(delay)
                continue
            self.log(request, response, started)
            delay = state.delay(request, response)
            if delay is None:
                return response
            response.close()
            time.sleep(delay)

    def send_streaming(self, request: httpx.Request, limit: deadline.Deadline) -> httpx.Response:
        """Send once and return the response unread, its headers within ``limit`` (the caller streams the body
        with ``deadline.chunks`` and closes it)."""
        try:
            with deadline.within(limit):
                return self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise translate_transport(exc, request) from exc

    def capabilities(self) -> Any:
        request = self.req_capabilities()
        return self.resource_answer(self.parse(self.send(request)), request)

    def declared(self) -> dict[str, JSON]:
        """The resource types the server's CapabilityStatement declares, each with its declaration
        (interactions, ``searchParam``, ``operation``)."""
        rests = self.capabilities().get("rest")
        return {  # a server's statement may be shaped any way at all: only objects in lists are read
            str(resource.get("type")): resource
            for rest in (rests if isinstance(rests, list) else [])
            if isinstance(rest, dict) and isinstance(rest.get("resource"), list)
            for resource in rest["resource"]
            if isinstance(resource, dict)
        }

    def read(self, rtype: str, rid: str) -> Any:
        request = self.req_read(rtype, rid)
        return self.resource_answer(self.parse(self.send(request)), request)

    def vread(self, rtype: str, rid: str, vid: str) -> Any:
        request = self.req_vread(rtype, rid, vid)
        return self.resource_answer(self.parse(self.send(request)), request)

    def create(self, resource: Mapping[str, Any], *, if_none_exist: str | None = None) -> WriteResult:
        return self.write_result(self.send(self.req_create(resource, if_none_exist)))

    def update(self, resource: Mapping[str, Any], *, if_match: str | None = None) -> WriteResult:
        return self.write_result(self.send(self.req_update(resource, if_match)))

    def conditional_update(self, resource: Mapping[str, Any], params: Mapping[str, Any]) -> WriteResult:
        return self.write_result(self.send(self.req_conditional_update(resource, params)))

    def patch(self, rtype: str, rid: str, operations: list[JSON], *, if_match: str | None = None) -> WriteResult:
        return self.write_result(self.send(self.req_patch(rtype, rid, operations, if_match)))

    def delete(self, rtype: str, rid: str) -> WriteResult:
        return self.write_result(self.send(self.req_delete(rtype, rid)))

    def search_pages(self, rtype: str, params: Params = None) -> Iterator[JSON]:
        """Each page (a searchset Bundle), following ``next`` links that stay on this server."""
        yield from self.pages(self.parse(self.send(self.req_search(rtype, params))) or {})

    def pages(self, first: JSON) -> Iterator[JSON]:
        """A searchset page (one a batch answered, say) and every page after it, by ``next`` links."""
        page = first
        while True:
            yield page
            link = self.next_link(page)
            if not link:
                return
            page = self.parse(self.send(self.req_next(link))) or {}

    def search(self, rtype: str, params: Params = None) -> Iterator[Any]:
        """Every matching resource, page after page."""
        for page in self.search_pages(rtype, params):
            yield from self.page_resources(page)

    def transaction(self, bundle: Mapping[str, Any]) -> list[WriteResult]:
        request = self.req_bundle(bundle)
        return self.bundle_answer(self.parse(self.send(request)), request)

    batch = transaction
    batch.__doc__ = "Post a batch Bundle; per-entry results (an entry's failure is in its result)."

    def operation(self, name: str, **kwargs: Any) -> JSON | None:
        """Call ``$name`` on the server, a type or an instance (``rtype=``, ``rid=``, ``params=``, ``resource=``)."""
        return self.parse(self.send(self.req_operation(name, **kwargs)))


class AsyncFHIRClient(RequestsMixin):
    """The asynchronous twin of FHIRClient, with bounded concurrency for many transactions at once."""

    _http: httpx.AsyncClient

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | AuthSettings | None = None,
        timeout: float = 30.0,
        retry: RetrySettings | None = None,
        as_models: bool = False,
        concurrency: int = 8,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, retry=retry, as_models=as_models)
        self.concurrency = concurrency
        self._http = httpx.AsyncClient(transport=transport, **_http_options(base_url, auth, timeout, concurrency))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncFHIRClient:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()

    async def send(self, request: httpx.Request) -> httpx.Response:
        state = RetryState(self.retry)
        while True:
            started = time.monotonic()
            try:
                # every attempt, wait and byte of the answer within retry.total seconds (a trickle included)
                left = max(0.0, state.started + self.retry.total - started)
                response = await asyncio.wait_for(self._http.send(request), left)
            except TimeoutError as exc:
                raise translate_transport(httpx.ReadTimeout("total timeout", request=request), request) from exc
            except httpx.HTTPError as exc:
                delay = state.delay(request, exc)
                if delay is None:
                    raise translate_transport(exc, request) from exc
                await asyncio.sleep(delay)
                continue
            self.log(request, response, started)
            delay = state.delay(request, response)
            if delay is None:
                return response
            await response.aclose()
            await asyncio.sleep(delay)

    async def capabilities(self) -> Any:
        request = self.req_capabilities()
        return self.resource_answer(self.parse(await self.send(request)), request)

    async def read(self, rtype: str, rid: str) -> Any:
        request = self.req_read(rtype, rid)
        return self.resource_answer(self.parse(await self.send(request)), request)

    async def vread(self, rtype: str, rid: str, vid: str) -> Any:
        request = self.req_vread(rtype, rid, vid)
        return self.resource_answer(self.parse(await self.send(request)), request)

    async def create(self, resource: Mapping[str, Any], *, if_none_exist: str | None = None) -> WriteResult:
        return self.write_result(await self.send(self.req_create(resource, if_none_exist)))

    async def update(self, resource: Mapping[str, Any], *, if_match: str | None = None) -> WriteResult:
        return self.write_result(await self.send(self.req_update(resource, if_match)))

    async def conditional_update(self, resource: Mapping[str, Any], params: Mapping[str, Any]) -> WriteResult:
        return self.write_result(await self.send(self.req_conditional_update(resource, params)))

    async def patch(self, rtype: str, rid: str, operations: list[JSON], *, if_match: str | None = None) -> WriteResult:
        return self.write_result(await self.send(self.req_patch(rtype, rid, operations, if_match)))

    async def delete(self, rtype: str, rid: str) -> WriteResult:
        return self.write_result(await self.send(self.req_delete(rtype, rid)))

    async def search_pages(self, rtype: str, params: Params = None) -> AsyncIterator[JSON]:
        request = self.req_search(rtype, params)
        while True:
            page = self.parse(await self.send(request)) or {}
            yield page
            link = self.next_link(page)
            if not link:
                return
            request = self.req_next(link)

    async def search(self, rtype: str, params: Params = None) -> AsyncIterator[Any]:
        async for page in self.search_pages(rtype, params):
            for resource in self.page_resources(page):
                yield resource

    async def transaction(self, bundle: Mapping[str, Any]) -> list[WriteResult]:
        request = self.req_bundle(bundle)
        return self.bundle_answer(self.parse(await self.send(request)), request)

    batch = transaction

    async def operation(self, name: str, **kwargs: Any) -> JSON | None:
        return self.parse(await self.send(self.req_operation(name, **kwargs)))

    async def transactions(self, bundles: Sequence[Mapping[str, Any]]) -> list[list[WriteResult] | AdapterError]:
        """Post many transactions, at most ``concurrency`` at a time; each result or its error, in order."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(bundle: Mapping[str, Any]) -> list[WriteResult] | AdapterError:
            async with gate:
                try:
                    return await self.transaction(bundle)
                except AdapterError as exc:
                    return exc

        return list(await asyncio.gather(*(one(b) for b in bundles)))
