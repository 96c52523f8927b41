"""Running the service: its port bound before anything else starts, uvicorn on that socket, and one line once
the service answers (never before: a port in use or a broken JWKS is one error line, and no "serving")."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable

from fastapi import FastAPI

from adapter.errors import ConfigError

__all__ = ["cannot_listen", "listen", "run"]


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (not yet listening); ``ConfigError`` naming the address and the fix."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:  # socket.gaierror: a host name that does not resolve
        raise ConfigError(f"--host {host}: {exc.strerror or exc} (give an address such as 127.0.0.1)") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise cannot_listen(host, port, exc) from exc
    return sock


def cannot_listen(host: str, port: int, exc: OSError, *, flag: str = "--port") -> ConfigError:
    """The one line for an address that cannot be bound, with the fix (``flag`` names the option to change)."""
    if exc.errno == errno.EADDRINUSE:
        fix = f"another process is listening there: stop it, or choose another {flag}"
    elif exc.errno == errno.EACCES:
        fix = f"ports below 1024 need privileges: choose a {flag} of 1024 or above"
    else:
        fix = f"choose another {flag}"
    return ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc} ({fix})")


def run(app: FastAPI, sock: socket.socket, *, ready: Callable[[], None]) -> bool:
    """Serve ``app`` on ``sock`` until SIGINT or SIGTERM (requests in flight get up to 30 s); ``ready`` is
    called once the app has started and the socket accepts connections. False when the app did not start."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                ready()

    # the client's address is the peer's; the app reads X-Forwarded-For from service.trusted_proxies only
    server = Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=30, proxy_headers=False))
    try:
        server.run(sockets=[sock])
    except SystemExit:  # uvicorn's way to say the app's start-up failed (it has logged why)
        return False
    finally:
        sock.close()
    return server.started
