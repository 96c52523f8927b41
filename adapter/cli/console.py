"""What the commands print: the consoles (stdout for results, stderr for one-line errors and progress), a
batch run over input files that keeps going past a bad one, and the tables and JSON lines they share.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from adapter.errors import AdapterError, InputError
from adapter.inputs import LETTER_SUFFIXES, letter_paths
from adapter.model import Decision, IMRCase

stdout = Console(highlight=False, soft_wrap=True)  # a line of text is never broken; tables fit the width

if not stdout.is_terminal:
    stdout.width = 100  # tables written to a file or a pipe fit 100 columns

stderr = Console(stderr=True, highlight=False, soft_wrap=True)  # an error is one line, however long

T = TypeVar("T")


@dataclass
class Outcome:
    """What became of one input: a value, or the error that stopped it (the batch goes on)."""

    path: Path
    value: Any = None
    error: AdapterError | None = None


def each(paths: list[Path], work: Callable[[Path], T], *, label: str, progress: bool) -> Iterator[Outcome]:
    """Run ``work`` on each path in turn with a progress bar; an AdapterError is kept, never raised."""
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
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


def error_line(path: Path, error: AdapterError) -> str:
    where = f" (at {error.location})" if error.location and error.location != str(path) else ""
    return f"error: {path}: [{error.code}] {error.message}{where}"


def report_errors(outcomes: list[Outcome]) -> int:
    failed = [o for o in outcomes if o.error is not None]
    for outcome in failed:
        assert outcome.error is not None
        stderr.print(error_line(outcome.path, outcome.error), markup=False, soft_wrap=True)
    return 1 if failed else 0


def letter_files(inputs: Sequence[str | Path], suffixes: frozenset[str] = LETTER_SUFFIXES) -> list[Path]:
    paths = list(letter_paths(inputs, suffixes))
    if not paths:
        raise InputError(f"no {' or '.join(sorted(suffixes, reverse=True))} files found in the given inputs")
    return paths


def case_json(path: Path | None, case: IMRCase) -> bytes:
    data = case.model_dump(mode="json", exclude={"source"})
    if case.source is not None:
        data["source"] = {"media_type": case.source.media_type, "sha1": case.source.sha1}
        if path is not None:
            data["source"]["file"] = str(path)
    return orjson.dumps(data)


def summary_table(outcomes: list[Outcome]) -> Table:
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


def progress_shown(args: argparse.Namespace) -> bool:
    return not args.no_progress and stderr.is_terminal


def print_json(outcomes: list[Outcome]) -> int:
    """One JSON object per input read, one line each; the errors one line each on stderr."""
    for outcome in outcomes:
        if outcome.value is not None:
            sys.stdout.buffer.write(orjson.dumps(outcome.value) + b"\n")
    sys.stdout.flush()
    return report_errors(outcomes)
