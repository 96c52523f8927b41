"""The service under a steady load from a separate process, and the worker's throughput.

    python bench/service.py [--rate 50] [--seconds 10]

Starts the sandbox servers if they are down, runs `imr-adapter serve` in its own process, and from
another process sends a steady (open-loop) stream of requests at --rate per second to each of
POST /fhir/Claim/$submit, POST /fhir/ServiceRequest and, side by side, a bare GET /fhir/metadata.
Prints p50/p99 latency per endpoint, the service's peak memory, and the worker's throughput
(ServiceRequests per second from the EHR server to ClaimResponses on the payer server).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from adapter import sandbox
from adapter.config import SANDBOX, load_settings
from adapter.fhir.build import pas_bundle, request_bundle
from adapter.letters import parse_letter, summary_text
from adapter.service import wire

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"


def _bodies(count: int) -> tuple[list[bytes], list[bytes]]:
    """Distinct PAS Bundles and ServiceRequest Bundles (new identifiers each, so none is a retry)."""
    letters = sorted((ROOT / "fixtures" / "letters").glob("*.txt"))
    submits, requests = [], []
    for n in range(count):
        case = parse_letter(letters[n % len(letters)].read_bytes())
        case.case_number = f"CM90-{uuid.uuid4().int % 10**7:07d}"
        pas = pas_bundle(case)
        submits.append(json.dumps(pas).encode())
        requests.append(
            json.dumps({"resourceType": "Bundle", "type": "collection", "entry": pas["entry"][1:]}).encode()
        )
    return submits, requests


class Connections:
    """A small keep-alive HTTP/1.1 client on raw sockets: its own overhead is a fraction of a millisecond,
    so the latencies measured are the service's, not the load generator's."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> int:
        head = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Connection: keep-alive",
            f"Content-Length: {len(body or b'')}",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        payload = ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")
        for attempt in range(2):  # a kept-alive connection the server has closed meanwhile: again on a new one
            pooled = self.idle and attempt == 0
            reader, writer = self.idle.pop() if pooled else await asyncio.open_connection(self.host, self.port)
            writer.write(payload)
            await writer.drain()
            status_line = await reader.readline()
            if status_line:
                break
            writer.close()
        else:
            raise ConnectionError("the service closed the connection without answering")
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        await reader.readexactly(length)
        self.idle.append((reader, writer))
        return int(status_line.split()[1])


@dataclass(frozen=True)
class Stream:
    """One endpoint of an open-loop run: ``bodies[n]`` is the n-th request's body (None: no body)."""

    name: str
    method: str
    path: str
    bodies: list[bytes] | None = None


async def open_loop(
    base: str, rate: float, seconds: float, streams: list[Stream], *, progress: bool = False
) -> dict[str, list[float]]:
    """Open loop: every 1/rate s a request to each stream's endpoint, whatever the answers before it; the
    latencies (seconds, in the order sent) by stream name, and under "errors" the status of each answer >= 400.
    ``progress``: a line a second (requests sent, answered, still in flight)."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}
    total = int(rate * seconds)
    latencies: dict[str, list[float]] = {s.name: [0.0] * total for s in streams}
    errors: list[int] = []
    url = httpx.URL(base)
    client = Connections(url.host, url.port or 80)
    prefix = url.path.rstrip("/")

    async def one(n: int, stream: Stream) -> None:
        started = time.perf_counter()
        body = stream.bodies[n] if stream.bodies else None
        status = await client.request(stream.method, f"{prefix}{stream.path}", body, headers)
        latencies[stream.name][n] = time.perf_counter() - started
        if status >= 400:
            errors.append(status)

    tasks = []
    start = time.perf_counter()
    said = 0
    for n in range(total):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks += [asyncio.create_task(one(n, s)) for s in streams]
        if progress and (elapsed := int(time.perf_counter() - start)) > said:
            said = elapsed
            answered = sum(t.done() for t in tasks)
            print(f"  {elapsed:3d} s: {len(tasks)} sent, {answered} answered, {len(tasks) - answered} in flight"
                  f"{f', {len(errors)} errors' if errors else ''}", flush=True)  # fmt: skip
    await asyncio.gather(*tasks)
    if errors:
        latencies["errors"] = [float(e) for e in errors]
    return latencies


def _load_process(base: str, rate: float, seconds: float, queue: Any) -> None:
    submits, requests = _bodies(int(rate * seconds))
    streams = [
        Stream("POST /fhir/Claim/$submit", "POST", "/Claim/$submit", submits),
        Stream("POST /fhir/ServiceRequest", "POST", "/ServiceRequest", requests),
        Stream("GET /fhir/metadata", "GET", "/metadata"),
    ]
    queue.put(asyncio.run(open_loop(base, rate, seconds, streams)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


@contextlib.contextmanager
def serving(**env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``imr-adapter serve`` in a process of its own on a free port, with a fresh SQLite state, the bench's
    token and no rate limit (``env``: more IMR_ settings); its FHIR base URL and process. Stopped, and its
    state removed, on leaving, also on failure."""
    folder = tempfile.TemporaryDirectory(prefix="imr-bench-state-")
    port, state = sandbox.free_port(), f"sqlite:///{folder.name}/service.db"
    server = sandbox.start_service(
        {
            **os.environ,
            "IMR_SERVICE__TOKENS": json.dumps({TOKEN: "system/*.*"}),
            "IMR_SERVICE__STATE_URL": state,
            "IMR_SERVICE__RATE_LIMIT": "100000",
            **env,
        },
        port,
        timeout=120,  # a machine busy with other work starts it slowly
    )
    try:
        yield f"http://127.0.0.1:{port}/fhir", server
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        folder.cleanup()


