"""The commands that talk to one FHIR server (push, pull, check) and run the sandbox servers."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from adapter import sandbox
from adapter.cli.console import (
    Outcome,
    case_json,
    error_line,
    letter_files,
    progress_shown,
    stderr,
    stdout,
    summary_table,
)
from adapter.cli.settings import resolve, server
from adapter.errors import AdapterError, InputError
from adapter.exchange import AsyncFHIRClient, FHIRClient
from adapter.jobs.check import ConformanceCheck
from adapter.jobs.pull import pull_cases
from adapter.jobs.push import push_letters


def cmd_push(args: argparse.Namespace) -> int:
    paths = letter_files(args.inputs)
    settings, url, auth = server(args, "ehr")
    client = AsyncFHIRClient(
        url, auth=auth, timeout=settings.timeout, retry=settings.retry, concurrency=settings.concurrency
    )
    bar = Progress(
        TextColumn("pushing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        disable=not progress_shown(args),
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
    stdout.print(table)
    failed = [r for r in results if r.error is not None]
    for result in failed:
        assert result.error is not None
        stderr.print(error_line(result.path, result.error), markup=False, soft_wrap=True)
    if failed:
        listing = "\n".join(str(r.path) for r in failed) + "\n"
        if args.failed_list:
            Path(args.failed_list).write_text(listing)
            stderr.print(f"{len(failed)} failed; their paths are in {args.failed_list} to push again", markup=False)
    return 1 if failed else 0


def cmd_pull(args: argparse.Namespace) -> int:
    settings, url, auth = server(args, "payer")
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
                stderr.print(f"error: [{found.code}] {found.message} (at {found.location})", markup=False)
            elif args.json:
                sys.stdout.buffer.write(case_json(None, found) + b"\n")
            else:
                cases.append(Outcome(Path(found.case_number or "case"), value=found))
    if not args.json:
        stdout.print(summary_table(cases))
        stdout.print(f"{len(cases)} cases pulled from {url}" + (f"; {errors} could not be read" if errors else ""))
    return 1 if errors else 0


def cmd_check(args: argparse.Namespace) -> int:
    settings, url, auth = server(args, "ehr")
    with FHIRClient(url, auth=auth, timeout=settings.timeout, retry=settings.retry) as client:
        results = ConformanceCheck(client).run()
    table = Table(title=f"FHIR conformance check: {url}")
    for column in ("check", "result", "detail", "ms"):
        table.add_column(column, overflow="fold")
    for result in results:
        mark = "[green]pass[/]" if result.passed else "[red]FAIL[/]"
        table.add_row(result.name, mark, escape(result.detail), f"{result.milliseconds:.0f}")
    stdout.print(table)
    passed = sum(r.passed for r in results)
    stdout.print(f"{passed} of {len(results)} checks passed")
    return 0 if passed == len(results) else 1


def cmd_sandbox(args: argparse.Namespace) -> int:
    settings = resolve(args).sandbox
    if args.action == "up":
        servers = sandbox.up(settings, keep_data=args.keep_data)
        if args.postgres:
            url = sandbox.postgres_up(settings)
            stdout.print(f"PostgreSQL: {url}" if url else "PostgreSQL is not installed: not started")
    elif args.action == "down":
        stopped = sandbox.down(settings)
        stdout.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0
    else:
        servers = sandbox.status(settings)
    table = Table(title="sandbox FHIR servers")
    for column in ("server", "base URL", "pid", "state"):
        table.add_column(column)
    for box in servers:
        state = "[green]up[/]" if box.answering else ("[yellow]starting[/]" if box.running else "[red]down[/]")
        table.add_row(box.name, box.url, str(box.pid or "-"), state)
    stdout.print(table)
    return 0 if all(s.answering for s in servers) else 1
