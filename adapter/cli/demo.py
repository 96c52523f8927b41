"""The demo command: the main job end to end, its tables and the commands to try next."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from adapter.actions import ReviewAction
from adapter.cli.console import (
    stderr,
    stdout,
)
from adapter.errors import InputError
from adapter.jobs.demo import run_demo

#: The letters the main job runs on when it is given none: the synthetic fixtures shipped with the project.
DEFAULT_LETTERS = Path(__file__).resolve().parents[2] / "fixtures" / "letters"


def cmd_demo(args: argparse.Namespace) -> int:
    if not DEFAULT_LETTERS.is_dir():
        raise InputError("the bundled letters are missing", location=str(DEFAULT_LETTERS))
    out = Path(args.out)
    demo = run_demo(DEFAULT_LETTERS, out, log=lambda line: stderr.print(line, markup=False))
    table = Table(title="Requests -> decisions (read back from the payer server)", show_lines=True)
    table.add_column("request", ratio=2)
    table.add_column("decision", no_wrap=True)
    table.add_column("rationale", ratio=4)
    for row in demo.rows:
        table.add_row(
            escape(row.request), f"[{ReviewAction(row.action).colour}]{escape(row.decision)}[/]", escape(row.rationale)
        )
    stdout.print(table)
    waiting = Table(title=f"Waiting for a physician (review Tasks, due dates: {escape(demo.wording.due_dates)})")
    for column in ("request", "recommended", "clock", "due"):
        waiting.add_column(column)
    for item in demo.pended:
        action = ReviewAction(item.recommendation)
        waiting.add_row(escape(item.request), f"[{action.colour}]{action} {action.label}[/]", item.clock, item.due)
    stdout.print(waiting)
    if demo.reviewed:
        stdout.print(f"reviewed through the API by the demo's physician: {escape(demo.reviewed[0])} -> "
                      f"{demo.reviewed[1]} {ReviewAction(demo.reviewed[1]).label} (final on the payer)")  # fmt: skip
    stdout.print(f"{len(demo.rows)} determinations, {len(demo.pended)} waiting for review; "
                  f"report: {out / 'imr-demo-report.html'}")  # fmt: skip
    stdout.print("\nNext, try:", markup=False)
    for command, what in next_steps():
        stdout.print(f"  {command}\n      {what}", markup=False, soft_wrap=True)
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
