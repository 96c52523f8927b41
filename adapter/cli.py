"""The ``imr-adapter`` command line.

Exit codes: 0 all inputs handled, 1 some inputs failed (each named on stderr in one line), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import BrokenExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from adapter import sandbox
from adapter.actions import ReviewAction
from adapter.config import AuthSettings, Settings, load_settings, state_url_problem, url_problem
from adapter.demo import run_demo
from adapter.determination import AdversePolicy, RequestFacts, determine_all, facts_from_letter, load_rules
from adapter.determination.facts import letter_summary
from adapter.errors import AdapterError, ConfigError, FHIRServerError, InputError, StateError, TransportError
from adapter.exchange import AsyncFHIRClient, FHIRClient
from adapter.exchange.check import ConformanceCheck
from adapter.exchange.pull import pull_cases
from adapter.exchange.push import push_letters
from adapter.fhir import bundle_to_case, case_to_bundle, r4_to_r5, validate_bundle
from adapter.fhir.build import pas_bundle
from adapter.fhir.conformance import check_request
from adapter.fhir.ndjson import import_resources
from adapter.fhir.request_facts import requested_services
from adapter.inputs import LETTER_SUFFIXES, letter_paths, read_letter
from adapter.letters import parse_letter
from adapter.model import Decision, IMRCase
from adapter.service import Wiring, wire
from adapter.service.hooks import HookListener, subscribe, unsubscribe
from adapter.service.server import cannot_listen
from adapter.tables import load_tables
from adapter.version import __version__

#: The letters the main job runs on when it is given none: the synthetic fixtures shipped with the project.
DEFAULT_LETTERS = Path(__file__).resolve().parent.parent / "fixtures" / "letters"

_stdout = Console(highlight=False, soft_wrap=True)  # a line of text is never broken; tables fit the width
if not _stdout.is_terminal:
    _stdout.width = 100  # tables written to a file or a pipe fit 100 columns
_stderr = Console(stderr=True, highlight=False, soft_wrap=True)  # an error is one line, however long

T = TypeVar("T")


@dataclass
class Outcome:
    """What became of one input: a value, or the error that stopped it (the batch goes on)."""

    path: Path
    value: Any = None
    error: AdapterError | None = None


def _each(paths: list[Path], work: Callable[[Path], T], *, label: str, progress: bool) -> Iterator[Outcome]:
    """Run ``work`` on each path in turn with a progress bar; an AdapterError is kept, never raised."""
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_stderr,
        disable=not progress,
        transient=True,
    )
    with bar:
        task = bar.add_task(label, total=len(paths))
        for path in paths:
            try:
                yield Outcome(path, value=work(path))
            except AdapterError as exc:
                yield Outcome(path, error=exc)
            bar.advance(task)


def _error_line(path: Path, error: AdapterError) -> str:
    where = f" (at {error.location})" if error.location and error.location != str(path) else ""
    return f"error: {path}: [{error.code}] {error.message}{where}"


def _report_errors(outcomes: list[Outcome]) -> int:
    failed = [o for o in outcomes if o.error is not None]
    for outcome in failed:
        assert outcome.error is not None
        _stderr.print(_error_line(outcome.path, outcome.error), markup=False, soft_wrap=True)
    return 1 if failed else 0


def _letters(inputs: Sequence[str | Path], suffixes: frozenset[str] = LETTER_SUFFIXES) -> list[Path]:
    paths = list(letter_paths(inputs, suffixes))
    if not paths:
        raise InputError(f"no {' or '.join(sorted(suffixes, reverse=True))} files found in the given inputs")
    return paths


def _parse_path(path: Path) -> IMRCase:
    return parse_letter(read_letter(path))


def _case_json(path: Path | None, case: IMRCase) -> bytes:
    data = case.model_dump(mode="json", exclude={"source"})
    if case.source is not None:
        data["source"] = {"media_type": case.source.media_type, "sha1": case.source.sha1}
        if path is not None:
            data["source"]["file"] = str(path)
    return orjson.dumps(data)


def _summary_table(outcomes: list[Outcome]) -> Table:
    table = Table(title="IMR determination letters", show_lines=True, expand=True)
    table.add_column("letter", ratio=1, min_width=22, overflow="fold")
    table.add_column("disputed item", ratio=2)
    table.add_column("decision", no_wrap=True)
    table.add_column("basis", no_wrap=True)
    for outcome in outcomes:
        case: IMRCase | None = outcome.value
        if case is None:
            continue
        patient = " ".join(str(v) for v in (case.patient.age, case.patient.gender) if v is not None) or "-"
        letter = (
            f"[bold]{escape(case.case_number or outcome.path.name)}[/]\n"
            f"[dim]{case.layout.value}[/]\ndecided {case.dates.decision or '-'}\npatient {patient}"
        )
        for n, item in enumerate(case.items):
            decision = "[red]upheld[/]" if item.decision is Decision.UPHELD else "[green]overturned[/]"
            table.add_row(letter if n == 0 else "", escape(item.requested), decision, item.guideline_basis.value)
    return table


def _progress(args: argparse.Namespace) -> bool:
    return not args.no_progress and _stderr.is_terminal


def cmd_parse(args: argparse.Namespace) -> int:
    paths = _letters(args.inputs)
    if args.json:
        out, outcomes = sys.stdout.buffer, []
        for outcome in _each(paths, _parse_path, label="parsing", progress=_progress(args)):
            if outcome.value is not None:
                out.write(_case_json(outcome.path, outcome.value) + b"\n")
                outcome.value = None  # keep memory flat over large batches
            outcomes.append(outcome)
        out.flush()
        return _report_errors(outcomes)
    outcomes = list(_each(paths, _parse_path, label="parsing", progress=_progress(args)))
    _stdout.print(_summary_table(outcomes))
    cases = [o.value for o in outcomes if o.value is not None]
    items = [i for case in cases for i in case.items]
    upheld = sum(1 for i in items if i.decision is Decision.UPHELD)
    _stdout.print(
        f"{len(cases)} of {len(outcomes)} letters parsed, {len(items)} items: "
        f"{upheld} upheld, {len(items) - upheld} overturned"
    )
    return _report_errors(outcomes)


class _NDJSONWriter:
    """One NDJSON file per resource type; shared resources (same id) written once."""

    SHARED = frozenset({"Organization"})

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[str, IO[bytes]] = {}
        self.seen: set[str] = set()

    def write(self, bundle: dict[str, Any]) -> int:
        written = 0
        for resource in import_resources(bundle):
            rtype = resource["resourceType"]
            if rtype in self.SHARED:
                if resource["id"] in self.seen:
                    continue
                self.seen.add(resource["id"])
            if rtype not in self.files:
                self.files[rtype] = (self.folder / f"{rtype}.ndjson").open("wb")
            self.files[rtype].write(orjson.dumps(resource) + b"\n")
            written += 1
        return written

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()


def cmd_convert(args: argparse.Namespace) -> int:
    paths = _letters(args.inputs)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder: {exc.strerror or exc}", location=str(out)) from exc
    tables = load_tables()
    generated_at = datetime.now(UTC)
    if args.pas and (args.ndjson or args.fhir_version != "R4"):
        raise InputError("--pas writes Da Vinci PAS request Bundles, which are FHIR R4 JSON (no --ndjson, no R5)")
    ndjson = _NDJSONWriter(out) if args.ndjson else None
    names: set[str] = set()

    def convert(path: Path) -> int:
        case = parse_letter(read_letter(path))
        if args.pas:
            bundle = pas_bundle(case, tables=tables, generated_at=generated_at)
            check_request(bundle)
        else:
            bundle = case_to_bundle(case, tables=tables, generated_at=generated_at)
        if args.fhir_version == "R5":
            bundle = r4_to_r5(bundle)
        if args.validate:
            validate_bundle(bundle, args.fhir_version)
        if ndjson is not None:
            return ndjson.write(bundle)
        name = (case.case_number or path.stem) if args.pas else path.stem
        while name in names:
            name += "_"
        names.add(name)
        suffix = "pas" if args.pas else "bundle"
        (out / f"{name}.{suffix}.json").write_bytes(orjson.dumps(bundle, option=orjson.OPT_INDENT_2))
        return len(bundle["entry"])

    outcomes: list[Outcome] = []
    resources = 0
    try:
        for outcome in _each(paths, convert, label="converting", progress=_progress(args)):
            resources += outcome.value or 0
            outcome.value = None
            outcomes.append(outcome)
    finally:
        if ndjson is not None:
            ndjson.close()
    failed = sum(1 for o in outcomes if o.error is not None)
    what = (
        "NDJSON files (one per resource type)"
        if ndjson
        else "PAS request Bundles"
        if args.pas
        else "transaction Bundles"
    )
    _stdout.print(
        f"{len(outcomes) - failed} of {len(outcomes)} letters converted to FHIR {args.fhir_version} {what} "
        f"in {out}/: {resources} resources" + (f"; {failed} failed" if failed else "")
    )
    return _report_errors(outcomes)


def cmd_to_case(args: argparse.Namespace) -> int:
    path = Path(args.bundle)
    try:
        data = orjson.loads(read_letter(path))
    except orjson.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc}", location=str(path)) from exc
    sys.stdout.buffer.write(_case_json(None, bundle_to_case(data)) + b"\n")
    return 0


def _server(args: argparse.Namespace, role: str) -> tuple[Settings, str, AuthSettings]:
    """The server URL and auth: flags over the config file and environment, those over the sandbox."""
    settings = load_settings(timeout=args.timeout, concurrency=getattr(args, "concurrency", None))
    if args.server and (problem := url_problem(args.server)):
        raise ConfigError(f"--server: {problem}")
    url = args.server or (settings.ehr if role == "ehr" else settings.payer)
    if args.auth is not None:
        fields = ("token", "username", "password", "client_id", "private_key", "alg", "scope", "token_url")
        values = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
        auth = AuthSettings.model_validate({"type": args.auth, **values})
    else:  # a known server (the EHR or the payer, as configured) brings its own auth
        known = {settings.ehr.rstrip("/"): "ehr", settings.payer.rstrip("/"): "payer"}
        match = known.get(url.rstrip("/"))
        auth = settings.auth(match) if match else AuthSettings()
    return settings, url, auth


def cmd_push(args: argparse.Namespace) -> int:
    paths = _letters(args.inputs)
    settings, url, auth = _server(args, "ehr")
    client = AsyncFHIRClient(
        url, auth=auth, timeout=settings.timeout, retry=settings.retry, concurrency=settings.concurrency
    )
    bar = Progress(
        TextColumn("pushing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_stderr,
        disable=not _progress(args),
        transient=True,
    )

    async def run() -> list[Any]:
        async with client:
            with bar:
                task = bar.add_task("push", total=len(paths))
                return await push_letters(paths, client, advance=lambda n: bar.advance(task, n))

    results = asyncio.run(run())
    counts = Counter(r.status for r in results)
    table = Table(title=f"push to {url}")
    for column in ("created", "already present", "failed", "resources created"):
        table.add_column(column, justify="right")
    table.add_row(
        str(counts["created"]),
        str(counts["already present"]),
        str(counts["failed"]),
        str(sum(r.created for r in results)),
    )
    _stdout.print(table)
    failed = [r for r in results if r.error is not None]
    for result in failed:
        assert result.error is not None
        _stderr.print(_error_line(result.path, result.error), markup=False, soft_wrap=True)
    if failed:
        listing = "\n".join(str(r.path) for r in failed) + "\n"
        if args.failed_list:
            Path(args.failed_list).write_text(listing)
            _stderr.print(f"{len(failed)} failed; their paths are in {args.failed_list} to push again", markup=False)
    return 1 if failed else 0


def cmd_pull(args: argparse.Namespace) -> int:
    settings, url, auth = _server(args, "payer")
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError as exc:
            raise InputError(f"--since {args.since!r} is not an ISO date or date-time") from exc
    cases, errors = [], 0
    with FHIRClient(url, auth=auth, timeout=settings.timeout, retry=settings.retry) as client:
        for found in pull_cases(client, since=since):
            if isinstance(found, AdapterError):
                errors += 1
                _stderr.print(f"error: [{found.code}] {found.message} (at {found.location})", markup=False)
            elif args.json:
                sys.stdout.buffer.write(_case_json(None, found) + b"\n")
            else:
                cases.append(Outcome(Path(found.case_number or "case"), value=found))
    if not args.json:
        _stdout.print(_summary_table(cases))
        _stdout.print(f"{len(cases)} cases pulled from {url}" + (f"; {errors} could not be read" if errors else ""))
    return 1 if errors else 0


def cmd_check(args: argparse.Namespace) -> int:
    settings, url, auth = _server(args, "ehr")
    with FHIRClient(url, auth=auth, timeout=settings.timeout, retry=settings.retry) as client:
        results = ConformanceCheck(client).run()
    table = Table(title=f"FHIR conformance check: {url}")
    for column in ("check", "result", "detail", "ms"):
        table.add_column(column, overflow="fold")
    for result in results:
        mark = "[green]pass[/]" if result.passed else "[red]FAIL[/]"
        table.add_row(result.name, mark, escape(result.detail), f"{result.milliseconds:.0f}")
    _stdout.print(table)
    passed = sum(r.passed for r in results)
    _stdout.print(f"{passed} of {len(results)} checks passed")
    return 0 if passed == len(results) else 1


def _request_facts(path: Path) -> tuple[str | None, list[tuple[str, RequestFacts]]]:
    """One input (a letter, a ServiceRequest or a Bundle) -> its case number and each requested service with
    the facts the engine reads for it."""
    data = read_letter(path)
    if path.suffix.lower() == ".json" or data.lstrip()[:1] == b"{":
        try:
            resource = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"not JSON: {exc}", location=str(path)) from exc
        if not isinstance(resource, dict):
            raise InputError("not a FHIR resource", location=str(path))
        return None, [(r.facts.request, r.facts) for r in requested_services(resource)]
    case = parse_letter(data)
    summary = letter_summary(case)
    return case.case_number, [(i.requested, facts_from_letter(case, i, summary)) for i in case.items]


def _determine_path(path: Path, adverse: AdversePolicy = "pend") -> dict[str, Any]:
    """One input (a letter, a ServiceRequest or a Bundle) -> its determinations as a JSON-ready dict."""
    case_number, found = _request_facts(path)
    answers = determine_all([facts for _, facts in found], load_rules(), adverse=adverse)
    return {
        "input": str(path),
        "case_number": case_number,
        "items": [
            {"request": request, **answer.model_dump(mode="json", exclude_none=True)}
            for (request, _), answer in zip(found, answers, strict=True)
        ],
    }


def _facts_path(path: Path) -> dict[str, Any]:
    """One input -> every fact the engine reads for each requested service: the request's own facts, and each
    documentation fact with its status, quote and source (not only those a rule used)."""
    case_number, found = _request_facts(path)
    items = []
    for request, facts in found:
        values = facts.model_dump(mode="json", exclude={"evidence"})
        evidence = {fact: f.model_dump(mode="json", exclude_none=True) for fact, f in facts.evidence.items()}
        items.append({"request": request, "facts": values, "evidence": evidence})
    return {"input": str(path), "case_number": case_number, "items": items}


def _print_json(outcomes: list[Outcome]) -> int:
    """One JSON object per input read, one line each; the errors one line each on stderr."""
    for outcome in outcomes:
        if outcome.value is not None:
            sys.stdout.buffer.write(orjson.dumps(outcome.value) + b"\n")
    sys.stdout.flush()
    return _report_errors(outcomes)


def cmd_facts(args: argparse.Namespace) -> int:
    paths = _letters(args.inputs, DETERMINE_SUFFIXES)
    outcomes = list(_each(paths, _facts_path, label="reading", progress=_progress(args)))
    if args.json:
        return _print_json(outcomes)
    for outcome in outcomes:
        if outcome.value is None:
            continue
        for item in outcome.value["items"]:
            name = outcome.value["case_number"] or outcome.path.name
            table = Table(title=f"{escape(name)}: {escape(item['request'])}", show_lines=False, expand=True)
            table.add_column("fact", no_wrap=True)
            table.add_column("status", no_wrap=True)
            table.add_column("quote (source)", ratio=1, overflow="fold")
            for fact, value in item["facts"].items():
                if fact in item["evidence"]:
                    found = item["evidence"][fact]
                    colour = {"present": "green", "absent": "red"}.get(found["status"], "dim")
                    quote = f'"{found["quote"]}" ({found.get("source", "")})' if found.get("quote") else ""
                    table.add_row(fact, f"[{colour}]{found['status']}[/]", escape(quote))
                elif value not in (None, [], ""):
                    table.add_row(fact, "", escape(", ".join(value) if isinstance(value, list) else str(value)))
            _stdout.print(table)
    return _report_errors(outcomes)


#: What ``determine`` reads in a folder: letters, and FHIR requests or Bundles as JSON.
DETERMINE_SUFFIXES = LETTER_SUFFIXES | {".json"}


def cmd_determine(args: argparse.Namespace) -> int:
    paths = _letters(args.inputs, DETERMINE_SUFFIXES)
    adverse: AdversePolicy = args.adverse or load_settings().determination.adverse
    outcomes = list(_each(paths, lambda p: _determine_path(p, adverse), label="determining", progress=_progress(args)))
    if args.json:
        return _print_json(outcomes)
    _stdout.print(_determination_table(outcomes))
    return _report_errors(outcomes)


def _determination_table(outcomes: list[Outcome]) -> Table:
    """One row per requested service: the request (under its case or file), the answer, and why: the rationale
    with its guideline citation, the rules and the evidence, all wrapped, nothing cut."""
    table = Table(title="Determinations", show_lines=True, expand=True)
    table.add_column("request", ratio=2, overflow="fold")
    table.add_column("answer", no_wrap=True)
    table.add_column("why (rationale, rules, evidence)", ratio=5, overflow="fold")
    for outcome in outcomes:
        if outcome.value is None:
            continue
        for n, item in enumerate(outcome.value["items"]):
            action = item["action"] + (f" ({item['certified_quantity']:g})" if "certified_quantity" in item else "")
            if item["recommendation"] != item["action"]:
                action += f"\nrecommended {item['recommendation']}"
            request = escape(item["request"])
            if n == 0:
                request = f"[bold]{escape(outcome.value['case_number'] or outcome.path.name)}[/]\n{request}"
            why = [escape(item["rationale"])]
            if item["rules"]:
                why.append(f"[dim]rules: {escape(', '.join(item['rules']))}[/]")
            why += [
                escape(f"{e['fact']}: {e['status']}" + (f' "{e["quote"]}"' if e.get("quote") else ""))
                for e in item.get("evidence", [])
            ]
            why += [
                f"[yellow]missing ({escape(n['criterion'])}, LOINC {escape(', '.join(n['loinc']))}):[/] "
                + escape(n["question"])
                for n in item.get("documentation", [])
            ]
            table.add_row(request, f"[{ReviewAction(item['action']).colour}]{escape(action)}[/]", "\n".join(why))
    return table


def cmd_demo(args: argparse.Namespace) -> int:
    if not DEFAULT_LETTERS.is_dir():
        raise InputError("the bundled letters are missing", location=str(DEFAULT_LETTERS))
    out = Path(args.out)
    demo = run_demo(DEFAULT_LETTERS, out, log=lambda line: _stderr.print(line, markup=False))
    table = Table(title="Requests -> decisions (read back from the payer server)", show_lines=True)
    table.add_column("request", ratio=2)
    table.add_column("decision", no_wrap=True)
    table.add_column("rationale", ratio=4)
    for row in demo.rows:
        table.add_row(
            escape(row.request), f"[{ReviewAction(row.action).colour}]{escape(row.decision)}[/]", escape(row.rationale)
        )
    _stdout.print(table)
    waiting = Table(title="Waiting for a physician (review Tasks, 8 CCR 9792.9.1 due dates)")
    for column in ("request", "recommended", "clock", "due"):
        waiting.add_column(column)
    for item in demo.pended:
        action = ReviewAction(item.recommendation)
        waiting.add_row(escape(item.request), f"[{action.colour}]{action} {action.label}[/]", item.clock, item.due)
    _stdout.print(waiting)
    if demo.reviewed:
        _stdout.print(f"reviewed through the API by the demo's physician: {escape(demo.reviewed[0])} -> "
                      f"{demo.reviewed[1]} {ReviewAction(demo.reviewed[1]).label} (final on the payer)")  # fmt: skip
    _stdout.print(f"{len(demo.rows)} determinations, {len(demo.pended)} waiting for review; "
                  f"report: {out / 'imr-demo-report.html'}")  # fmt: skip
    _stdout.print("\nNext, try:", markup=False)
    for command, what in next_steps():
        _stdout.print(f"  {command}\n      {what}", markup=False, soft_wrap=True)
    return 0 if demo.rows else 1


def next_steps() -> list[tuple[str, str]]:
    """The three commands a user types after the demo (paths as seen from the working folder), and why."""
    root = DEFAULT_LETTERS.parent.parent

    def here(path: str) -> str:
        return os.path.relpath(root / path)

    cli = here(".venv/bin/imr-adapter") if (root / ".venv" / "bin" / "imr-adapter").exists() else "imr-adapter"
    config, request = here("fixtures/http/imr-adapter.toml"), here("fixtures/requests/lumbar-mri.json")
    return [
        (
            f"{cli} determine {here('fixtures/letters')}",
            "the determinations with their rules and evidence (your letters too)",
        ),
        (f"IMR_CONFIG={config} {cli} serve", "the service with your own settings (README: Run it yourself)"),
        (
            "curl -X POST http://127.0.0.1:8080/fhir/ServiceRequest -H 'Authorization: Bearer example-ehr-token' "
            f"-H 'Content-Type: application/fhir+json' --data-binary @{request}",
            "ask it, as an EHR, about a lumbar MRI (more calls: fixtures/http/*.http)",
        ),
    ]


def cmd_serve(args: argparse.Namespace) -> int:
    from adapter.service import logs, server
    from adapter.service.pipeline import warm_up

    settings = _settings(args)
    if "base_url" not in settings.service.model_fields_set:
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        service = settings.service.model_copy(update={"base_url": f"http://{host}:{args.port}/fhir"})
        settings = settings.model_copy(update={"service": service})
    logs.configure(settings.service.log_format)
    sock = server.listen(args.host, args.port)  # a port in use stops here, before any state is opened
    try:
        app = wire(settings).app()  # the tokens and the JWKS are read here
        warm_up()  # the tables and rules: a broken one is one line here, not a traceback from the app's start
    except BaseException:
        sock.close()
        raise
    where = settings.payer if settings.forwarding else "nowhere (no payer named: --payer URL or --payer sandbox)"
    line = f"serving {settings.service.base_url} (API page: /docs); answers forwarded to {where}"
    started = server.run(app, sock, ready=lambda: logging.getLogger("adapter.service").info(line))
    return 0 if started else 1


def _settings(args: argparse.Namespace) -> Settings:
    """--ehr, --payer and --state over the settings."""
    settings = load_settings(ehr_url=getattr(args, "ehr", None), payer_url=getattr(args, "payer", None))
    if args.state:
        if problem := state_url_problem(args.state):
            raise ConfigError(f"--state: {problem}")
        settings = settings.model_copy(
            update={"service": settings.service.model_copy(update={"state_url": args.state})}
        )
    return settings


def _wiring(args: argparse.Namespace) -> Wiring:
    """The state and forwarder for serve, sync and replay."""
    return wire(_settings(args))


def cmd_db(args: argparse.Namespace) -> int:
    from adapter.service.state import Store

    store = Store(_settings(args).service.state_url, migrate=args.action == "upgrade")
    revision, head = store.revision(), store.head()
    _stdout.print(f"state schema: {revision or 'empty'} (newest: {head})")
    return 0 if revision == head else 1


def cmd_sync(args: argparse.Namespace) -> int:
    wiring = _wiring(args)
    worker = wiring.worker()
    listener, subscription = None, None
    if args.listen and not args.once:
        host, port = args.listen
        try:
            listener = HookListener(host, port)
        except OSError as exc:
            worker.close()
            raise cannot_listen(host, port, exc, flag="--listen port") from exc
        listener.start()
        subscription = subscribe(worker.ehr, listener)
        where = f"Subscription/{subscription}" if subscription else "none: the EHR server has no Subscriptions; polling"
        _stdout.print(f"sync: listening for EHR notifications on {listener.url} ({where})")
    try:
        if args.backfill:
            _backfill(args, worker)
        return _sync_loop(args, wiring, worker, listener)
    finally:
        worker.close()
        if listener is not None:
            unsubscribe(worker.ehr, subscription)
            listener.stop()


def _backfill(args: argparse.Namespace, worker: Any) -> None:
    """Everything the EHR holds, from a Bulk Data export, with a progress bar; then polling takes over."""
    from adapter.service.backfill import backfill

    bar = Progress(TextColumn("backfill"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=_stderr, disable=not _stderr.is_terminal, transient=True)  # fmt: skip
    with bar:
        task = bar.add_task("backfill", total=None)
        report = backfill(worker, since=args.since, group=args.group, patients=args.patients,
                          progress=lambda done, total: bar.update(task, completed=done, total=total))  # fmt: skip
    _stdout.print(
        f"backfill: {report.exported} resources exported; {report.seen} requests, {report.decided} decided, "
        f"{report.skipped} already done, {report.dead} to dead letters, {report.delivered} delivered to the payer; "
        f"polling continues from {report.transaction_time}"
    )


#: The longest wait between two passes while the EHR or the state database keeps failing.
MAX_SYNC_BACKOFF = 300.0


def _sync_loop(args: argparse.Namespace, wiring: Wiring, worker: Any, listener: HookListener | None) -> int:
    failures = 0
    while True:
        try:
            report = worker.run_once()
        except (TransportError, FHIRServerError, StateError, BrokenExecutor) as exc:
            if args.once:
                raise
            # the pass stopped with its cursor where it was (the EHR unreachable or refusing us, a next link off
            # its base, the state down): nothing is lost, the next pass takes it up
            failures += 1
            wait = min(MAX_SYNC_BACKOFF, wiring.settings.service.poll_seconds * 2 ** min(failures, 8))
            reason = str(exc) if isinstance(exc, AdapterError) else f"the determination processes stopped ({exc})"
            _stderr.print(f"sync: {reason}; next pass in {wait:.0f} s", markup=False)
            if isinstance(exc, BrokenExecutor):
                worker.close()  # new processes at the next pass
            time.sleep(wait)
            continue
        failures = 0
        _stdout.print(
            f"sync: {report.seen} seen, {report.decided} decided, {report.skipped} already done, "
            f"{report.dead} to dead letters, {report.delivered} delivered to the payer; "
            f"{wiring.store.outbox_pending()} waiting for the payer"
        )
        if args.once:
            return 0
        if listener is not None:  # a notification starts the next pass at once; polling goes on beside it
            listener.notified.wait(wiring.settings.service.poll_seconds)
            listener.notified.clear()
        else:
            time.sleep(wiring.settings.service.poll_seconds)


def cmd_replay(args: argparse.Namespace) -> int:
    wiring = _wiring(args)
    with wiring.worker() as worker:
        report = worker.replay()
    for error in report.errors:
        _stderr.print(f"error: {error}", markup=False)
    _stdout.print(f"replay: {report.decided} dead letters determined again, {report.delivered} delivered")
    return 1 if report.errors else 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    settings = load_settings().sandbox
    if args.action == "up":
        servers = sandbox.up(settings, keep_data=args.keep_data)
        if args.postgres:
            url = sandbox.postgres_up(settings)
            _stdout.print(f"PostgreSQL: {url}" if url else "PostgreSQL is not installed: not started")
    elif args.action == "down":
        stopped = sandbox.down(settings)
        _stdout.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0
    else:
        servers = sandbox.status(settings)
    table = Table(title="sandbox FHIR servers")
    for column in ("server", "base URL", "pid", "state"):
        table.add_column(column)
    for server in servers:
        state = "[green]up[/]" if server.answering else ("[yellow]starting[/]" if server.running else "[red]down[/]")
        table.add_row(server.name, server.url, str(server.pid or "-"), state)
    _stdout.print(table)
    return 0 if all(s.answering for s in servers) else 1


def _server_flags(parser: argparse.ArgumentParser, role: str) -> None:
    """The flags naming a FHIR server and its auth; ``role`` ("ehr" or "payer") is the server by default, whose
    settings and ``IMR_<ROLE>_*`` variables the flags override."""
    group = parser.add_argument_group("server (flags override imr-adapter.toml and IMR_* variables)")
    prefix = f"IMR_{role.upper()}"
    group.add_argument(
        "--server", metavar="URL", help=f"FHIR base URL (default: {role}_url from the settings, else the sandbox's)"
    )
    group.add_argument("--auth", choices=("none", "bearer", "basic", "smart"), help="how to authenticate")
    group.add_argument("--token", help=f"bearer token (prefer {prefix}_AUTH__TOKEN: flags show in ps)")
    group.add_argument("--username", help="basic auth user")
    group.add_argument("--password", help=f"basic auth password (prefer {prefix}_AUTH__PASSWORD)")
    group.add_argument("--client-id", help="SMART Backend Services client id")
    group.add_argument("--private-key", metavar="PEM", help="SMART client private key (PEM file)")
    group.add_argument("--alg", choices=("RS384", "ES384"), help="SMART assertion signing algorithm")
    group.add_argument("--scope", help="SMART scopes to ask for")
    group.add_argument("--token-url", help="SMART token endpoint (default: discovered)")
    group.add_argument("--timeout", type=float, help="seconds per request (default 30)")


_STATE_HELP = (
    "state database, sqlite:///PATH or postgresql://... (default: service.state_url, else "
    "sqlite:///.state/imr-adapter.db)"
)
_EHR_HELP = "the EHR FHIR server (default: ehr_url from the settings, else the sandbox's)"
_PAYER_HELP = (
    "the payer FHIR server to forward answers to, or 'sandbox' "
    "(default: payer_url from the settings; none: answers are kept, not forwarded)"
)


def _port(text: str) -> int:
    """A TCP port on the command line: 1 to 65535, else a usage error naming it."""
    port = int(text) if text.isdigit() else 0
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (a number from 1 to 65535)")
    return port


def _address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` on the command line, as (host, port); the host is 127.0.0.1 when not given."""
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", _port(port)