def worker_throughput(settings: Any) -> tuple[int, float]:
    """Load the corpus's request side into the EHR sandbox; time the worker from EHR to payer."""
    from adapter.exchange import FHIRClient

    letters = sorted((ROOT.parent / "shared" / "corpus" / "pdf").glob("*.pdf")) or sorted(
        (ROOT / "fixtures" / "letters").glob("*.txt")
    )
    state = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    with FHIRClient(settings.ehr) as ehr:
        for path in letters:
            case = parse_letter(path.read_bytes())
            case.case_number = f"CM91-{uuid.uuid4().int % 10**7:07d}"
            assert case.source is not None
            ehr.transaction(request_bundle(case, summary_text(case.source.text, case.layout)))
    service = settings.service.model_copy(update={"state_url": state})
    wiring = wire(settings.model_copy(update={"service": service, "payer_url": settings.payer_url or SANDBOX}))
    started = time.perf_counter()
    with wiring.worker() as worker:
        report = worker.run_once()
        while wiring.store.outbox_pending():
            assert wiring.forwarder is not None
            wiring.forwarder.drain()
    return report.decided, report.decided / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second per endpoint")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    settings = load_settings()
    sandbox.up(settings.sandbox, keep_data=True)
    # answers forwarded, as in production
    with serving(IMR_PAYER_URL=settings.payer_url or SANDBOX) as (base, server):
        queue: Any = multiprocessing.Queue()
        load = multiprocessing.Process(target=_load_process, args=(base, args.rate, args.seconds, queue))
        load.start()
        results = queue.get()
        load.join()
        peak = next(
            (
                line.split()[1]
                for line in Path(f"/proc/{server.pid}/status").read_text().splitlines()
                if line.startswith("VmHWM")
            ),
            "?",
        )
    total = args.rate * 3
    print(
        f"machine: {os.cpu_count()} cores; {args.rate:g} requests/s to each endpoint ({total:g}/s in all) "
        f"for {args.seconds:g} s, from another process"
    )
    for name, values in results.items():
        if name == "errors":
            print(f"  errors: {len(values)} ({sorted(set(int(v) for v in values))})")
            continue
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        mean = statistics.mean(values) * 1000
        print(f"  {name:<28} n={len(values):4d}  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  mean {mean:6.1f} ms")
    print(f"  service peak memory (VmHWM): {int(peak) / 1024:.0f} MB" if peak != "?" else "  peak memory: unknown")
    decided, rate = worker_throughput(settings)
    print(
        f"worker: {decided} ServiceRequests from the EHR server to ClaimResponses on the payer server, "
        f"{rate:.1f} per second"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
