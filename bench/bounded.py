"""Bounded work: how long the service takes to answer (or refuse) very large requests, and how long
/metadata takes to answer meanwhile.

    .venv/bin/python bench/bounded.py

Starts `imr-adapter serve` (SQLite state, no forwarding) and sends, one at a time, a request whose text is
420 KB, requests whose clinical notes add up to 140 KB (determined) and 420 KB (over the clinical-text
budget), a 4 MB body, and 1,000 small ServiceRequests in one Bundle, while another thread asks for /metadata every
20 ms. Prints each answer's status and time and the slowest /metadata answer during it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from typing import Any

import httpx

from adapter import sandbox

TOKEN = "bench-token"
HEADERS = {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {TOKEN}"}


def _request(**changes: Any) -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/p1"}, "code": {"text": "MRI of the lumbar spine"}, **changes}  # fmt: skip


def _cases() -> list[tuple[str, dict[str, Any]]]:
    note = "Low back pain radiating to the left leg, numbness in the L5 dermatome, lumbar MRI pending. "
    return [
        ("420 KB request text", _request(code={"text": "lumbar " * 60_000})),
        ("140 KB of clinical notes", _request(note=[{"text": note * 475}] * 3)),
        ("420 KB of clinical notes", _request(note=[{"text": note * 950}] * 5)),
        ("4 MB body", _request(note=[{"text": note * 950}] * 45)),
        ("1,000 ServiceRequests in one Bundle", {"resourceType": "Bundle", "type": "collection",
                                                "entry": [{"resource": _request()}] * 1_000}),
    ]  # fmt: skip


def _watch(base: str, done: threading.Event, slowest: list[float]) -> None:
    """Ask for /metadata every 20 ms until ``done``, keeping each answer's time."""
    with httpx.Client(timeout=30) as client:
        while not done.is_set():
            started = time.perf_counter()
            client.get(f"{base}/metadata")
            slowest.append(time.perf_counter() - started)
            time.sleep(0.02)


def main() -> int:
    port = sandbox.free_port()
    state = f"sqlite:///{tempfile.mkdtemp()}/bounded.db"
    env = {**os.environ, "IMR_SERVICE__TOKENS": json.dumps({TOKEN: "system/*.*"}), "IMR_SERVICE__STATE_URL": state,
           "IMR_SERVICE__FORWARD": "false"}  # fmt: skip
    process = sandbox.start_service(env, port)
    base = f"http://127.0.0.1:{port}/fhir"
    print(f"machine: {os.cpu_count()} cores")
    try:
        for name, body in _cases():
            content = json.dumps(body).encode()
            slowest: list[float] = []
            done = threading.Event()
            watcher = threading.Thread(target=_watch, args=(base, done, slowest))
            watcher.start()
            started = time.perf_counter()
            answer = httpx.post(f"{base}/ServiceRequest", content=content, headers=HEADERS, timeout=120)
            seconds = time.perf_counter() - started
            done.set()
            watcher.join()
            code = answer.json().get("issue", [{}])[0].get("details", {}).get("coding", [{}])[0].get("code", "")
            print(
                f"  {name:<38} {len(content) / 1e6:5.2f} MB -> {answer.status_code} {code:<12} in {seconds:6.2f} s; "
                f"slowest /metadata meanwhile {max(slowest or [0]) * 1000:6.1f} ms ({len(slowest)} asked)"
            )
    finally:
        process.terminate()
        process.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
