"""The sync worker at EHR scale: requests per second, round trips per request on each server, peak memory.

    python bench/worker.py [--base 100] [--sizes 1,10] [--backfill 1000,10000]
    python bench/worker.py --workers 1,3 [--base 100] [--page 20]

For each size, on fresh sandbox servers: load the EHR with size x --base synthetic cases (each a patient
with conditions, prior treatment, a clinical note and one to four requests, the bundled letters' request
side under new identifiers) by transaction, timing the server's own write rate; then run one worker pass
(`sync --once`: read, determine, record, deliver every answer to the payer) and print requests per second,
round trips per request on the EHR and on the payer, and the peak memory of the process and its workers.
With --backfill, the same for `sync --backfill` (a Bulk Data export streamed through a workspace on disk)
on EHRs holding about that many requests. Each measurement runs in a process of its own, so each peak is
its own. The one-time start (imports, tables, the NLP pipeline: about 2 s) is inside the time measured.

With --workers, several `sync` workers share one EHR and one PostgreSQL state (the sandbox's): an EHR server
of the bench's own (on a free port; the shared sandbox servers are left alone) is loaded with --base cases
once, then for each count that many worker processes (each with its default determination processes) start
on a fresh state database, load and warm up, and are let go at once; the figure is every request decided
(none twice: the state holds one answer each) over the time from the go to the last worker's end. Answers
are not forwarded, so that only the sharing of the work is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from adapter import sandbox
from adapter.config import SANDBOX, SandboxSettings, load_settings
from adapter.exchange import FHIRClient
from adapter.fhir.build import request_bundle
from adapter.letters import parse_letter, summary_text
from adapter.service import wire
from adapter.service.backfill import backfill
from adapter.service.pipeline import warm_up
from adapter.service.state import Store

ROOT = Path(__file__).resolve().parent.parent
#: The bundled letters hold 13 requests in 6 cases.
REQUESTS_PER_CASE = 13 / 6
TRIPS: Counter[str] = Counter()


def _counting(send: Any) -> Any:
    def counted(self: FHIRClient, request: httpx.Request) -> httpx.Response:
        TRIPS[f"{request.url.scheme}://{request.url.netloc.decode()}"] += 1
        return send(self, request)

    return counted


FHIRClient.send = _counting(FHIRClient.send)  # type: ignore[method-assign]


def load(ehr: FHIRClient, cases: int) -> tuple[int, int, float]:
    """(requests, resources written, seconds) for ``cases`` cases written to the EHR by transaction."""
    letters = [parse_letter(p.read_bytes()) for p in sorted((ROOT / "fixtures" / "letters").glob("*.txt"))]
    requests = resources = 0
    started = time.perf_counter()
    for n in range(cases):
        case = letters[n % len(letters)].model_copy(deep=True)
        case.case_number = f"CM93-{uuid.uuid4().int % 10**7:07d}"
        assert case.source is not None
        bundle = request_bundle(case, summary_text(case.source.text, case.layout))
        ehr.transaction(bundle)
        kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
        requests += sum(k in ("ServiceRequest", "MedicationRequest", "DeviceRequest") for k in kinds)
        resources += len(kinds)
    return requests, resources, time.perf_counter() - started


def peak_mb() -> tuple[float, float]:
    """(this process, its finished children) peak resident memory in MB."""
    return (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    )


def run(kind: str, cases: int) -> dict[str, float]:
    """One measurement (in this process): ``kind`` is "poll" (`sync --once`) or "backfill"."""
    settings = load_settings()
    sandbox.up(settings.sandbox)  # fresh servers: each size on an EHR of its own size
    with FHIRClient(settings.ehr) as ehr:
        requests, written, seconds = load(ehr, cases)
    state = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    service = settings.service.model_copy(update={"state_url": state})
    wiring = wire(settings.model_copy(update={"service": service, "payer_url": settings.payer_url or SANDBOX}))
    TRIPS.clear()
    started = time.perf_counter()
    with wiring.worker() as worker:  # its processes start and stop inside the time measured
        report = backfill(worker) if kind == "backfill" else worker.run_once()
        while wiring.store.outbox_pending():
            assert wiring.forwarder is not None
            wiring.forwarder.drain()
    elapsed = time.perf_counter() - started
    ehr_trips, payer_trips = TRIPS[settings.ehr.rsplit("/fhir", 1)[0]], TRIPS[settings.payer.rsplit("/fhir", 1)[0]]
    own, children = peak_mb()
    return {
        "cases": cases,
        "requests": report.decided,
        "loaded": requests,
        "write_rate": written / seconds,
        "rate": report.decided / elapsed,
        "ehr_trips": ehr_trips / max(1, report.decided),
        "payer_trips": payer_trips / max(1, report.decided),
        "peak": own,
        "children": children,
    }


def measure(kind: str, cases: int) -> dict[str, float]:
    """One measurement in a fresh process (its own peak memory)."""
    done = subprocess.run([sys.executable, __file__, "--measure", kind, str(cases)], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@contextmanager
def own_ehr() -> Iterator[str]:
    """An EHR server of the bench's own (the sandbox's sekmet-fhir on a free port, data in a temporary folder),
    stopped after; its URL."""
    shared = load_settings().sandbox
    sandbox.install(shared)
    folder = Path(tempfile.mkdtemp(prefix="imr-bench-ehr-"))
    (folder / "venv").symlink_to(shared.dir / "venv")  # the installed server, not a second install
    mine = SandboxSettings(dir=folder, ehr_port=sandbox.free_port(), payer_port=sandbox.free_port())
    sandbox.up(mine, names=("ehr",))
    try:
        yield mine.url("ehr")
    finally:
        sandbox.down(mine, names=("ehr",), postgres=False)
        shutil.rmtree(folder, ignore_errors=True)


def sync_worker(ehr: str, state: str, page: int) -> None:
    """One worker process of --workers: set up and warmed, says "ready", waits for "go", runs one pass and
    prints its report as JSON."""
    service = {"state_url": state, "forward": False, "worker_page_size": page}
    wiring = wire(load_settings(ehr_url=ehr, service=service))
    with wiring.worker() as worker:
        worker.pool()
        warm_up()
        print("ready", flush=True)
        sys.stdin.readline()
        report = worker.run_once()
    print(json.dumps({"decided": report.decided, "seen": report.seen}), flush=True)


def shared(ehr: str, count: int, page: int) -> dict[str, float]:
    """``count`` workers on one fresh state: requests decided, answers stored, and the requests per second."""
    with sandbox.scratch_database(load_settings().sandbox) as state:
        command = [sys.executable, __file__, "--sync-worker", ehr, state, str(page)]
        workers = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                   for _ in range(count)]  # fmt: skip
        try:
            for worker in workers:
                assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
            started = time.perf_counter()
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            reports = [json.loads(worker.communicate(timeout=3600)[0].strip().splitlines()[-1]) for worker in workers]
            elapsed = time.perf_counter() - started
        finally:
            for worker in workers:
                worker.kill()
                worker.wait()
        store = Store(state)
        stored = store.search(count=1)[0]
        store.close()
    decided = sum(r["decided"] for r in reports)
    return {"workers": count, "decided": decided, "stored": stored, "seconds": elapsed, "rate": decided / elapsed}


def compare_workers(counts: list[int], cases: int, page: int) -> None:
    """Requests per second for each number of workers on the same seeded EHR."""
    with own_ehr() as ehr:
        with FHIRClient(ehr) as client:
            requests, _, _ = load(client, cases)
        print(f"machine: {os.cpu_count()} cores; an EHR of its own with {requests} requests; PostgreSQL state; "
              f"pages of {page}")  # fmt: skip
        print(f"{'workers':>8} {'decided':>8} {'stored':>7} {'seconds':>8} {'req/s':>7}")
        for count in counts:
            r = shared(ehr, count, page)
            row = f"{count:>8} {r['decided']:>8.0f} {r['stored']:>7.0f} {r['seconds']:>8.1f} {r['rate']:>7.1f}"
            print(row, flush=True)


def _row(label: str, r: dict[str, float]) -> str:
    return (f"{label:>14} {r['requests']:>9.0f} {r['rate']:>8.1f} {r['ehr_trips']:>14.3f} {r['payer_trips']:>16.3f} "
            f"{r['peak']:>8.0f} {r['children']:>10.0f} {r['write_rate']:>13.0f}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", type=int, default=100, help="cases (letters' request sides) at size 1")
    parser.add_argument("--sizes", default="1,10", help="multiples of --base, comma-separated")
    parser.add_argument("--backfill", default="", help="backfills of about this many requests, comma-separated")
    parser.add_argument("--workers", default="", help="numbers of workers sharing one EHR and state, comma-separated")
    parser.add_argument("--page", type=int, default=20, help="requests per worker page with --workers")
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "CASES"), help=argparse.SUPPRESS)
    parser.add_argument("--sync-worker", nargs=3, metavar=("EHR", "STATE", "PAGE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(run(args.measure[0], int(args.measure[1]))))
        return 0
    if args.sync_worker:
        sync_worker(args.sync_worker[0], args.sync_worker[1], int(args.sync_worker[2]))
        return 0
    if args.workers:
        compare_workers([int(n) for n in args.workers.split(",") if n], args.base, args.page)
        return 0
    print(f"machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}; sandbox servers (sekmet-fhir)")
    print(f"{'':>14} {'requests':>9} {'req/s':>8} {'EHR trips/req':>14} {'payer trips/req':>16} "
          f"{'peak MB':>8} {'workers MB':>10} {'EHR writes/s':>13}")  # fmt: skip
    polls = []
    try:
        for size in (int(s) for s in args.sizes.split(",") if s):
            polls.append(measure("poll", size * args.base))
            print(_row(f"sync --once {size}x", polls[-1]), flush=True)
        for wanted in (int(s) for s in args.backfill.split(",") if s):
            print(_row("backfill", measure("backfill", round(wanted / REQUESTS_PER_CASE))), flush=True)
    finally:
        sandbox.down(load_settings().sandbox, postgres=False)
    if len(polls) > 1:
        print(f"largest / smallest EHR: {polls[-1]['rate'] / polls[0]['rate']:.2f}x the rate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