def _command(commands: Any, name: str, summary: str) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` starts with the summary the command list shows."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=summary[:1].upper() + summary[1:] + "."
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imr-adapter",
        description="Read California IMR letters, map them to FHIR, determine requests and serve the answers.",
        epilog="Settings: imr-adapter.toml in this folder (or the file IMR_CONFIG names), then IMR_* variables, "
        "then flags. Exit codes: 0 done, 1 some inputs or the command failed (one line each on stderr), 2 usage. "
        "'imr-adapter COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"imr-adapter {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    parse = _command(commands, "parse", "parse IMR letters (text or PDF) into cases")
    parse.add_argument("inputs", nargs="+", metavar="FILE", help="letter files or folders of letters")
    parse.add_argument("--json", action="store_true", help="one JSON object per letter per line")
    parse.add_argument("--no-progress", action="store_true", help="no progress bar")
    parse.set_defaults(run=cmd_parse)

    convert = _command(commands, "convert", "convert letters to FHIR transaction Bundles or NDJSON")
    convert.add_argument("inputs", nargs="+", metavar="FILE", help="letter files or folders of letters")
    convert.add_argument("--out", default="out", metavar="DIR", help="output folder (default: out)")
    convert.add_argument("--ndjson", action="store_true", help="NDJSON per resource type, for Bulk Data $import")
    convert.add_argument("--pas", action="store_true", help="Da Vinci PAS request Bundles (<case>.pas.json), checked")
    convert.add_argument("--fhir-version", choices=("R4", "R5"), default="R4", help="FHIR version (default: R4)")
    convert.add_argument("--validate", action="store_true", help="validate each Bundle with fhir.resources")
    convert.add_argument("--no-progress", action="store_true", help="no progress bar")
    convert.set_defaults(run=cmd_convert)

    to_case = _command(commands, "to-case", "read a FHIR Bundle (R4 or R5) back as a case (JSON)")
    to_case.add_argument("bundle", metavar="BUNDLE", help="a Bundle JSON file")
    to_case.set_defaults(run=cmd_to_case)

    box = _command(commands, "sandbox", "the local sandbox FHIR servers (EHR and payer)")
    box.add_argument("action", choices=("up", "down", "status"))
    box.add_argument("--keep-data", action="store_true", help="up: keep the servers' data from the last run")
    box.add_argument("--postgres", action="store_true", help="up: also start a PostgreSQL (for the service state)")
    box.set_defaults(run=cmd_sandbox)

    push = _command(commands, "push", "convert letters and post their transaction Bundles to a FHIR server")
    push.add_argument("inputs", nargs="+", metavar="FILE", help="letter files or folders of letters")
    push.add_argument("--concurrency", type=int, help="transactions in flight at once (default 8)")
    push.add_argument("--failed-list", metavar="FILE", help="write the paths of failed letters here")
    push.add_argument("--no-progress", action="store_true", help="no progress bar")
    _server_flags(push, "ehr")
    push.set_defaults(run=cmd_push)

    facts = _command(commands, "facts", "print every fact the determination reads, with its status, quote and source")
    facts.add_argument(
        "inputs", nargs="+", metavar="FILE", help="letters, FHIR requests or Bundles, or folders of them"
    )
    facts.add_argument("--json", action="store_true", help="one JSON object per input per line")
    facts.add_argument("--no-progress", action="store_true", help="no progress bar")
    facts.set_defaults(run=cmd_facts)

    pull = _command(commands, "pull", "fetch the adapter's ClaimResponses back from a server as cases")
    pull.add_argument("--since", metavar="DATE", help="only those changed since (ISO date or date-time)")
    pull.add_argument("--json", action="store_true", help="one case JSON per line")
    _server_flags(pull, "payer")
    pull.set_defaults(run=cmd_pull)

    judge = _command(commands, "determine", "guideline determinations for letters, ServiceRequests or Bundles")
    judge.add_argument(
        "inputs", nargs="+", metavar="FILE", help="letters (.txt, .pdf), FHIR JSON files (.json) or folders of them"
    )
    judge.add_argument("--json", action="store_true", help="one JSON object per input per line")
    judge.add_argument("--no-progress", action="store_true", help="no progress bar")
    judge.add_argument(
        "--adverse",
        choices=["pend", "decide"],
        help="adverse recommendations: pend for a physician (default, Labor Code 4610) or send as they are",
    )
    judge.set_defaults(run=cmd_determine)

    check = _command(commands, "check", "a conformance smoke test of a FHIR server")
    _server_flags(check, "ehr")
    check.set_defaults(run=cmd_check)

    serve = _command(commands, "serve", "run the adapter's HTTP service (EHR push, payer pull)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0: all)")
    serve.add_argument("--port", type=_port, default=8080, help="port to listen on (default: 8080)")
    serve.add_argument("--state", metavar="URL", help=_STATE_HELP)
    serve.add_argument("--payer", metavar="URL", help=_PAYER_HELP)
    serve.set_defaults(run=cmd_serve)

    db = _command(commands, "db", "the service's state database: bring it to the newest schema, or show it")
    db.add_argument("action", choices=["upgrade", "current"])
    db.add_argument("--state", metavar="URL", help=_STATE_HELP)
    db.set_defaults(run=cmd_db)

    sync = _command(commands, "sync", "keep the EHR and payer servers in step")
    sync.add_argument("--ehr", metavar="URL", help=_EHR_HELP)
    sync.add_argument("--payer", metavar="URL", help=_PAYER_HELP)
    sync.add_argument("--once", action="store_true", help="one pass, then exit")
    sync.add_argument(
        "--listen",
        metavar="[HOST:]PORT",
        type=_address,
        help="take rest-hook notifications here (a Subscription on the EHR; host default: 127.0.0.1)",
    )
    sync.add_argument("--state", metavar="URL", help=_STATE_HELP)
    sync.add_argument("--backfill", action="store_true",
                      help="first determine everything the EHR holds, from a Bulk Data $export; then poll")  # fmt: skip
    sync.add_argument("--since", metavar="INSTANT", help="backfill: only what changed since (the export's _since)")
    sync.add_argument("--group", metavar="ID", help="backfill: export one Group's patients (Group/ID/$export)")
    sync.add_argument("--patients", action="store_true", help="backfill: a Patient-level export (Patient/$export)")
    sync.set_defaults(run=cmd_sync)

    replay = _command(commands, "replay", "determine the dead letters again")
    replay.add_argument("--ehr", metavar="URL", help=_EHR_HELP)
    replay.add_argument("--payer", metavar="URL", help=_PAYER_HELP)
    replay.add_argument("--state", metavar="URL", help=_STATE_HELP)
    replay.set_defaults(run=cmd_replay)

    demo = _command(commands, "demo", "the main job: sandbox servers, service, worker, report")
    demo.add_argument("--out", default="out", help="where the HTML report goes (default: out)")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except AdapterError as exc:
        _stderr.print(
            f"error: [{exc.code}] {exc.message}" + (f" (at {exc.location})" if exc.location else ""),
            markup=False,
            soft_wrap=True,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
