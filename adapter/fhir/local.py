"""A request Bundle as the service keeps it: each resource under an id of the service's own, at a fullUrl on
the service's base, and every reference inside rewritten to that ``Type/id``, so that what the answer names
(the Claim, the Patient, the insurer, the requests) resolves on the service as well as inside the Bundle."""

from __future__ import annotations

import uuid

import orjson

from adapter.fhir.navigate import Index, references
from adapter.types import JSON

#: Ids of stored request resources are UUID v5 in this namespace of the request's key and the entry's fullUrl.
_NAMESPACE = uuid.UUID("6f1d7c52-3b9e-4c1a-9d0e-2a7b5c8e4f10")


def _held(bundle: JSON) -> list[JSON]:
    return [e for e in bundle.get("entry", []) if isinstance(e, dict) and isinstance(e.get("resource"), dict)]


def localized(bundle: JSON, seed: str, base: str, index: Index | None = None) -> tuple[JSON, Index]:
    """A copy of ``bundle`` whose resources have the ids the service stores them under (the same request,
    by ``seed``, always gets the same ids), fullUrls ``{base}/{Type}/{id}``, and every reference inside the
    Bundle rewritten to ``Type/id``; and the copy's index, made with it. References are resolved with the
    Bundle's own ``index`` (made here when not given)."""
    index = index or Index.of_bundle(bundle)
    local: dict[int, tuple[str, str]] = {}
    for n, entry in enumerate(_held(bundle)):
        resource = entry["resource"]
        name = uuid.uuid5(_NAMESPACE, f"{seed}|{entry.get('fullUrl', n)}")
        local[id(resource)] = (resource["resourceType"], str(name))

    def target(reference: str) -> str | None:
        found = index.find({"reference": reference})
        return "/".join(local[id(found)]) if found is not None and id(found) in local else None

    names = [local[id(e["resource"])] for e in _held(bundle)]
    bundle = orjson.loads(orjson.dumps(bundle))  # a copy, made in C (JSON only: the edge admitted nothing else)
    for entry, (rtype, rid) in zip(_held(bundle), names, strict=True):
        for element in references(entry["resource"]):
            element["reference"] = target(element["reference"]) or element["reference"]
        entry["resource"]["id"] = rid
        entry["fullUrl"] = f"{base.rstrip('/')}/{rtype}/{rid}"
    return bundle, Index((e["fullUrl"], e["resource"]) for e in _held(bundle))
