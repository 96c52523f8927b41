"""``imr-adapter serve`` as a user runs it: a subprocess with its own config file, which says "serving" only
once it answers, logs each request, and stops on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

#: Bounds the wait for the service's start (tables and NLP load first); not a measure of anything.
START_WITHIN = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Service:
    """A running ``imr-adapter serve`` and the lines it has logged so far."""

    process: subprocess.Popen[str]
    base: str
    lines: list[str] = field(default_factory=list)

    def read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Service]:
    """The service on a free port, run in ``tmp_path`` with the ``imr-adapter.toml`` written there, with the
    answers kept (no payer); stopped with SIGTERM afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "adapter.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    service = Service(process, f"http://127.0.0.1:{port}/fhir")
    threading.Thread(target=service.read, daemon=True).start()
    deadline = time.monotonic() + START_WITHIN
    while not any("serving" in line for line in service.lines):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"serve did not start: {service.lines}")
        time.sleep(0.05)
    yield service
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has stopped


@pytest.fixture(autouse=True)
def config(tmp_path: Path) -> None:
    (tmp_path / "imr-adapter.toml").write_text(
        '[service]\nlog_format = "text"\nstate_url = "sqlite:///state.db"\n'
        '[service.tokens]\npayer-token = "system/ClaimResponse.read system/ClaimResponse.search"\n'
    )


def test_serving_is_said_once_it_answers_and_text_logs_carry_method_route_status_and_ms(serve: Service) -> None:
    serving = next(line for line in serve.lines if "serving" in line)
    assert f"serving {serve.base} (API page: /docs)" in serving
    # the line was written once the port listened: the first request after it is answered
    assert httpx.get(f"{serve.base}/metadata").status_code == 200
    assert httpx.get(f"{serve.base}/ClaimResponse/nope").status_code == 401
    headers = {"Authorization": "Bearer payer-token"}
    assert httpx.get(f"{serve.base}/ClaimResponse", headers=headers).status_code == 200
    deadline = time.monotonic() + 10
    while sum(" ms" in line for line in serve.lines) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    requests = [line.split(" ", 3)[3] for line in serve.lines if " ms" in line]
    assert any(r.startswith("GET /fhir/metadata 200 ") and " ms" in r for r in requests), serve.lines
    assert any(r.startswith("GET /fhir/ClaimResponse/{rid} 401 ") for r in requests), serve.lines
    assert any(r.startswith("GET /fhir/ClaimResponse 200 ") for r in requests), serve.lines
    assert "payer-token" not in "\n".join(serve.lines)
