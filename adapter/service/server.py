"""Running the service: its port bound before anything else starts, uvicorn on that socket (in this process, or
in several forked from it), and one line once the service answers (never before: a port in use or a broken
JWKS is one error line, and no "serving")."""

from __future__ import annotations

import errno
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType

from fastapi import FastAPI

from adapter.errors import ConfigError

__all__ = ["cannot_listen", "forked", "listen", "run"]


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


#: Seconds a process of the service gets to finish its requests in flight once asked to stop.
GRACE = 30
#: Seconds on top of that before a process that has not stopped is killed.
_KILL_AFTER = GRACE + 10


def run(app: FastAPI, sock: socket.socket, *, ready: Callable[[], None], processes: int = 1) -> bool:
    """Serve ``app`` on ``sock`` until SIGINT or SIGTERM (requests in flight get up to ``GRACE`` seconds), in this
    process or in ``processes`` forked from it (``forked``); ``ready`` is called once the app has started and
    the socket accepts connections. False when the app did not start."""
    if processes > 1:
        return forked(app, sock, processes, ready=ready)
    return _serve(app, sock, ready=ready)


def forked(app: FastAPI, sock: socket.socket, processes: int, *, ready: Callable[[], None]) -> bool:
    """Serve ``app`` from ``processes`` processes forked from this one, all accepting on ``sock``: the
    determination is CPU under one interpreter lock per process, so one process uses one core however many
    threads it has. What was loaded before (tables, rules, NLP pipeline, models) is loaded once, its pages
    shared; nothing else may be open yet (a database connection or a thread does not survive a fork). Each
    process runs the app's lifespan (forwarder, notifier, held attachments) as a replica on the one state does.
    This process only waits: ``ready`` once every one answers; SIGINT or SIGTERM is passed on as SIGTERM (each
    finishes its requests in flight); one that ends unasked stops the others, and this returns False, as it
    does when one did not start."""
    readable, writable = os.pipe()  # each process writes a byte once it serves
    lifeline, held = os.pipe()  # only this process holds ``held``: its end, however it ends, is their EOF
    children: set[int] = set()
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:  # the forked process: serves, and leaves through os._exit (never back into the caller)
            os.close(readable)
            os.close(held)
            threading.Thread(target=_stop_with_parent, args=(lifeline,), name="parent", daemon=True).start()

            def say() -> None:
                os.write(writable, b".")

            code = 1
            try:
                code = 0 if _serve(app, sock, ready=say) else 1
            finally:
                os._exit(code)
        children.add(pid)
    os.close(writable)
    os.close(lifeline)
    sock.close()
    stopping: list[float] = []  # when this process asked them to stop

    def stop(*_: int | FrameType | None) -> None:
        if not stopping:
            stopping.append(time.monotonic())
        for child in list(children):  # a copy: this may run while the loop below takes an ended one out
            os.kill(child, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    serving, unasked = 0, False
    try:
        while children:
            if readable >= 0 and select.select([readable], [], [], 0.2)[0]:
                got = os.read(readable, processes)
                if not got:  # every process has closed its end: none will say more
                    os.close(readable)
                    readable = -1
                serving += len(got)
                if serving == processes and got:
                    ready()
            elif readable < 0:
                time.sleep(0.2)
            while children and (ended := os.waitpid(-1, os.WNOHANG)[0]):
                children.discard(ended)
                unasked = unasked or not stopping
                stop()
            if stopping and time.monotonic() - stopping[0] > _KILL_AFTER:
                for child in list(children):
                    os.kill(child, signal.SIGKILL)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if readable >= 0:
            os.close(readable)
        os.close(held)
    return serving == processes and not unasked


def _stop_with_parent(lifeline: int) -> None:
    """A forked process stops (SIGTERM to itself, as its parent would send) once the process that forked it has
    ended, even killed (SIGKILL): the lifeline reads EOF then."""
    while os.read(lifeline, 1):
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def _serve(app: FastAPI, sock: socket.socket, *, ready: Callable[[], None]) -> bool:
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                ready()

    # the client's address is the peer's; the app reads X-Forwarded-For from service.trusted_proxies only
    server = Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=GRACE, proxy_headers=False))
    try:
        server.run(sockets=[sock])
    except SystemExit:  # uvicorn's way to say the app's start-up failed (it has logged why)
        return False
    finally:
        sock.close()
    return server.started
