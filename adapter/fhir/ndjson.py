"""Transaction Bundle -> resources for FHIR Bulk Data ``$import`` (NDJSON, one file per resource type).

Bulk import needs each resource to carry its id and to reference others as ``Type/id``: the id is the
UUID of the entry's ``urn:uuid`` fullUrl, so the same case always yields the same ids.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from adapter.fhir.navigate import references
from adapter.types import JSON


def import_resources(bundle: JSON) -> Iterator[JSON]:
    """Each resource of an adapter-built Bundle with its id set and its references made relative."""
    targets = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['fullUrl'].removeprefix('urn:uuid:')}"
        for e in bundle["entry"]
    }
    for entry in bundle["entry"]:
        resource = orjson.loads(orjson.dumps(entry["resource"]))  # a copy, its references then rewritten
        for element in references(resource):
            element["reference"] = targets.get(element["reference"], element["reference"])
        yield {
            "resourceType": resource.pop("resourceType"),
            "id": entry["fullUrl"].removeprefix("urn:uuid:"),
            **resource,
        }
