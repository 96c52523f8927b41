"""``imr-adapter serve`` as a user runs it: a subprocess with its own config file, which says "serving" only
once it answers, logs each request, and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapter.sandbox import free_port
from tests.conftest import ROOT

#: Bounds the wait for the service's start (tables and NLP load first); not a measure of anything.
START_WITHIN = 120.0


@dataclass
class Service:
    """A running ``imr-adapter serve`` and the lines it has logged so far."""

    process: subprocess.Popen[str]
    base: str
    lines: list[str] = field(default_factory=list)

    def logged(self, text: str, within: float = 10.0) -> bool:
        """Whether a line holding ``text`` was logged, waiting up to ``within`` seconds for it."""
        deadline = time.monotonic() + within
        while not any(text in line for line in self.lines):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))


def start(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> Service:
    """``imr-adapter serve`` on a free port, once it has said "serving"."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "adapter.cli", "serve", "--port", str(port), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
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
    return service


def stop(service: Service) -> None:
    service.process.send_signal(signal.SIGTERM)
    assert service.process.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once stopped


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Service]:
    """The service run in ``tmp_path`` with the ``imr-adapter.toml`` written there, the answers kept (no
    payer); stopped with SIGTERM afterwards."""
    (tmp_path / "imr-adapter.toml").write_text(
        '[service]\nlog_format = "text"\nstate_url = "sqlite:///state.db"\n'
        '[service.tokens]\npayer-token = "system/ClaimResponse.read"\n'
    )
    service = start([], cwd=tmp_path)
    yield service
    stop(service)


def test_serving_is_said_once_it_answers_and_text_logs_carry_method_route_status_and_ms(serve: Service) -> None:
    serving = next(line for line in serve.lines if "serving" in line)
    assert f"serving {serve.base} (API page: /docs)" in serving
    # the line was written once the port listened: the first request after it is answered
    assert httpx.get(f"{serve.base}/metadata").status_code == 200
    assert httpx.get(f"{serve.base}/ClaimResponse/nope").status_code == 401
    assert httpx.get(f"{serve.base}/ClaimResponse", headers={"Authorization": "Bearer payer-token"}).is_success
    assert httpx.get(serve.base.removesuffix("/fhir") + "/docs").status_code == 200
    for request in ("GET /fhir/metadata 200 ", "GET /fhir/ClaimResponse/{rid} 401 ", "GET /fhir/ClaimResponse 200 ",
                    "GET /docs 200 "):  # fmt: skip
        assert serve.logged(request), serve.lines
    assert all(line.endswith(" ms") or " ms who=" in line for line in serve.lines if " GET " in line)
    assert "payer-token" not in "\n".join(serve.lines)


#: The request collection the README points to, and the config it runs with.
HTTP = ROOT / "fixtures" / "http"
_REFERENCE = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")


@dataclass
class Call:
    """One request of a ``.http`` file (VS Code REST Client syntax), before its ``{{...}}`` are filled."""

    file: Path
    title: str
    name: str | None
    expect: int
    method: str
    url: str
    headers: dict[str, str]
    body: str


def calls(path: Path) -> tuple[dict[str, str], list[Call]]:
    """The file's variables (``@name = value``) and its requests (``###`` blocks) in order."""
    text = path.read_text()
    variables = dict(re.findall(r"^@(\w+)\s*=\s*(.+?)\s*$", text, re.M))
    found = []
    for block in text.split("\n###")[1:]:
        title, *lines = block.split("\n")
        name, expect = None, None
        while lines and (lines[0].startswith("#") or not lines[0].strip()):
            line = lines.pop(0)
            if named := re.match(r"#\s*@name\s+(\S+)", line):
                name = named[1]
            if expected := re.match(r"#\s*expect\s+(\d{3})\b", line):
                expect = int(expected[1])
        assert expect is not None, f"{path.name}: '{title.strip()}' has no '# expect STATUS' line"
        method, url = lines.pop(0).split(" ", 1)
        headers = {}
        while lines and lines[0].strip():
            key, _, value = lines.pop(0).partition(":")
            headers[key.strip()] = value.strip()
        found.append(Call(path, title.strip(), name, expect, method, url.strip(), headers, "\n".join(lines).strip()))
    return variables, found


