"""Transaction Bundle -> resources for FHIR Bulk Data ``$import`` (NDJSON, one file per resource type).

Bulk import needs each resource to carry its id and to reference others as ``Type/id``: the id is the
UUID of the entry's ``urn:uuid`` fullUrl, so the same case always yields the same ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from adapter.types import JSON


def _rewrite(value: Any, targets: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: (targets.get(v, v) if k == "reference" and isinstance(v, str) else _rewrite(v, targets))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(v, targets) for v in value]
    return value


def import_resources(bundle: JSON) -> Iterator[JSON]:
    """Each resource of an adapter-built Bundle with its id set and its references made relative."""
    targets = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['fullUrl'].removeprefix('urn:uuid:')}"
        for e in bundle["entry"]
    }
    for entry in bundle["entry"]:
        resource = _rewrite(entry["resource"], targets)
        yield {
            "resourceType": resource.pop("resourceType"),
            "id": entry["fullUrl"].removeprefix("urn:uuid:"),
            **resource,
        }
