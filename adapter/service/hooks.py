"""Rest-hook notifications for the worker: where the EHR server supports Subscriptions, the worker
registers one (``ServiceRequest?status=active``) pointing at a small listener, and each notification
starts a pass at once. Polling goes on beside it, so a lost notification only delays work."""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from adapter.errors import AdapterError
from adapter.exchange import FHIRClient

log = logging.getLogger("adapter.service.hooks")
CRITERIA = "ServiceRequest?status=active"


#: Connections the listener serves at once (a thread each); more are closed at once. A notification only
#: starts a pass sooner, so one refused costs nothing that polling does not make up.
MAX_CONNECTIONS = 16
#: Seconds a connection may sit idle between reads.
IDLE_SECONDS = 10
#: The most of a notification's body read (it is not used: the pass reads the EHR itself).
MAX_NOTIFICATION = 65_536


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most ``MAX_CONNECTIONS`` of them."""

    daemon_threads = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class HookListener:
    """Listens on host:port; any POST or PUT under /hook with the right token sets ``notified``."""

    def __init__(self, host: str, port: int) -> None:
        self.token = secrets.token_urlsafe(24)
        self.notified = threading.Event()
        self.received = 0
        listener = self

        class Handler(BaseHTTPRequestHandler):
            timeout = IDLE_SECONDS

            def _handle(self) -> None:
                self.close_connection = True  # one notification a connection: no body left unread for the next
                supplied = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                if not self.path.startswith("/hook") or not hmac.compare_digest(supplied, listener.token):
                    self.send_response(401 if self.path.startswith("/hook") else 404)  # before reading the body
                    self.end_headers()
                    return
                length = self.headers.get("Content-Length", "0")
                self.rfile.read(min(int(length) if length.isdigit() else 0, MAX_NOTIFICATION))
                listener.received += 1
                listener.notified.set()
                self.send_response(200)
                self.end_headers()

            do_POST = do_PUT = _handle

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                log.debug("hook: " + format, *args)

        self.server = _BoundedServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, name="hook-listener", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def supports_subscriptions(ehr: FHIRClient) -> bool:
    try:
        return "Subscription" in ehr.declared()
    except AdapterError:
        return False


def subscribe(ehr: FHIRClient, listener: HookListener) -> str | None:
    """Register the rest-hook Subscription; its id, or None where the server does not support them."""
    if not supports_subscriptions(ehr):
        return None
    subscription = {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "IMR adapter: determine new and changed service requests",
        "criteria": CRITERIA,
        "channel": {
            "type": "rest-hook",
            "endpoint": listener.url,
            "payload": "application/fhir+json",
            "header": [f"Authorization: Bearer {listener.token}"],
        },
    }
    result = ehr.create(subscription)
    return result.id


def unsubscribe(ehr: FHIRClient, subscription_id: str | None) -> None:
    if subscription_id:
        try:
            ehr.delete("Subscription", subscription_id)
        except AdapterError as exc:
            log.warning("could not delete Subscription/%s: %s", subscription_id, exc.code)
