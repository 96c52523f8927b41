"""Letters to a FHIR server: parse, convert, post each case's transaction Bundle (bounded concurrency)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from adapter.errors import AdapterError
from adapter.exchange._base import WriteResult
from adapter.exchange.client import AsyncFHIRClient
from adapter.fhir import case_to_bundle
from adapter.inputs import read_letter
from adapter.letters import parse_letter
from adapter.tables import Tables, load_tables

Status = Literal["created", "already present", "failed"]


@dataclass
class PushResult:
    path: Path
    status: Status
    created: int = 0
    error: AdapterError | None = None


def classify(path: Path, answer: list[WriteResult] | AdapterError) -> PushResult:
    if isinstance(answer, AdapterError):
        return PushResult(path, "failed", error=answer)
    created = sum(1 for r in answer if r.status == 201)
    return PushResult(path, "created" if created else "already present", created=created)


async def push_letters(
    paths: Sequence[Path],
    client: AsyncFHIRClient,
    *,
    tables: Tables | None = None,
    chunk: int = 64,
    advance: Callable[[int], None] | None = None,
) -> list[PushResult]:
    """Every letter's Bundle posted as one transaction; the failures (parse or server) are results too."""
    tables = tables or load_tables()
    results: list[PushResult] = []
    for start in range(0, len(paths), chunk):
        window = paths[start : start + chunk]
        ready: list[tuple[Path, dict[str, object]]] = []
        for path in window:
            try:
                ready.append((path, case_to_bundle(parse_letter(read_letter(path)), tables=tables)))
            except AdapterError as exc:
                results.append(PushResult(path, "failed", error=exc))
        answers = await client.transactions([bundle for _, bundle in ready])
        results += [classify(path, answer) for (path, _), answer in zip(ready, answers, strict=True)]
        if advance is not None:
            advance(len(window))
    order = {path: n for n, path in enumerate(paths)}
    return sorted(results, key=lambda r: order[r.path])


def push(paths: Sequence[Path], client: AsyncFHIRClient, **kwargs: object) -> list[PushResult]:
    """``push_letters`` for synchronous callers."""

    async def run() -> list[PushResult]:
        async with client:
            return await push_letters(paths, client, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(run())
