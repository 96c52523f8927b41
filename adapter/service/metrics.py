"""What operators watch, in Prometheus form: requests by route and status, latency, determinations by
action, and (read from the state at each scrape) the outbox's depth and age, dead letters, open and overdue
physician reviews, and how far the worker's cursor trails. Counts and times only: no ids, no clinical content."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from adapter.errors import StateError
from adapter.fhir.pas import REQUEST_RESOURCES
from adapter.service.state import Store, micros
from adapter.service.worker import cursor_name

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: prometheus_client's multiprocess mode: the folder every process of one service counts into.
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"


def count_across_processes(folder: str) -> None:
    """From here on, this process and those forked from it count into files under ``folder`` (prometheus_client's
    multiprocess mode), and ``/metrics`` reads them all: a service served by several processes reports every
    process's requests, whichever process answers the scrape. Before the app's ``Metrics`` is made."""
    os.environ[MULTIPROCESS] = folder
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


class _StateCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        try:
            depth = self.store.outbox_pending()
            oldest = self.store.outbox_oldest()
            dead = self.store.dead_letter_count()
            cursors = [c for c in (self.store.cursor(cursor_name(t)) for t in REQUEST_RESOURCES) if c]
            reviews, overdue = self.store.open_reviews(int(time.time() * 1_000_000))
        except StateError:
            yield GaugeMetricFamily("imr_state_up", "Whether the state database answered this scrape", value=0)
            return
        yield GaugeMetricFamily("imr_state_up", "Whether the state database answered this scrape", value=1)
        yield GaugeMetricFamily("imr_outbox_depth", "Answers waiting for delivery to the payer", value=depth)
        age = time.time() - micros(oldest) / 1e6 if oldest else 0.0
        yield GaugeMetricFamily("imr_outbox_oldest_age_seconds", "Age of the oldest undelivered answer", value=age)
        yield GaugeMetricFamily(
            "imr_dead_letters", "Requests that could not be determined, not yet replayed", value=dead
        )
        yield GaugeMetricFamily(
            "imr_reviews_open", "Pended items waiting for a physician (review Tasks)", value=reviews
        )
        yield GaugeMetricFamily(
            "imr_reviews_overdue", "Review Tasks past their utilization-review due date", value=overdue
        )
        if cursors:  # the worker keeps a cursor per request type: the newest change of any is what it has seen
            lag = time.time() - max(micros(c) for c in cursors) / 1e6
            yield GaugeMetricFamily(
                "imr_worker_lag_seconds", "Time since the newest EHR change the worker has recorded", value=lag
            )


class Metrics:
    """One registry per app (so several apps in one process do not collide)."""

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "imr_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "imr_http_request_seconds",
            "Time to answer, by route",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.determinations = Counter(
            "imr_determinations", "Items determined, by the X12 306 action sent", ["action"], registry=self.registry
        )
        self.registry.register(_StateCollector(store))
        #: What a scrape reads: this registry, or under multiprocess mode every process's counts and the state.
        self.exposed = self.registry
        if folder := os.environ.get(MULTIPROCESS):
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed, path=folder)  # type: ignore[no-untyped-call]
            self.exposed.register(_StateCollector(store))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.exposed)
