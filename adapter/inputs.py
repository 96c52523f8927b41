"""Finding letters on disk: files and folders in, one path per letter out, in a stable order."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from adapter.errors import InputError

LETTER_SUFFIXES = frozenset({".txt", ".pdf"})


def letter_paths(inputs: Iterable[str | Path], suffixes: frozenset[str] = LETTER_SUFFIXES) -> Iterator[Path]:
    """Every letter named: a file as given, a folder walked (sorted, recursively) for files with one of the
    ``suffixes`` (.txt and .pdf letters by default).

    A path that does not exist is yielded as is, so that reading it reports the error in its place in
    the batch rather than stopping the batch.
    """
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in suffixes:
                        yield Path(root) / name
        else:
            yield path


def read_letter(path: Path) -> bytes:
    """The bytes of one letter file; ``InputError`` when it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError("no such file", location=str(path)) from exc
    except IsADirectoryError as exc:
        raise InputError("is a folder, not a letter", location=str(path)) from exc
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", location=str(path)) from exc
