"""The README's first command: the main job end to end, on sandbox servers of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from adapter.config import load_settings
from adapter.sandbox import free_port

#: Where the report's picture goes when IMR_REPORT_SCREENSHOT names a file (the README's comes from here).
REPORT_SCREENSHOT = os.environ.get("IMR_REPORT_SCREENSHOT")


def test_demo_runs_the_whole_flow(tmp_path: Path, page: Page) -> None:
    shared = load_settings().sandbox.dir / "venv"
    if not shared.exists():
        pytest.skip("the sandbox server is not installed (scripts/test installs it)")
    box = tmp_path / "sandbox"
    box.mkdir()
    (box / "venv").symlink_to(shared)  # the same pinned install, its own servers, data and ports
    env = {
        **os.environ,
        "IMR_SANDBOX__DIR": str(box),
        "IMR_SANDBOX__EHR_PORT": str(free_port()),
        "IMR_SANDBOX__PAYER_PORT": str(free_port()),
        "IMR_SANDBOX__POSTGRES_PORT": str(free_port()),
    }
    env.pop("IMR_EHR_URL", None)
    env.pop("IMR_PAYER_URL", None)
    out = tmp_path / "out"
    states = set(Path(tempfile.gettempdir()).glob("imr-demo-*"))
    done = subprocess.run(
        [sys.executable, "-m", "adapter.cli", "demo", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert set(Path(tempfile.gettempdir()).glob("imr-demo-*")) == states  # its service's state folder is gone
    assert "13 determinations, 10 waiting for review" in done.stdout
    assert "reviewed through the API by the demo's physician" in done.stdout
    assert "a physician reviewer decided one through the API (PUT /fhir/Task): A3" in done.stderr
    assert "loaded the requests of 5 letters into the EHR server" in done.stderr
    assert "every ClaimResponse is on the payer server (0 still queued)" in done.stderr
    report = (out / "imr-demo-report.html").read_text()
    assert report.count("<tr><td>") == 13 + 10 and "not certified" in report and "MTUS" in report
    # who, the answer's number and ClaimResponse, the evidence quoted, what the provider was asked, a chart
    assert "Asked of the provider" in report and "LOINC 47420-5" in report and "Evidence</p>" in report
    assert report.count("ClaimResponse/") >= 13 and "<svg" in report and "answers by kind of service" in report
    page.goto((out / "imr-demo-report.html").as_uri())  # as a person reads it, in a browser
    expect(page.get_by_role("img", name="answers by kind of service")).to_be_visible()
    expect(page.get_by_role("row")).to_have_count(1 + 13 + 1 + 10)
    if REPORT_SCREENSHOT:
        page.screenshot(path=REPORT_SCREENSHOT)  # the top: the chart and the first answers
    assert "Waiting for a physician: 10 review Tasks" in report and "Physician reviewer Demo Reviewer, MD" in report
    assert not list(box.glob("*/server.pid"))  # the demo stopped its servers
