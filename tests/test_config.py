"""Settings: a config file that cannot work is one line naming the file (or variable or flag), the setting and
what it should be; never a traceback, never a silent start without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.cli import main
from adapter.config import load_settings
from adapter.errors import ConfigError


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IMR_CONFIG", raising=False)
    return tmp_path


def _error(toml: str) -> str:
    Path("imr-adapter.toml").write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    return caught.value.message


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[service]\ntokens = ["abc"]\n', 'imr-adapter.toml: service.tokens: expected a table of token = "scopes"'),
        ("[service]\ntokens = { abc = 3 }\n", 'service.tokens: expected a table of token = "scopes" (got 3)'),
        ('[service]\nlog_format = "xml"\n', "service.log_format: expected one of 'json' or 'text' (got 'xml')"),
        ('[service]\nworkers = "many"\n', "service.workers: expected a whole number (got 'many')"),
        ("[service]\nworkers = 0\n", "service.workers: expected a number >= 1 (got 0)"),
        ("timeout = -1\n", "timeout: expected a number > 0.0 (got -1)"),
        ("service = 3\n", "service: expected a table (got 3)"),
        ("[service]\nissuer = 3\n", "service.issuer: expected an issuer URL or a list of them"),
        ("[service]\ntokenz = {}\n", "service.tokenz: unknown setting; did you mean service.tokens?"),
        ("[payer_auth]\ntpye = 'smart'\n", "payer_auth.tpye: unknown setting; did you mean payer_auth.type?"),
        ("ehr = 'http://ehr/fhir'\n", "ehr: unknown setting; did you mean ehr_url?"),
        ("x = \n", "imr-adapter.toml: not valid TOML: Invalid value (at line 1, column 5)"),
        ('[service]\notlp_endpoint = "collector:4318"\n', "service.otlp_endpoint: expected an OTLP/HTTP endpoint"),
        ('[service]\nbase_url = "adapter.example/fhir"\n', "service.base_url: expected this service's FHIR base URL"),
        ('ehr_url = "ehr.example/fhir"\n', "ehr_url: expected a FHIR base URL such as https://ehr.example/fhir (got"),
        (
            'payer_url = "ftp://u:secret@payer"\n',
            "payer_url: expected a FHIR base URL such as https://ehr.example/fhir, or",
        ),
        (
            '[service]\nstate_url = "mysql://u:secret@db/imr"\n',
            "service.state_url: expected sqlite:///PATH or postgresql://user:password@host/db (got mysql://...)",
        ),
    ],
)
def test_a_wrong_setting_names_the_file_the_key_and_what_it_should_be(toml: str, message: str) -> None:
    assert message in _error(toml)


def test_secrets_are_not_quoted_back() -> None:
    message = _error("[payer_auth]\ntype = 'bearer'\ntoken = 123456789\n")
    assert message == "imr-adapter.toml: payer_auth.token: expected a string (in quotes)"
    message = _error("[service.tokens]\nsecret-token-value = ['system/*.read']\n")
    assert "secret-token-value" not in message


def test_an_environment_variable_or_a_flag_is_named_where_it_was_set(monkeypatch: pytest.MonkeyPatch) -> None:
    Path("imr-adapter.toml").write_text("[service]\nworkers = 2\n")
    monkeypatch.setenv("IMR_SERVICE__WORKERS", "lots")
    with pytest.raises(ConfigError, match=r"^\[config\] IMR_SERVICE__WORKERS: service.workers: expected a whole"):
        load_settings()
    monkeypatch.delenv("IMR_SERVICE__WORKERS")
    with pytest.raises(ConfigError, match=r"^\[config\] --timeout: expected a number > 0"):
        load_settings(timeout=-3)


def test_the_file_imr_config_names_must_exist(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMR_CONFIG", str(workdir / "missing.toml"))
    with pytest.raises(ConfigError, match="missing.toml: no such file \\(named by IMR_CONFIG"):
        load_settings()
    monkeypatch.setenv("IMR_CONFIG", str(workdir))
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings()
    (workdir / "binary.toml").write_bytes(b"\xff\xfe\x00")
    monkeypatch.setenv("IMR_CONFIG", str(workdir / "binary.toml"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_settings()


def test_a_good_file_is_read_and_no_file_is_the_defaults(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().service.tokens == {}
    (workdir / "elsewhere.toml").write_text('[service.tokens]\nabc = "system/*.read"\n')
    monkeypatch.setenv("IMR_CONFIG", str(workdir / "elsewhere.toml"))
    assert load_settings().service.tokens == {"abc": "system/*.read"}


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["sync", "--once"], ["db", "current"], ["pull"]])
def test_the_cli_prints_one_line_and_exits_1(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    Path("imr-adapter.toml").write_text('[service]\ntokens = ["abc"]\n')
    assert main(command) == 1
    out, err = capsys.readouterr()
    assert err == 'error: [config] imr-adapter.toml: service.tokens: expected a table of token = "scopes"\n'
    assert not Path(".state").exists()  # nothing was started or created


def test_a_state_url_flag_of_an_unknown_kind_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "current", "--state", "foo://x"]) == 1
    assert capsys.readouterr().err == (
        "error: [config] --state: expected sqlite:///PATH or postgresql://user:password@host/db (got foo://...)\n"
    )
    assert not Path("foo:").exists()  # not taken for a file name


def test_server_urls_given_as_flags_are_checked_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--payer", "payer.example", "--port", "1"]) == 1
    assert capsys.readouterr().err.startswith("error: [config] --payer: expected a FHIR base URL")
    assert main(["check", "--server", "localhost:8181/fhir"]) == 1
    assert capsys.readouterr().err.startswith("error: [config] --server: expected a FHIR base URL")


def test_a_table_in_an_environment_variable_must_be_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMR_SERVICE__TOKENS", "abc=system/*.read")
    with pytest.raises(ConfigError, match=r"^\[config\] IMR_SERVICE__TOKENS: not valid JSON; a table or a list"):
        load_settings()
    monkeypatch.setenv("IMR_SERVICE__TOKENS", '{"abc": "system/*.read"}')
    assert load_settings().service.tokens == {"abc": "system/*.read"}
