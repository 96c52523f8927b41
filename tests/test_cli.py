"""The imr-adapter command line: parse (table and JSON lines), errors per file, demo."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from adapter.cli import main
from adapter.cli.parser import build_parser
from adapter.cli.settings import resolve
from adapter.sandbox import free_port
from tests.conftest import FIXTURES, LETTERS, make_pdf

REQUIRED_KEYS = {"case_number", "layout", "dates", "priority", "patient", "reviewer", "items"}


def test_parse_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "--json", str(LETTERS)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(list(LETTERS.glob("*.txt")))
    for line in lines:
        case = json.loads(line)
        assert REQUIRED_KEYS <= case.keys()
        assert set(case["dates"]) == {"assigned", "injury", "decision", "ur_denial", "application_received"}
        assert set(case["patient"]) == {"age", "gender"}
        assert isinstance(case["reviewer"]["licensure"], list) and isinstance(case["reviewer"]["specialty"], list)
        for item in case["items"]:
            assert item["decision"] in {"upheld", "overturned"}
            assert item["guideline_basis"] in {"MTUS", "non-MTUS"}
            assert "  " not in item["request"] and "\n" not in item["request"]
    multi = next(json.loads(line) for line in lines if "CM17-0100001" in line)
    assert multi["dates"]["decision"] == "2017-03-30"
    assert multi["patient"] == {"age": 51, "gender": "female"}


def test_failed_files_are_reported_and_the_rest_go_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(LETTERS / "maximus-notice.txt", tmp_path / "a.txt")
    shutil.copy(FIXTURES / "invalid" / "not-a-letter.txt", tmp_path / "b.txt")
    shutil.copy(FIXTURES / "invalid" / "truncated.pdf", tmp_path / "c.pdf")
    (tmp_path / "d.pdf").write_bytes(make_pdf((LETTERS / "professional-review.txt").read_text(), encrypt=True))
    code = main(["parse", "--json", str(tmp_path), str(tmp_path / "missing.txt")])
    out, err = capsys.readouterr()
    assert code == 1
    assert [json.loads(line)["case_number"] for line in out.splitlines()] == ["CM13-0100003", "CM15-0100004"]
    errors = err.strip().splitlines()
    assert len(errors) == 3
    assert errors[0].startswith(f"error: {tmp_path / 'b.txt'}: [letter-layout]")
    assert errors[1].startswith(f"error: {tmp_path / 'c.pdf'}: [letter-pdf]")
    assert errors[2] == f"error: {tmp_path / 'missing.txt'}: [input] no such file"


def test_parse_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", str(LETTERS / "case-number-multi.txt")]) == 0
    out = capsys.readouterr().out
    assert "CM17-0100001" in out and "Cyclobenzaprine 7.5mg #90" in out
    assert "1 of 1 letters parsed, 4 items: 3 upheld, 1 overturned" in out


def test_no_letters_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", str(tmp_path)]) == 1
    assert "no .txt or .pdf files found" in capsys.readouterr().err


def test_convert_bundles_and_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["convert", str(LETTERS), "--out", str(out), "--validate"]) == 0
    assert "6 of 6 letters converted to FHIR R4 transaction Bundles" in capsys.readouterr().out
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"{p.stem}.bundle.json" for p in LETTERS.glob("*.txt"))
    assert main(["to-case", str(out / "case-number-multi.bundle.json")]) == 0
    case = json.loads(capsys.readouterr().out)
    assert case["case_number"] == "CM17-0100001" and len(case["items"]) == 4


def test_convert_r5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", str(LETTERS / "maximus-notice.txt"), "--out", str(tmp_path), "--fhir-version", "R5",
                 "--validate"]) == 0  # fmt: skip
    bundle = json.loads((tmp_path / "maximus-notice.bundle.json").read_text())
    response = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ClaimResponse")
    assert response["decision"]["coding"][0]["code"] == "partial"
    assert main(["to-case", str(tmp_path / "maximus-notice.bundle.json")]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["case_number"] == "CM13-0100003"


def test_convert_ndjson_with_a_bad_letter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    letters = tmp_path / "letters"
    shutil.copytree(LETTERS, letters)
    shutil.copy(FIXTURES / "invalid" / "not-a-letter.txt", letters / "zz-bad.txt")
    out = tmp_path / "ndjson"
    assert main(["convert", str(letters), "--out", str(out), "--ndjson"]) == 1
    output, err = capsys.readouterr()
    assert "6 of 7 letters converted" in output and "1 failed" in output
    bad = letters / "zz-bad.txt"
    assert (
        err.strip() == f"error: {bad}: [letter-layout] not an IMR determination letter in any known layout (at line 1)"
    )
    lines = {p.stem: p.read_text().splitlines() for p in out.glob("*.ndjson")}
    assert len(lines["ClaimResponse"]) == 6 and len(lines["Patient"]) == 6
    # one IMR organisation shared by all; a claims administrator (the PAS insurer) and a requestor each
    assert len(lines["Organization"]) == 13
    ids = [json.loads(line)["id"] for line in lines["Organization"]]
    assert len(set(ids)) == len(ids)


def test_to_case_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["to-case", str(tmp_path / "bad.json")]) == 1
    assert "[input] not JSON" in capsys.readouterr().err
    (tmp_path / "patient.json").write_text('{"resourceType": "Patient"}')
    assert main(["to-case", str(tmp_path / "patient.json")]) == 1
    assert "[mapping]" in capsys.readouterr().err


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0
    return capsys.readouterr().out


def test_version_and_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    from adapter import __version__

    assert _help(["--version"], capsys) == f"imr-adapter {__version__}\n"
    top = _help(["--help"], capsys)
    assert "``" not in top and "imr-adapter.toml" in top
    serve = _help(["serve", "--help"], capsys)
    assert "(default: 127.0.0.1" in serve and "(default: 8080)" in serve
    pull = " ".join(_help(["pull", "--help"], capsys).split())
    assert "IMR_PAYER_AUTH__TOKEN" in pull and "IMR_EHR" not in pull
    assert "IMR_EHR_AUTH__TOKEN" in " ".join(_help(["push", "--help"], capsys).split())


def _column(table: str, n: int) -> str:
    """The text of a table's n-th column, its wrapped lines joined again."""
    cells = [line.split("│")[n].strip() for line in table.splitlines() if line.count("│") >= 4]
    return " ".join(cell for cell in cells if cell)


