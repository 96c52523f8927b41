"""push, pull and check from the command line against the sandbox servers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from adapter.cli import main
from tests.conftest import FIXTURES, LETTERS


def test_push_reports_and_lists_failures(ehr_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    letters = tmp_path / "letters"
    shutil.copytree(LETTERS, letters)
    shutil.copy(FIXTURES / "invalid" / "truncated.pdf", letters / "broken.pdf")
    failed = tmp_path / "failed.txt"
    assert main(["push", str(letters), "--server", ehr_url, "--failed-list", str(failed)]) == 1
    out, err = capsys.readouterr()
    assert "push to" in out and "[letter-pdf]" in err
    assert failed.read_text().splitlines() == [str(letters / "broken.pdf")]
    (letters / "broken.pdf").unlink()
    assert main(["push", str(letters), "--server", ehr_url]) == 0
    table = capsys.readouterr().out
    assert "│       0 │               6 │      0 │                 0 │" in table  # all already present


def test_pull_json(payer_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push", str(LETTERS / "maximus-notice.txt")]) == 0  # default server: the EHR sandbox
    assert main(["push", str(LETTERS / "maximus-notice.txt"), "--server", payer_url]) == 0  # the payer's own auth
    capsys.readouterr()
    assert main(["pull", "--json", "--since", "2000-01-01"]) == 0
    numbers = {json.loads(line)["case_number"] for line in capsys.readouterr().out.splitlines()}
    assert "CM13-0100003" in numbers


def test_pull_bad_since(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pull", "--since", "last tuesday"]) == 1
    assert "[input]" in capsys.readouterr().err


def test_check_table(ehr_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--server", ehr_url]) == 0
    out = capsys.readouterr().out
    assert "9 of 9 checks passed" in out and "conditional create" in out and "PAS request Bundle" in out


def test_check_fails_without_credentials(payer_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--server", payer_url, "--auth", "none"]) == 1
    assert "server-auth" in capsys.readouterr().out
