"""Cases per second pushed to a FHIR server: the adapter's client (one conditional transaction per case,
several in flight) against the same resources pushed one request at a time with plain httpx, and with
fhirpy when it is installed (pip install -e .[bench]).

    python bench/push.py [--server URL] [--concurrency N]   (default: the EHR sandbox; started if it is down)

Each run pushes new cases (case numbers made unique per method), so every method creates everything.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from adapter import sandbox
from adapter.config import load_settings
from adapter.exchange import AsyncFHIRClient
from adapter.fhir import case_to_bundle
from adapter.jobs.push import post_bundles
from adapter.letters import parse_letter

ROOT = Path(__file__).resolve().parent.parent
JSON = dict[str, Any]


def bundles(prefix: str) -> list[JSON]:
    texts = sorted((ROOT.parent / "shared" / "corpus" / "text").glob("*.txt")) or sorted(
        (ROOT / "fixtures" / "letters").glob("*.txt")
    )
    out = []
    for n, path in enumerate(texts):
        case = parse_letter(path.read_bytes())
        case.case_number = f"{prefix}-{n:05d}"
        out.append(case_to_bundle(case))
    return out


def _rewrite(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: ids.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite(v, ids) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(v, ids) for v in value]
    return value


def one_at_a_time_httpx(base: str, cases: list[JSON]) -> None:
    with httpx.Client(base_url=base, timeout=60) as client:
        for bundle in cases:
            ids: dict[str, str] = {}
            for entry in bundle["entry"]:
                resource = _rewrite(entry["resource"], ids)
                answer = client.post(
                    f"/{resource['resourceType']}", content=orjson.dumps(resource),
                    headers={"Content-Type": "application/fhir+json", "If-None-Exist": entry["request"]["ifNoneExist"]},
                )  # fmt: skip
                answer.raise_for_status()
                ids[entry["fullUrl"]] = f"{resource['resourceType']}/{answer.json()['id']}"


def one_at_a_time_fhirpy(base: str, cases: list[JSON]) -> bool:
    """fhirpy's ``create(identifier=...)`` sends the condition as URL parameters, not If-None-Exist, so a
    spec server treats it as a plain create: the shared organisation gets a throw-away identifier here
    to keep its duplicates from breaking later conditional creates."""
    try:
        from fhirpy import SyncFHIRClient
    except ImportError:
        return False
    client = SyncFHIRClient(base)
    throwaway = uuid.uuid4().hex
    for bundle in cases:
        ids: dict[str, str] = {}
        for entry in bundle["entry"]:
            data = _rewrite(entry["resource"], ids)
            if data["resourceType"] == "Organization":
                data["identifier"][0]["value"] += f"-fhirpy-{throwaway}"
            name, _, value = entry["request"]["ifNoneExist"].partition("=")
            resource = client.resource(data.pop("resourceType"), **data)
            resource.create(**{name: value})
            ids[entry["fullUrl"]] = f"{resource.resource_type}/{resource.id}"
    return True


async def adapter_push(base: str, cases: list[JSON], concurrency: int) -> None:
    async with AsyncFHIRClient(base, concurrency=concurrency) as client:
        answers = await post_bundles(client, cases)
    failures = [a for a in answers if not isinstance(a, list)]
    if failures:
        raise SystemExit(f"adapter push failed: {failures[0]}")


def timed(label: str, count: int, run: Any) -> float:
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    if result is False:
        print(f"{label:<44} (not installed)")
        return 0.0
    print(f"{label:<44} {count / seconds:8.1f} cases/s  ({seconds:.1f} s)")
    return count / seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    settings = load_settings()
    base = args.server or settings.ehr
    if args.server is None and not any(s.answering for s in sandbox.status(settings.sandbox) if s.name == "ehr"):
        sandbox.up(settings.sandbox, keep_data=True)
    run = uuid.uuid4().hex[:6]
    sets = {name: bundles(f"BENCH-{run}-{name}") for name in ("adapter", "httpx", "fhirpy")}
    count = len(sets["adapter"])
    resources = sum(len(b["entry"]) for b in sets["adapter"])
    print(f"machine: {os.cpu_count()} cores; server {base}; {count} cases, {resources} resources per method")
    fast = timed(f"adapter (transactions, {args.concurrency} in flight)", count,
                 lambda: asyncio.run(adapter_push(base, sets["adapter"], args.concurrency)))  # fmt: skip
    plain = timed("plain httpx, one request at a time", count, lambda: one_at_a_time_httpx(base, sets["httpx"]))
    fhirpy = timed("fhirpy, one request at a time", count, lambda: one_at_a_time_fhirpy(base, sets["fhirpy"]))
    print(
        f"adapter / plain httpx: {fast / plain:.1f}x" + (f"; adapter / fhirpy: {fast / fhirpy:.1f}x" if fhirpy else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
