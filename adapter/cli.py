"""The ``imr-adapter`` command line.

Exit codes: 0 all inputs handled, 1 some inputs failed (each named on stderr in one line), 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from adapter.errors import AdapterError
from adapter.inputs import letter_paths, read_letter
from adapter.letters import parse_letter
from adapter.model import Decision, IMRCase

#: The letters the main job runs on when it is given none: the synthetic fixtures shipped with the project.
DEFAULT_LETTERS = Path(__file__).resolve().parent.parent / "fixtures" / "letters"

_stdout = Console(highlight=False)
if not _stdout.is_terminal:
    _stdout.width = 150
_stderr = Console(stderr=True, highlight=False)


@dataclass
class Parsed:
    path: Path
    case: IMRCase | None = None
    error: AdapterError | None = None


def _parse_all(paths: list[Path], *, progress: bool) -> Iterator[Parsed]:
    """Parse each letter in turn; an error is carried in the result, never raised, so the batch goes on."""
    bar = Progress(
        TextColumn("parsing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=_stderr, disable=not progress, transient=True,
    )  # fmt: skip
    with bar:
        task = bar.add_task("parse", total=len(paths))
        for path in paths:
            try:
                yield Parsed(path, case=parse_letter(read_letter(path)))
            except AdapterError as exc:
                yield Parsed(path, error=exc)
            bar.advance(task)


def _case_json(path: Path, case: IMRCase) -> bytes:
    data = case.model_dump(mode="json", exclude={"source"})
    if case.source is not None:
        data["source"] = {"file": str(path), "media_type": case.source.media_type, "sha1": case.source.sha1}
    return orjson.dumps(data)


def _summary_table(results: list[Parsed]) -> Table:
    table = Table(title="IMR determination letters", show_lines=True)
    table.add_column("letter", overflow="fold", max_width=30)
    for column in ("layout", "decided", "patient"):
        table.add_column(column, no_wrap=True)
    table.add_column("disputed item", ratio=1)
    table.add_column("decision", no_wrap=True)
    table.add_column("basis", no_wrap=True)
    for result in results:
        case = result.case
        if case is None:
            continue
        patient = " ".join(str(v) for v in (case.patient.age, case.patient.gender) if v is not None) or "-"
        for n, item in enumerate(case.items):
            decision = "[red]upheld[/]" if item.decision is Decision.UPHELD else "[green]overturned[/]"
            first = n == 0
            table.add_row(
                (case.case_number or result.path.name) if first else "",
                case.layout.value if first else "",
                str(case.dates.decision or "-") if first else "",
                patient if first else "",
                item.request if len(item.request) <= 100 else item.request[:97] + "...",
                decision,
                item.guideline_basis.value,
            )
    return table


def _report_errors(results: list[Parsed]) -> int:
    failed = [r for r in results if r.error is not None]
    for result in failed:
        error = result.error
        assert error is not None
        where = f" (at {error.location})" if error.location and error.location != str(result.path) else ""
        _stderr.print(f"error: {result.path}: [{error.code}] {error.message}{where}", markup=False, soft_wrap=True)
    return 1 if failed else 0


def cmd_parse(args: argparse.Namespace) -> int:
    paths = list(letter_paths(args.inputs))
    if not paths:
        _stderr.print("error: no .txt or .pdf letters found in the given inputs", markup=False)
        return 1
    progress = not args.no_progress and _stderr.is_terminal
    if args.json:
        out = sys.stdout.buffer
        results = []
        for result in _parse_all(paths, progress=progress):
            if result.case is not None:
                out.write(_case_json(result.path, result.case) + b"\n")
                result.case = None  # keep memory flat over large batches
            results.append(result)
        out.flush()
        return _report_errors(results)
    results = list(_parse_all(paths, progress=progress))
    _stdout.print(_summary_table(results))
    parsed = sum(1 for r in results if r.case is not None)
    items = [i for r in results if r.case for i in r.case.items]
    upheld = sum(1 for i in items if i.decision is Decision.UPHELD)
    _stdout.print(
        f"{parsed} of {len(results)} letters parsed, {len(items)} items: "
        f"{upheld} upheld, {len(items) - upheld} overturned"
    )
    return _report_errors(results)


def cmd_demo(args: argparse.Namespace) -> int:
    if not DEFAULT_LETTERS.is_dir():
        _stderr.print(f"error: the bundled letters are missing ({DEFAULT_LETTERS})", markup=False)
        return 1
    return cmd_parse(argparse.Namespace(inputs=[DEFAULT_LETTERS], json=False, no_progress=args.no_progress))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imr-adapter", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    parse = commands.add_parser("parse", help="parse IMR letters (text or PDF) into cases")
    parse.add_argument("inputs", nargs="+", metavar="FILE", help="letter files or folders of letters")
    parse.add_argument("--json", action="store_true", help="one JSON object per letter per line")
    parse.add_argument("--no-progress", action="store_true", help="no progress bar")
    parse.set_defaults(run=cmd_parse)

    demo = commands.add_parser("demo", help="the main job on the bundled synthetic letters")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