def test_determine_takes_folders_and_its_table_fits_100_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(LETTERS / "case-number-modified.txt", tmp_path / "letter.txt")
    (tmp_path / "requests").mkdir()
    shutil.copy(FIXTURES / "requests" / "lumbar-mri.json", tmp_path / "requests" / "mri.json")
    assert main(["determine", "--json", str(tmp_path)]) == 0
    answers = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(a["input"]).name for a in answers] == ["letter.txt", "mri.json"]
    # the disputed part of a modified request, without the letter's framing words
    requests = [item["request"] for item in answers[0]["items"]]
    assert requests == ["Chiropractic manipulation for the cervical spine 6 sessions", "hot/cold therapy unit purchase"]
    assert main(["determine", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert max(len(line) for line in table.splitlines()) <= 100
    why = _column(table, 3)
    for answer in answers:
        for item in answer["items"]:  # every rationale whole, its guideline citation included
            assert " ".join(item["rationale"].split()) in why
    assert "was the original request" not in table
    # a pended item says what is missing: each criterion with its LOINC codes and its question
    for item in answers[1]["items"]:
        assert item["action"] == "A4" and item["documentation"], item
        for need in item["documentation"]:
            assert f"missing ({need['criterion']}, LOINC {', '.join(need['loinc'])}):" in why
            assert " ".join(need["question"].split()) in why


def test_determine_reports_what_it_cannot_read_in_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(FIXTURES / "invalid" / "not-a-letter.txt", tmp_path / "a.txt")
    (tmp_path / "b.json").write_text("[1, 2]")
    assert main(["determine", str(tmp_path), str(tmp_path / "missing.pdf")]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert errors == [
        f"error: {tmp_path / 'a.txt'}: [letter-layout] not an IMR determination letter in any known layout (at line 1)",
        f"error: {tmp_path / 'b.json'}: [input] not a FHIR resource",
        f"error: {tmp_path / 'missing.pdf'}: [input] no such file",
    ]
    assert main(["determine", str(tmp_path / "requests")]) == 1


def test_serve_on_a_port_in_use_is_one_line_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: [config] cannot listen on 127.0.0.1:{port}: Address already in use "
        "(another process is listening there: stop it, or choose another --port)\n"
    )
    assert not (tmp_path / ".state").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file or directory (name the clients' JWKS file)"),
        ("{not json", "not JSON"),
        ('{"keys": []}', 'no keys; expected a JWKS, {"keys": [{"kty": ..., "kid": ...}, ...]}'),
        ('{"keys": [{"kty": "RSA", "n": "x"}]}', "a key that cannot be used"),
    ],
)
def test_serve_with_a_broken_jwks_is_one_line_and_never_says_serving(
    content: str | None,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    if content is not None:
        (tmp_path / "jwks.json").write_text(content)
    (tmp_path / "imr-adapter.toml").write_text(
        '[service]\njwks = "jwks.json"\naudience = "http://127.0.0.1:8080/fhir"\nissuer = "https://ehr.example"\n'
    )
    assert main(["serve", "--port", str(free_port())]) == 1
    out, err = capfd.readouterr()
    assert err.startswith("error: [auth-config] service.jwks: jwks.json: ") and message in err
    assert err.count("\n") == 1 and "serving" not in out + err


def test_facts_prints_every_fact_with_its_status_quote_and_source(capsys: pytest.CaptureFixture[str]) -> None:
    """Not only the facts a rule used: the normal neurologic exam and the absent red flags of the MRI request
    are there with the sentence each rests on and where it came from."""
    assert main(["facts", "--json", str(FIXTURES / "requests" / "lumbar-mri.json")]) == 0
    [answer] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    [item] = answer["items"]
    assert item["facts"]["category"] == "mri-spine" and item["facts"]["body_region"] == "lumbar"
    neuro, flags = item["evidence"]["neurologic_deficit"], item["evidence"]["red_flags"]
    assert neuro["status"] == "absent" and "strength 5/5" in neuro["quote"]
    assert neuro["source"].startswith("ServiceRequest/lumbar-mri")
    assert flags["status"] == "absent" and "no fever" in flags["quote"]
    assert set(item["evidence"]) >= {"functional_improvement", "pain_relief", "conservative_care_failed"}
    assert main(["facts", str(FIXTURES / "requests" / "lumbar-mri.json")]) == 0
    table = capsys.readouterr().out
    assert "neurologic_deficit" in table and "absent" in table and "spinal_instability_diagnosis" in table


def test_the_demo_ends_with_three_commands_that_work_from_where_it_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapter.cli.demo import next_steps
    from adapter.config import load_settings

    monkeypatch.chdir(tmp_path)
    (determine, _), (serve, _), (curl, _) = next_steps()
    assert determine.split()[1] == "determine" and Path(determine.split()[2]).is_dir()
    variable, command = serve.split()[0], serve.split()[1:]
    assert command[1:] == ["serve"] and variable.startswith("IMR_CONFIG=")
    monkeypatch.setenv("IMR_CONFIG", variable.removeprefix("IMR_CONFIG="))
    assert "example-ehr-token" in load_settings().service.tokens  # the config the curl's token comes from
    assert curl.startswith("curl -X POST http://127.0.0.1:8080/fhir/ServiceRequest ")
    assert Path(curl.rsplit("@", 1)[1]).is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--port", "99999"], "argument --port: '99999' is not a port (a number from 1 to 65535)"),
        (["serve", "--port", "http"], "argument --port: 'http' is not a port"),
        (["sync", "--listen", "abc"], "argument --listen: 'abc' is not a port"),
    ],
)
def test_a_wrong_port_is_a_usage_error(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2 and message in capsys.readouterr().err


def test_sync_listening_on_a_port_in_use_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["sync", "--listen", f"127.0.0.1:{port}"]) == 1
    assert capsys.readouterr().err == (
        f"error: [config] cannot listen on 127.0.0.1:{port}: Address already in use "
        "(another process is listening there: stop it, or choose another --listen port)\n"
    )


