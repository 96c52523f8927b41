"""Cases back from a FHIR server: the adapter's ClaimResponses (optionally changed since a date), each
with every resource it reaches by reference, plus the Procedures and DocumentReference of its Patient."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

from adapter.errors import AdapterError, MappingError
from adapter.exchange.client import FHIRClient
from adapter.fhir import bundle_to_case
from adapter.fhir.navigate import references, typed_id
from adapter.model import IMRCase
from adapter.tables import Tables, mappings
from adapter.types import JSON


def _local(reference: str, base: str) -> str | None:
    """``Type/id`` for a reference to this server (relative, or absolute on its base)."""
    if reference.startswith(base + "/"):
        reference = reference[len(base) + 1 :]
    found = typed_id(reference)
    return f"{found[0]}/{found[1]}" if found else None


def case_resources(client: FHIRClient, response: JSON) -> list[JSON]:
    """The ClaimResponse and everything its case is made of, read off the server."""
    found: dict[str, JSON] = {f"ClaimResponse/{response['id']}": response}
    queue = [element["reference"] for element in references(response)]
    while queue:
        key = _local(queue.pop(), client.base_url)
        if key is None or key in found:
            continue
        rtype, rid = key.split("/")
        resource = client.read(rtype, rid)
        found[key] = resource
        queue += [element["reference"] for element in references(resource)]
    patient = (response.get("patient") or {}).get("reference")
    if not isinstance(patient, str):
        raise MappingError("a ClaimResponse without its patient reference", location=f"ClaimResponse/{response['id']}")
    for rtype in ("Procedure", "DocumentReference"):
        for resource in client.search(rtype, {"subject": _local(patient, client.base_url) or patient}):
            found.setdefault(f"{rtype}/{resource['id']}", resource)
    return list(found.values())


def pull_cases(
    client: FHIRClient, *, since: date | datetime | None = None, tables: Tables | None = None
) -> Iterator[IMRCase | AdapterError]:
    """Each case the adapter wrote to the server (changed since ``since``), or the error reading it."""
    tables = tables or mappings().tables
    params: dict[str, str] = {"identifier": f"{tables.identifier_system('claim-response')}|", "_count": "50"}
    if since is not None:
        params["_lastUpdated"] = f"ge{since.isoformat()}"
    for response in client.search("ClaimResponse", params):
        try:
            yield bundle_to_case(case_resources(client, response), tables=tables)
        except AdapterError as exc:
            if isinstance(exc, MappingError) and exc.location is None:
                exc.location = f"ClaimResponse/{response.get('id')}"
            yield exc
