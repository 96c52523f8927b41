"""Fuzz the FHIR readers: mutated ServiceRequests, context Bundles, PAS Bundles and case Bundles (R4 and
R5) must give an answer or an ``AdapterError``, never any other exception.

    .venv/bin/python bench/fuzz.py [--n 100000] [--seed 1]

Prints, per reader, how many inputs were tried, accepted, refused with an AdapterError, and how many raised
anything else (with the first few kinds and where), and the inputs per second on this machine's cores.
``mutate`` is also what tests/test_fuzz.py draws from.
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
JSON = dict[str, Any]

_VALUES: list[Any] = [
    None, True, 0, -1, 2**70, 1.5, "", "x", "\u0000", "Patient/other", "urn:uuid:other", "2026-13-45",
    [], [1], ["x"], {}, {"a": 1}, {"text": 5}, {"reference": "Patient/intruder"}, {"coding": "x"},
    {"value": "12"}, [{"text": None}], {"resourceType": "Patient"}, {"url": 5}, [[[[]]]],
]  # fmt: skip
_TYPES = ["Patient", "Claim", "ServiceRequest", "Bundle", "Condition", "Nope", "", 5, None]


def _paths(data: Any) -> list[tuple[Any, ...]]:
    """Every path in the tree (iteratively: mutations can nest deeper than Python's recursion limit)."""
    found: list[tuple[Any, ...]] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        node, here = stack.pop()
        found.append(here)
        if isinstance(node, dict):
            stack.extend((value, (*here, key)) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, (*here, index)) for index, value in enumerate(node))
    return found


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def _value(rng: random.Random) -> Any:
    return copy.deepcopy(rng.choice(_VALUES))  # a copy: later mutations must not change the table


def mutate(base: JSON, rng: random.Random) -> Any:
    """A copy of ``base`` with one to four random changes: values replaced by other types, keys dropped or
    added, lists emptied or doubled, resource types swapped, references pointed at other patients."""
    data: Any = copy.deepcopy(base)
    for _ in range(rng.randint(1, 4)):
        paths = _paths(data)
        path = rng.choice(paths)
        if not path:
            data = rng.choice([data, _value(rng)])
            continue
        parent, last = _get(data, path[:-1]), path[-1]
        move = rng.randrange(7)
        if move == 0:
            parent[last] = _value(rng)
        elif move == 1 and isinstance(parent, dict):
            del parent[last]
        elif move == 2 and isinstance(parent, dict):
            parent[rng.choice(["resourceType", "entry", "extension", "code", "subject", "x"])] = _value(rng)
        elif move == 3 and isinstance(parent[last], list):
            parent[last] = parent[last] * 2 if rng.random() < 0.5 else []
        elif move == 4 and isinstance(parent[last], dict) and "resourceType" in parent[last]:
            parent[last]["resourceType"] = rng.choice(_TYPES)
        elif move == 5:
            parent[last] = [parent[last]] if rng.random() < 0.5 else {"value": parent[last]}
        else:
            parent[last] = copy.deepcopy(_get(data, rng.choice(paths)))
    return data


def bases() -> dict[str, list[JSON]]:
    """Valid inputs for each reader, made from the synthetic fixture letters."""
    from adapter.fhir import case_to_bundle, r4_to_r5
    from adapter.fhir.build import pas_bundle, request_side
    from adapter.letters import parse_letter

    letters = sorted((ROOT / "fixtures" / "letters").glob("*.txt"))[:4]
    cases = [parse_letter(p.read_bytes()) for p in letters]
    full = [case_to_bundle(c) for c in cases]
    context = [{"resourceType": "Bundle", "type": "collection", "entry": request_side(b)} for b in full]
    requests = [e["resource"] for b in context for e in b["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
    return {
        "requested_services": requests[:4] + context + [pas_bundle(c) for c in cases],
        "bundle_to_case": full + [r4_to_r5(b) for b in full],
    }


def _reader(name: str) -> Callable[[Any], Any]:
    from adapter.fhir import bundle_to_case
    from adapter.fhir.request_facts import requested_services

    return {"requested_services": requested_services, "bundle_to_case": bundle_to_case}[name]


def run(name: str, seed: int, n: int) -> tuple[int, int, Counter[str]]:
    """(accepted, refused, other exceptions by kind and place) for ``n`` mutated inputs."""
    from adapter.errors import AdapterError

    reader, inputs, rng = _reader(name), bases()[name], random.Random(seed)
    accepted = refused = 0
    other: Counter[str] = Counter()
    for _ in range(n):
        try:
            reader(mutate(rng.choice(inputs), rng))
            accepted += 1
        except AdapterError:
            refused += 1
        except Exception as exc:  # noqa: BLE001 - what the fuzzer is looking for
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            other[f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}"] += 1
    return accepted, refused, other


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="inputs per reader")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    failed = False
    for name in ("requested_services", "bundle_to_case"):
        started = time.perf_counter()
        share = -(-args.n // cores)
        with ProcessPoolExecutor(cores) as pool:
            parts = list(pool.map(run, [name] * cores, [args.seed * 1000 + c for c in range(cores)], [share] * cores))
        seconds = time.perf_counter() - started
        accepted = sum(p[0] for p in parts)
        refused = sum(p[1] for p in parts)
        other = sum((p[2] for p in parts), Counter())
        total = accepted + refused + sum(other.values())
        print(f"{name}: {total} inputs, {accepted} accepted, {refused} AdapterError, "
              f"{sum(other.values())} other exceptions; {total / seconds:.0f} inputs/s on {cores} cores")  # fmt: skip
        for kind, count in other.most_common(8):
            print(f"  {count:>7}  {kind}")
        failed |= bool(other)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
