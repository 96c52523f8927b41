"""Delivering queued ClaimResponses to the payer server, in order, at least once and (by conditional
create on the determination identifier) exactly once there. A payer outage only delays delivery."""

from __future__ import annotations

import logging
import threading

from adapter.config import RetrySettings
from adapter.errors import AdapterError, StateError
from adapter.exchange import FHIRClient
from adapter.service.pipeline import DETERMINATION_SYSTEM
from adapter.service.state import Store

log = logging.getLogger("adapter.service.forwarder")


class Forwarder:
    """Drains the outbox to the payer; ``start()`` runs it in a background thread."""

    def __init__(self, store: Store, payer: FHIRClient, *, max_delay: float = 30.0) -> None:
        self.store = store
        self.payer = payer
        self.max_delay = max_delay
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def deliver_one(self) -> bool | None:
        """Deliver the head of the outbox: True delivered, False failed (retried later), None nothing due."""
        item = self.store.next_outbox()
        if item is None:
            return None
        condition = f"identifier={DETERMINATION_SYSTEM}|{item.claim_response_id}"
        try:
            self.payer.create(item.payload, if_none_exist=condition)
        except AdapterError as exc:
            delay = min(self.max_delay, 0.5 * 2**item.attempts)
            self.store.delivery_failed(item.seq, f"{exc.code}: {exc.message}", delay)
            log.warning("outbox %s: delivery failed (%s); next try in %.1f s", item.seq, exc.code, delay)
            return False
        self.store.delivered(item.seq)
        return True

    def drain(self, *, max_items: int = 10_000) -> int:
        """Deliver everything that is due now; the number delivered."""
        delivered = 0
        for _ in range(max_items):
            result = self.deliver_one()
            if not result:
                break
            delivered += 1
        return delivered

    def _run(self) -> None:
        """Deliver until stopped; a failing state database pauses delivery (with backoff), never ends it."""
        failures = 0
        while not self._stop.is_set():
            try:
                result = self.deliver_one()
                failures = 0
            except StateError as exc:
                failures += 1
                delay = min(self.max_delay, 0.5 * 2 ** min(failures, 10))
                log.error("outbox: the state database failed (%s); next try in %.1f s", exc.code, delay)
                self._stop.wait(delay)
                continue
            if not result:
                self._stop.wait(0.2)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-forwarder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def payer_client(url: str, auth: object, timeout: float) -> FHIRClient:
    """A payer client that does not retry on its own: the outbox retries, in order."""
    return FHIRClient(url, auth=auth, timeout=timeout, retry=RetrySettings(attempts=1))  # type: ignore[arg-type]
