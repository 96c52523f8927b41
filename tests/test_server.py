"""Serving (adapter.service.server): ``serve --processes N`` forks N processes that answer one port as replicas
on one state, and stop together."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapter import parse_letter
from adapter.fhir.build import pas_bundle
from adapter.sandbox import free_port
from tests.conftest import LETTERS, auth

TOKEN = "server-test-token"


def _children(pid: int) -> list[int]:
    return [int(c) for t in Path(f"/proc/{pid}/task").glob("*/children") for c in t.read_text().split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def _answering(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``imr-adapter serve --processes 2`` on a SQLite state of its own, once it answers; stopped after."""
    port = free_port()
    # its temporary folders (the metrics') under tmp_path too: a command killed cannot remove its own
    env = {**os.environ, "IMR_SERVICE__STATE_URL": f"sqlite:///{tmp_path}/state.db", "IMR_SERVICE__NOTIFY": "false",
           "IMR_SERVICE__TOKENS": json.dumps({TOKEN: "system/*.*"}), "TMPDIR": str(tmp_path)}  # fmt: skip
    command = [sys.executable, "-m", "adapter.cli", "serve", "--port", str(port), "--processes", "2"]
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(command, env=env, stderr=sink)
    try:
        deadline = time.monotonic() + 120
        while not _answering(f"http://127.0.0.1:{port}/fhir/metadata"):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/fhir", server
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=60)


def _submissions(count: int) -> list[dict[str, Any]]:
    """PAS Bundles of the fixture letters, each under Claim identifiers of its own."""
    letters = sorted(LETTERS.glob("*.txt"))
    bundles = []
    for n in range(count):
        bundle = pas_bundle(parse_letter(letters[n % len(letters)].read_bytes()))
        claim = bundle["entry"][0]["resource"]
        claim["identifier"] = [{**claim["identifier"][0], "value": f"server-test-{n}"}]
        bundles.append(bundle)
    return bundles


def _submit(base: str, bundle: dict[str, Any]) -> tuple[int, str]:
    """(status, ClaimResponse id), on a connection of its own (so the processes share the requests)."""
    answer = httpx.post(f"{base}/Claim/$submit", content=json.dumps(bundle), headers=auth(TOKEN), timeout=60)
    return answer.status_code, answer.json()["entry"][0]["resource"]["id"]


def test_processes_answer_as_one_service_on_one_state(served: tuple[str, subprocess.Popen[bytes]]) -> None:
    """Two processes serve the port; whichever answers, every answer is stored once and read back by either, the
    same request sent again gets the answer first given (idempotency across processes), and /metrics counts
    every process's requests."""
    base, server = served
    assert len(_children(server.pid)) == 2
    bundles = _submissions(12)
    with ThreadPoolExecutor(6) as pool:
        first = list(pool.map(lambda b: _submit(base, b), bundles))
        again = list(pool.map(lambda b: _submit(base, b), bundles))
    assert [status for status, _ in first] == [200] * 12
    assert [rid for _, rid in again] == [rid for _, rid in first]
    assert len({rid for _, rid in first}) == 12
    for _, rid in first:
        assert httpx.get(f"{base}/ClaimResponse/{rid}", headers=auth(TOKEN)).json()["id"] == rid
    found = httpx.get(f"{base}/ClaimResponse", params={"_summary": "count"}, headers=auth(TOKEN)).json()
    assert found["total"] == 12
    lines = httpx.get(f"{base.removesuffix('/fhir')}/metrics", headers=auth(TOKEN)).text.splitlines()
    submits = [line for line in lines if line.startswith("imr_http_requests_total{") and "$submit" in line]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in submits) == 24
    children = _children(server.pid)
    server.send_signal(signal.SIGTERM)  # both stop, and the command ends well
    assert server.wait(timeout=60) == 0
    assert not any(_alive(child) for child in children)


def test_processes_stop_together(served: tuple[str, subprocess.Popen[bytes]]) -> None:
    """One process ending unasked stops the other, and ``serve`` exits 1."""
    _, server = served
    first, second = _children(server.pid)
    os.kill(first, signal.SIGKILL)
    assert server.wait(timeout=60) == 1
    deadline = time.monotonic() + 10
    while _alive(second) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(second)


def test_processes_stop_when_serve_is_killed(served: tuple[str, subprocess.Popen[bytes]]) -> None:
    """The command killed (SIGKILL: it cannot pass anything on): its processes stop, none serves on alone."""
    _, server = served
    children = _children(server.pid)
    server.kill()
    server.wait(timeout=10)
    deadline = time.monotonic() + 60
    while any(_alive(child) for child in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(child) for child in children)