@pytest.mark.parametrize("scopes", ["garbage scope", "system/ClaimResponse.reed", ""])
def test_serve_with_a_token_whose_scope_grants_nothing_is_one_line(
    scopes: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "imr-adapter.toml").write_text(f'[service.tokens]\nsecret-token = "{scopes}"\n')
    assert main(["serve", "--port", str(free_port())]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: [auth-config] service.tokens: ") and "is not a SMART scope" in err
    assert err.count("\n") == 1 and "secret-token" not in err


def test_an_error_is_one_line_however_long(httpx_mock: Any, capsys: pytest.CaptureFixture[str]) -> None:
    response = {"resourceType": "ClaimResponse", "id": "x" * 60, "status": "active", "use": "preauthorization"}
    searchset = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": response}]}
    httpx_mock.add_response(json=searchset, is_reusable=True, is_optional=True)
    assert main(["pull", "--server", "http://payer.test/fhir", "--auth", "none"]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 1 and len(errors[0]) > 80 and errors[0].startswith("error: [")


def test_a_commands_flags_win_over_the_environment_and_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command resolves its settings in one place: imr-adapter.toml, then IMR_* variables, then its flags."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "imr-adapter.toml").write_text('[service]\nstate_url = "sqlite:///from-the-file.db"\n')
    monkeypatch.setenv("IMR_DETERMINATION__ADVERSE", "decide")
    parse = build_parser().parse_args
    assert resolve(parse(["determine", "x.txt"])).determination.adverse == "decide"
    assert resolve(parse(["determine", "--adverse", "pend", "x.txt"])).determination.adverse == "pend"
    assert resolve(parse(["db", "current"])).service.state_url == "sqlite:///from-the-file.db"
    flags = ["sync", "--state", "sqlite:///from-a-flag.db", "--payer", "http://127.0.0.1:9/fhir"]
    settings = resolve(parse(flags))
    assert (settings.service.state_url, settings.payer) == ("sqlite:///from-a-flag.db", "http://127.0.0.1:9/fhir")
