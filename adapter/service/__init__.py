"""The running product: the HTTP service (EHR push, payer pull), the outbox to the payer, the sync worker."""

from __future__ import annotations

import os
from dataclasses import dataclass

from fastapi import FastAPI

from adapter.config import Settings
from adapter.exchange import FHIRClient
from adapter.review.policy import Policy, review_policy
from adapter.service.app import create_app
from adapter.service.forwarder import Forwarder, payer_client
from adapter.service.pipeline import service_limits
from adapter.service.state import Store
from adapter.service.worker import SyncWorker

__all__ = ["Forwarder", "Store", "SyncWorker", "Wiring", "create_app", "wire"]


@dataclass
class Wiring:
    settings: Settings
    store: Store
    forwarder: Forwarder | None
    #: The review policy the settings name, resolved once for the app and the worker.
    policy: Policy

    def app(self) -> FastAPI:
        return create_app(self.settings, self.store, self.forwarder, self.policy)

    def worker(self) -> SyncWorker:
        ehr = FHIRClient(
            self.settings.ehr, auth=self.settings.auth("ehr"), timeout=self.settings.timeout, retry=self.settings.retry
        )
        service = self.settings.service
        return SyncWorker(
            self.store,
            ehr,
            self.forwarder,
            forward=self.settings.forwarding,
            tasks=service.ehr_task,
            policy=self.policy,
            processes=service.worker_processes or os.cpu_count() or 1,
            page_size=service.worker_page_size,
            lease=service.worker_lease,
            limits=service_limits(service),
            attachment_url=f"{service.base_url}/$submit-attachment" if service.ehr_attachment_requests else None,
        )


def wire(settings: Settings) -> Wiring:
    """The state store, (when forwarding to a named payer) the payer forwarder and the review policy, from settings
    (a jurisdiction table that does not load fails here, at start-up)."""
    policy = review_policy(settings)
    store = Store(settings.service.state_url, migrate=settings.service.auto_migrate)
    if not settings.service.auto_migrate:
        store.require_current()
    forwarder = None
    if settings.forwarding:
        client = payer_client(settings.payer, settings.auth("payer"), settings.timeout)
        service = settings.service
        forwarder = Forwarder(store, client, max_delay=service.outbox_max_delay, batch=service.outbox_batch,
                              lease=service.outbox_lease)  # fmt: skip
    return Wiring(settings, store, forwarder, policy)
