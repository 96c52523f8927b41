"""The first run talks: scripts/bootstrap and the sandbox install say each step, a line every few seconds
while pip works, and each step's time (here with a stand-in python whose pip only pretends)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adapter import sandbox
from adapter.errors import SandboxError
from tests.conftest import ROOT

#: A stand-in for python: ``-m venv DIR`` makes DIR/bin/python (itself); ``-m pip ...`` collects three packages
#: slowly, or fails when FAIL_PIP is set.
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" = "--version" ]; then echo "Python 3.11.9"; exit 0; fi
if [ "$2" = "venv" ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; exit 0; fi
if [ -n "${FAIL_PIP:-}" ]; then echo "ERROR: No matching distribution found for nothing"; exit 1; fi
for p in alpha beta gamma; do echo "Collecting $p"; sleep 1; done
"""


def _bootstrap(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", 'source scripts/bootstrap && echo "PATH=$PATH"'],
        cwd=root,
        env={**os.environ, "PYTHON": str(root / "fake-python"), "IMR_PROGRESS_EVERY": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "bootstrap", tmp_path / "scripts" / "bootstrap")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / "fake-python").write_text(FAKE_PYTHON)
    (tmp_path / "fake-python").chmod(0o755)
    return tmp_path


def test_a_first_run_says_each_step_its_time_and_progress_while_pip_works(root: Path) -> None:
    done = _bootstrap(root)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("Installing the project and its tools into .venv")
    assert "  1/3 a virtualenv in .venv (Python 3.11.9) ..." in lines
    for step in ("1/3 a virtualenv in .venv", "2/3 pip itself, upgraded", "3/3 the project and its dependencies"):
        assert any(line.startswith(f"  {step}") and ": done in " in line for line in lines), lines
    ticks = [line for line in lines if line.startswith("    ... ")]
    assert len(ticks) >= 2  # each pip step runs about 3 s; a line every second
    assert any("packages collected so far (last: " in tick for tick in ticks)
    assert lines[-1].startswith("Installed in ") and "(6 packages; log: " in lines[-1]
    assert f"PATH={root / '.venv' / 'bin'}:" in done.stdout
    again = _bootstrap(root)  # installed: nothing to say
    assert again.returncode == 0 and again.stderr == ""


def test_a_failed_install_shows_the_end_of_its_log_and_fails(root: Path) -> None:
    done = _bootstrap(root, FAIL_PIP="1")
    assert done.returncode != 0
    assert "  2/3 pip itself, upgraded: FAILED after " in done.stderr
    assert "ERROR: No matching distribution found for nothing" in done.stderr
    assert "PATH=" not in done.stdout and not (root / ".venv" / ".installed").exists()


def test_the_sandbox_install_says_how_long_pip_has_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sandbox, "PROGRESS_EVERY", 0.5)
    said: list[str] = []
    slow = "import time\nfor p in 'ab': print('Collecting', p, flush=True); time.sleep(1)"
    sandbox._run_saying([sys.executable, "-c", slow], said.append, location=tmp_path)
    assert len(said) >= 2 and said[-1].startswith("    ... ") and said[-1].endswith("packages collected so far")
    with pytest.raises(SandboxError, match="could not install sekmet-fhir: no such version"):
        sandbox._run_saying([sys.executable, "-c", "print('no such version'); exit(1)"], said.append, location=tmp_path)


#: A stand-in for the sekmet server: ``serve -c CONFIG --host H --port P`` answers every GET with 200 after a
#: slow start.
FAKE_SERVER = f"""#!{sys.executable}
import http.server, sys, time
time.sleep(2)
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer((sys.argv[5], int(sys.argv[7])), Answer).serve_forever()
"""


def test_a_slow_sandbox_start_says_it_is_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapter.config import SandboxSettings

    server = tmp_path / "sekmet"
    server.write_text(FAKE_SERVER)
    server.chmod(0o755)
    monkeypatch.setattr(sandbox, "install", lambda settings: server)
    monkeypatch.setattr(sandbox, "PROGRESS_EVERY", 0.5)
    settings = SandboxSettings(dir=tmp_path / "sandbox", ehr_port=sandbox.free_port(), payer_port=sandbox.free_port())
    try:
        assert all(s.answering for s in sandbox.up(settings))
    finally:
        assert sandbox.down(settings, postgres=False) == ["ehr", "payer"]
    waiting = capsys.readouterr().err.splitlines()
    assert waiting and waiting[0].startswith("    ... waiting for the ehr server to answer (")


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/sbin/runuser").exists(), reason="as root, with util-linux")
def test_postgres_runs_as_its_user_though_the_path_leaves_out_sbin(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH such as cron's has no sbin folder: the sandbox's PostgreSQL still starts as the postgres user."""
    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")
    command = sandbox._as_postgres_user(["pg_ctl", "status"])
    assert Path(command[0]).name == "runuser" and Path(command[0]).exists()
    assert command[1:] == ["-u", "postgres", "--", "pg_ctl", "status"]
