"""The worker woken by rest-hook notifications from the EHR server's Subscription."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from adapter import parse_letter
from adapter.exchange import FHIRClient
from adapter.fhir.build import request_bundle
from adapter.letters import summary_text
from adapter.sandbox import free_port
from adapter.service.state import Store
from tests.conftest import LETTERS


def test_notification_starts_a_pass_before_the_poll(tmp_path: Path, ehr_url: str) -> None:
    state = f"sqlite:///{tmp_path}/hooks.db"
    env = {**os.environ, "IMR_SERVICE__STATE_URL": state, "IMR_SERVICE__POLL_SECONDS": "300"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "adapter.cli", "sync", "--listen", f"127.0.0.1:{free_port()}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # started with SIGINT ignored, as a shell starts a background job: Ctrl-C must still end it in order
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        assert "listening for EHR notifications" in line and "Subscription/" in line, line
        worker.stdout.readline()  # the first (polling) pass is done
        store = Store(state)
        before = store.search(count=1000)[0]
        case = parse_letter((LETTERS / "case-number-crlf.txt").read_bytes())
        case.case_number = f"CM94-{uuid.uuid4().int % 10**7:07d}"
        assert case.source is not None
        with FHIRClient(ehr_url) as ehr:
            ehr.transaction(request_bundle(case, summary_text(case.source.text, case.layout)))
        deadline = time.monotonic() + 30  # far sooner than the 300 s poll
        while store.search(count=1000)[0] == before:
            assert time.monotonic() < deadline, "no pass after the notification"
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGINT)  # a pass under way is finished first (slow on a cold, busy machine)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()  # never left running, and the test fails
            worker.wait()
            raise
    with FHIRClient(ehr_url) as ehr:
        assert not [
            s
            for s in ehr.search("Subscription", {"status": "active,requested"})
            if "IMR adapter" in s.get("reason", "")
        ]
