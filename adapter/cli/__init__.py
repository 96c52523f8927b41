"""The ``imr-adapter`` command line: one module per group of commands, the settings resolved once
(``adapter.cli.settings``), the jobs they run in ``adapter.jobs``.

Exit codes: 0 all inputs handled, 1 some inputs failed (each named on stderr in one line), 2 usage.
"""

from __future__ import annotations

from collections.abc import Sequence

from adapter.cli.console import stderr
from adapter.cli.parser import build_parser
from adapter.errors import AdapterError


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; an ``AdapterError`` is one ``error:`` line on stderr and exit code 1, never a traceback."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except AdapterError as exc:
        stderr.print(
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


__all__ = ["build_parser", "main"]