def fill(text: str, variables: dict[str, str], named: dict[str, httpx.Response]) -> str:
    """``{{variable}}``, ``{{name.response.body.$.a.b[0].c}}`` and ``{{name.response.headers.X}}`` filled in."""

    def one(match: re.Match[str]) -> str:
        key = match[1]
        if key in variables:
            return fill(variables[key], variables, named)
        name, _, rest = key.partition(".response.")
        kind, _, path = rest.partition(".")
        if kind == "headers":
            return named[name].headers[path]
        value: Any = named[name].json()
        for part in re.findall(r"\w+|\[\d+\]", path.removeprefix("$")):
            value = value[int(part[1:-1])] if part.startswith("[") else value[part]
        return str(value)

    return _REFERENCE.sub(one, text)


def _run(call: Call, variables: dict[str, str], named: dict[str, httpx.Response], root: str) -> httpx.Response:
    url = fill(call.url, variables, named).replace("http://127.0.0.1:8080", root)
    headers = {k: fill(v, variables, named) for k, v in call.headers.items()}
    if call.body.startswith("< "):
        content = (call.file.parent / call.body[2:].strip()).read_bytes()
    else:
        content = fill(call.body, variables, named).encode()
    return httpx.request(call.method, url, headers=headers, content=content or None, timeout=60)


@pytest.fixture
def collection_service(tmp_path: Path) -> Iterator[Service]:
    """The service as the README starts it: from the repository root with the collection's config (the state
    in tmp_path, not the user's)."""
    # the API page's test calls every route without a token: more failed logins a second than the default allows
    env = {"IMR_CONFIG": str(HTTP / "imr-adapter.toml"), "IMR_SERVICE__AUTH_FAILURE_RATE": "1000"}
    service = start(["--state", f"sqlite:///{tmp_path}/state.db"], cwd=ROOT, env=env)
    yield service
    stop(service)


def test_the_request_collection_gets_the_answers_it_expects_and_covers_every_endpoint(
    collection_service: Service,
) -> None:
    root = collection_service.base.removesuffix("/fhir")
    sent: list[tuple[str, str]] = []
    for path in sorted(HTTP.glob("*.http")):
        variables, requests = calls(path)
        named: dict[str, httpx.Response] = {}
        for call in requests:
            answer = _run(call, variables, named, root)
            assert answer.status_code == call.expect, f"{path.name}: {call.title}: {answer.text[:500]}"
            if call.name:
                named[call.name] = answer
            sent.append((call.method, httpx.URL(str(answer.request.url)).path))
    document = httpx.get(f"{root}/openapi.json").json()
    for template, operations in document["paths"].items():
        # the reads of stored resources by type are one endpoint: a call of any of them does
        template = re.sub(r"^/fhir/[A-Z]\w+/\{rid\}$", "/fhir/{type}/{rid}", template)
        pattern = re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)) + "$")
        for method in operations:
            assert any(m == method.upper() and pattern.match(p) for m, p in sent), f"no call of {method} {template}"


def test_the_api_page_describes_only_what_is_true(collection_service: Service) -> None:
    root = collection_service.base.removesuffix("/fhir")
    page = httpx.get(f"{root}/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text and "/openapi.json" in page.text
    document = httpx.get(f"{root}/openapi.json").json()
    # no 422 validation answers (a malformed request is a 400 OperationOutcome) and no plain JSON
    assert "HTTPValidationError" not in json.dumps(document) and "application/json" not in json.dumps(document)
    assert not any("422" in op["responses"] for ops in document["paths"].values() for op in ops.values())
    for template, operations in document["paths"].items():
        url = root + re.sub(r"\{\w+\}", "no-such-id", template)
        for method, operation in operations.items():
            answer = httpx.request(method.upper(), url, headers={"Content-Type": "application/fhir+json"})
            if "security" in operation:  # a route said to need a bearer token refuses a call without one
                assert answer.status_code == 401, f"{method} {template}: {answer.status_code}"
            else:  # and one said not to, does not
                assert answer.status_code not in (401, 403), f"{method} {template}: {answer.status_code}"


def test_the_readme_shows_the_collections_config_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text()
    assert (HTTP / "imr-adapter.toml").read_text().strip() in readme
