"""Letters to a FHIR server: parse, convert, post each case's transaction Bundle (bounded concurrency)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from adapter.errors import AdapterError
from adapter.exchange._base import WriteResult
from adapter.exchange.client import AsyncFHIRClient
from adapter.fhir import case_to_bundle
from adapter.inputs import read_letter
from adapter.letters import parse_letter
from adapter.tables import Tables, mappings

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


def _first_carriers(bundles: Sequence[dict[str, Any]], primed: set[str]) -> list[int]:
    """Bundles to post on their own before the rest: the first one carrying each entry that several bundles
    share (the IMR organisation; a letter given twice). Concurrent conditional creates of one resource race
    on most servers (each finds none, each creates one), and the duplicates then fail every later
    conditional create with 412."""
    counts = Counter(e["fullUrl"] for b in bundles for e in b["entry"])
    first: list[int] = []
    for n, bundle in enumerate(bundles):
        shared = {e["fullUrl"] for e in bundle["entry"] if counts[e["fullUrl"]] > 1 or e["fullUrl"] in primed}
        if shared - primed:
            first.append(n)
        primed |= shared
    return first


async def post_bundles(
    client: AsyncFHIRClient, bundles: Sequence[dict[str, Any]], primed: set[str] | None = None
) -> list[list[WriteResult] | AdapterError]:
    """Post transaction Bundles, ``client.concurrency`` at a time, shared entries first (see ``_first_carriers``);
    ``primed`` carries what was already posted across calls."""
    primed = set() if primed is None else primed
    answers: dict[int, list[WriteResult] | AdapterError] = {}
    for n in _first_carriers(bundles, primed):
        answers[n] = (await client.transactions([bundles[n]]))[0]
    rest = [n for n in range(len(bundles)) if n not in answers]
    answers.update(zip(rest, await client.transactions([bundles[n] for n in rest]), strict=True))
    return [answers[n] for n in range(len(bundles))]


async def push_letters(
    paths: Sequence[Path],
    client: AsyncFHIRClient,
    *,
    tables: Tables | None = None,
    chunk: int = 64,
    advance: Callable[[int], None] | None = None,
) -> list[PushResult]:
    """Every letter's Bundle posted as one transaction; the failures (parse or server) are results too."""
    tables = tables or mappings().tables
    results: list[PushResult] = []
    primed: set[str] = set()
    for start in range(0, len(paths), chunk):
        window = paths[start : start + chunk]
        ready: list[tuple[Path, dict[str, Any]]] = []
        for path in window:
            try:
                ready.append((path, case_to_bundle(parse_letter(read_letter(path)), tables=tables)))
            except AdapterError as exc:
                results.append(PushResult(path, "failed", error=exc))
        answers = await post_bundles(client, [bundle for _, bundle in ready], primed)
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
