"""A total deadline on every byte of an exchange, not only on each wait.

httpx's timeouts bound each phase (connect, each read, each write): a server that trickles a byte every few
seconds never trips a 30-second read timeout and can hold a request for hours, headers included. Here every
socket operation of the sync client is given what is left of the exchange's ``Deadline`` (set around the
exchange with ``within``), so the whole answer, headers and body, arrives by then or the read times out
(``httpx.ReadTimeout``, which the client maps to ``TransportError``). A streamed file may earn more time as
it arrives (``per_byte``): a large file at a fair rate finishes, a trickle does not.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from adapter.exchange._base import translate_transport

_CURRENT: ContextVar[Deadline | None] = ContextVar("imr_exchange_deadline", default=None)


@dataclass
class Deadline:
    """When an exchange must be done (``time.monotonic``), moved on by ``per_byte`` seconds per byte read."""

    at: float
    per_byte: float = 0.0

    @classmethod
    def after(cls, seconds: float, *, per_byte: float = 0.0) -> Deadline:
        return cls(time.monotonic() + seconds, per_byte)

    def left(self, timeout: float | None, error: type[Exception]) -> float:
        """The time one socket operation may take: its own timeout, cut to what is left (raises ``error``
        when nothing is)."""
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise error("the exchange took longer than its total timeout")
        return remaining if timeout is None else min(timeout, remaining)


@contextmanager
def within(deadline: Deadline | None) -> Iterator[None]:
    """Socket operations in this block (this thread) end by ``deadline`` (None: as they are)."""
    token = _CURRENT.set(deadline)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current() -> Deadline | None:
    return _CURRENT.get()


def chunks(response: httpx.Response, deadline: Deadline) -> Iterator[bytes]:
    """A streamed response's body, each read within ``deadline`` (a ``TransportError`` when it cannot be)."""
    body = response.iter_bytes()
    while True:
        try:
            with within(deadline):
                chunk = next(body, None)
        except httpx.HTTPError as exc:
            raise translate_transport(exc, response.request) from exc
        if chunk is None:
            return
        yield chunk


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        deadline = _CURRENT.get()
        if deadline is None:
            return self.inner.read(max_bytes, timeout)
        data = self.inner.read(max_bytes, deadline.left(timeout, httpcore.ReadTimeout))
        deadline.at += len(data) * deadline.per_byte
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        deadline = _CURRENT.get()
        self.inner.write(buffer, deadline.left(timeout, httpcore.WriteTimeout) if deadline else timeout)

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:  # fmt: skip
        deadline = _CURRENT.get()
        bounded = deadline.left(timeout, httpcore.ConnectTimeout) if deadline else timeout
        return _Stream(self.inner.start_tls(ssl_context, server_hostname, bounded))

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self.inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:  # fmt: skip
        deadline = _CURRENT.get()
        bounded = deadline.left(timeout, httpcore.ConnectTimeout) if deadline else timeout
        return _Stream(self.inner.connect_tcp(host, port, bounded, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:  # fmt: skip
        return _Stream(self.inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def bound(client: httpx.Client) -> httpx.Client:
    """The client with the sockets of its own transports (the default one, and those it made for the
    environment's proxies) under the current ``Deadline``. httpx has no parameter for the network backend,
    so each pool's is wrapped (httpcore 1.x keeps it as ``_network_backend``; the slow-server tests fail if
    that changes). A transport the caller gave is left as it is."""
    transports: list[Any] = [client._transport, *client._mounts.values()]
    for made in transports:
        pool = getattr(made, "_pool", None) if isinstance(made, httpx.HTTPTransport) else None
        if pool is not None and not isinstance(pool._network_backend, _Backend):
            pool._network_backend = _Backend(pool._network_backend)
    return client
