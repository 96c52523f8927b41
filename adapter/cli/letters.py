"""The commands on letters and FHIR files: parse, convert, to-case, facts and determine."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
from rich.markup import escape
from rich.table import Table

from adapter.actions import ReviewAction
from adapter.cli.console import (
    Outcome,
    case_json,
    each,
    letter_files,
    print_json,
    progress_shown,
    report_errors,
    stdout,
    summary_table,
)
from adapter.cli.settings import resolve
from adapter.errors import InputError
from adapter.fhir import bundle_to_case, case_to_bundle, r4_to_r5, validate_bundle
from adapter.fhir.build import pas_bundle
from adapter.fhir.conformance import check_request
from adapter.fhir.ndjson import import_resources
from adapter.inputs import LETTER_SUFFIXES, read_letter
from adapter.jobs.determine import determine_file, facts_file
from adapter.letters import parse_letter
from adapter.model import Decision, IMRCase
from adapter.review.policy import review_policy
from adapter.tables import mappings


def cmd_parse(args: argparse.Namespace) -> int:
    paths = letter_files(args.inputs)
    if args.json:
        out, outcomes = sys.stdout.buffer, []
        for outcome in each(paths, _parse_path, label="parsing", progress=progress_shown(args)):
            if outcome.value is not None:
                out.write(case_json(outcome.path, outcome.value) + b"\n")
                outcome.value = None  # keep memory flat over large batches
            outcomes.append(outcome)
        out.flush()
        return report_errors(outcomes)
    outcomes = list(each(paths, _parse_path, label="parsing", progress=progress_shown(args)))
    stdout.print(summary_table(outcomes))
    cases = [o.value for o in outcomes if o.value is not None]
    items = [i for case in cases for i in case.items]
    upheld = sum(1 for i in items if i.decision is Decision.UPHELD)
    stdout.print(
        f"{len(cases)} of {len(outcomes)} letters parsed, {len(items)} items: "
        f"{upheld} upheld, {len(items) - upheld} overturned"
    )
    return report_errors(outcomes)


def _parse_path(path: Path) -> IMRCase:
    return parse_letter(read_letter(path))


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
    paths = letter_files(args.inputs)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder: {exc.strerror or exc}", location=str(out)) from exc
    tables = mappings().tables
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
        for outcome in each(paths, convert, label="converting", progress=progress_shown(args)):
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
    stdout.print(
        f"{len(outcomes) - failed} of {len(outcomes)} letters converted to FHIR {args.fhir_version} {what} "
        f"in {out}/: {resources} resources" + (f"; {failed} failed" if failed else "")
    )
    return report_errors(outcomes)


def cmd_to_case(args: argparse.Namespace) -> int:
    path = Path(args.bundle)
    try:
        data = orjson.loads(read_letter(path))
    except orjson.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc}", location=str(path)) from exc
    sys.stdout.buffer.write(case_json(None, bundle_to_case(data)) + b"\n")
    return 0


def cmd_facts(args: argparse.Namespace) -> int:
    paths = letter_files(args.inputs, DETERMINE_SUFFIXES)
    outcomes = list(each(paths, facts_file, label="reading", progress=progress_shown(args)))
    if args.json:
        return print_json(outcomes)
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
            stdout.print(table)
    return report_errors(outcomes)


#: What ``determine`` reads in a folder: letters, and FHIR requests or Bundles as JSON.
DETERMINE_SUFFIXES = LETTER_SUFFIXES | {".json"}


def cmd_determine(args: argparse.Namespace) -> int:
    paths = letter_files(args.inputs, DETERMINE_SUFFIXES)
    policy = review_policy(resolve(args))
    outcomes = list(
        each(paths, lambda p: determine_file(p, policy), label="determining", progress=progress_shown(args))
    )
    if args.json:
        return print_json(outcomes)
    stdout.print(_determination_table(outcomes))
    return report_errors(outcomes)


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
