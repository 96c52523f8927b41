"""Validating a request's resources: how fast each way is, and whether the fast one refuses what the models do.

    python bench/validators.py [--corpus /work/shared/corpus/text] [--mutants 3000]

Makes PAS request Bundles from the corpus letters with `imr-adapter convert --pas` (in a temporary folder), then
times, per Bundle, CPU in this process:

- fhir.resources `model_validate` of every resource (the models: the reference);
- `model_validate` of only the resource types the determination reads (the rest unchecked);
- `model_construct` (no validation at all: the floor any validator stands on);
- the FHIR R4 JSON schema compiled by jsonschema-rs with the models' choices and required primitives added
  (`adapter.fhir.schema`), the models asked only when it refuses (what `adapter.fhir.inbound` does).

Then mutates the corpus's resources at random, one change each (an element dropped, added, retyped, emptied,
a choice given twice, a date or code malformed, a list made an object or the reverse), and counts the
mutants the models refuse that the schema lets through (the only way the two can part: a schema refusal
is checked by the models). JSON Schema compilers that generate Python (fastjsonschema) take minutes to
compile the FHIR schema and are left out.
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from submit_load import CORPUS, pas_bundles

from adapter.errors import MappingError
from adapter.fhir.inbound import check_resource
from adapter.fhir.pas import REQUEST_RESOURCES
from adapter.fhir.schema import schema_valid, warm_up

JSON = dict[str, Any]
#: What the determination reads beside the requests themselves (adapter.fhir.request_facts).
READ = {"Claim", "Patient", "Condition", "Procedure", "MedicationStatement", "DocumentReference", "Observation",
        *REQUEST_RESOURCES}  # fmt: skip


def _model(rtype: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(rtype)


def _per_bundle(bundles: list[list[JSON]], check: Callable[[JSON], object]) -> float:
    """CPU milliseconds per Bundle of ``check`` over every resource (the best of three rounds)."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for resources in bundles:
            for resource in resources:
                check(resource)
        best = min(best, time.process_time() - started)
    return best / len(bundles) * 1000


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value (keys and indexes), resourceType aside."""
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "resourceType":
                found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found += _paths(item, (*path, n))
    return found


def _mutate(resource: JSON, rng: random.Random) -> tuple[str, JSON]:
    """One random change to a copy of the resource, and its kind."""
    mutant = copy.deepcopy(resource)
    path = rng.choice(_paths(mutant))
    parent: Any = mutant
    for step in path[:-1]:
        parent = parent[step]
    last, value = path[-1], parent[path[-1]]
    kind = rng.choice(["drop", "add", "int", "string", "empty", "list", "twice", "date", "code"])
    if kind == "drop" and isinstance(parent, dict):
        del parent[last]
    elif kind == "add" and isinstance(value, dict):
        value[rng.choice(["unknownElement", "valueString", "text", "id", "_status"])] = "x"
    elif kind == "int":
        parent[last] = 7
    elif kind == "string":
        parent[last] = "x"
    elif kind == "empty":
        parent[last] = "" if isinstance(value, str) else type(value)() if isinstance(value, dict | list) else value
    elif kind == "list":
        parent[last] = value[0] if isinstance(value, list) and value else [value]
    elif kind == "twice" and isinstance(parent, dict) and isinstance(last, str):
        twin = next((t for t in ("String", "Boolean", "Period", "Reference", "Quantity") if not last.endswith(t)), "")
        stem = last.rstrip("abcdefghijklmnopqrstuvwxyz0123456789") if last[:1].islower() else last
        parent[(stem[:-1] if stem and stem[-1].isupper() else last) + twin] = value
    elif kind == "date":
        parent[last] = rng.choice(["2020-13-45", "2020-02-30T25:00:00Z", "12/01/2020", "2020-1-1"])
    elif kind == "code":
        parent[last] = rng.choice([" code", "a  b", "\tx", "x "])
    return kind, mutant


def _models_refuse(resource: JSON) -> bool:
    try:
        _model(resource["resourceType"]).model_validate(resource)
    except (ValidationError, AttributeError, TypeError, ValueError):
        return True
    return False


def _edge_refuses(resource: JSON) -> bool:
    try:
        check_resource(resource)
    except MappingError:
        return True
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--mutants", type=int, default=3000)
    args = parser.parse_args()
    bundles = [[e["resource"] for e in b["entry"]] for _, b in pas_bundles(args.corpus)]
    started = time.perf_counter()
    warm_up()
    print(f"the schema compiled in {time.perf_counter() - started:.2f} s")
    resources = [r for b in bundles for r in b]
    for rtype in {r["resourceType"] for r in resources}:
        _model(rtype).model_validate(next(r for r in resources if r["resourceType"] == rtype))
    print(f"{len(bundles)} PAS Bundles, {len(resources)} resources; CPU per Bundle:")
    ways: list[tuple[str, Callable[[JSON], object]]] = [
        ("fhir.resources model_validate, every resource", lambda r: _model(r["resourceType"]).model_validate(r)),
        (
            "model_validate, only the types read",
            lambda r: r["resourceType"] in READ and _model(r["resourceType"]).model_validate(r),
        ),  # fmt: skip
        ("model_construct (no validation)", lambda r: _model(r["resourceType"]).model_construct(**r)),
        ("R4 JSON schema (jsonschema-rs) + models on refusal", check_resource),
        ("  of which the schema alone", schema_valid),
    ]
    for name, check in ways:
        print(f"  {name:<52} {_per_bundle(bundles, check):6.2f} ms")
    rng = random.Random(20261203)
    refused, parted = Counter(), Counter()
    examples: list[str] = []
    for _ in range(args.mutants):
        kind, mutant = _mutate(rng.choice(resources), rng)
        if _models_refuse(mutant):
            refused[kind] += 1
            if not _edge_refuses(mutant):
                parted[kind] += 1
                examples.append(f"{kind}: {str(mutant)[:160]}")
    print(f"{args.mutants} mutants, {sum(refused.values())} refused by the models; let through by the schema: "
          f"{sum(parted.values())} {dict(parted) if parted else ''}")  # fmt: skip
    for example in examples[:5]:
        print(f"  {example}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
