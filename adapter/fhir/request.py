"""A request as the edge read it: one object that every step after the edge shares.

An inbound request (a ServiceRequest, a context Bundle, a PAS request Bundle) is parsed and checked once
(``adapter.fhir.inbound``), then indexed once here: its resources with where each sits (the entry's fullUrl,
else ``Type/id``), found by fullUrl or ``Type/id``; its shape; the Claim and the Patient it is about. The PAS
checker, the parties an inquiry finds it by, the copy the service stores (``localized``, indexed as it is
made), the FHIR reader of the determination and the response read this one object, instead of each walking
and indexing the JSON again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adapter.errors import MappingError
from adapter.fhir.inbound import DEFAULT_LIMITS, Limits, check_inbound
from adapter.fhir.local import localized
from adapter.fhir.navigate import Index
from adapter.fhir.pas import REQUEST_RESOURCES
from adapter.fhir.r5 import is_r5
from adapter.types import JSON

Shape = Literal["pas", "bundle", "service-request"]


@dataclass(frozen=True, eq=False)
class RequestBundle:
    """One request, checked: its JSON, its resources (where each sits, the resource), its shape, its index."""

    data: JSON
    entries: list[tuple[str, JSON]]
    shape: Shape
    index: Index

    @classmethod
    def of(cls, data: JSON) -> RequestBundle:
        """Index a checked request (``MappingError`` for a resource that is no request and no Bundle)."""
        if data.get("resourceType") == "Bundle":
            held = [(n, e) for n, e in enumerate(data.get("entry", [])) if isinstance(e.get("resource"), dict)]
            entries = [(e.get("fullUrl") or f"{e['resource']['resourceType']}/{e['resource'].get('id', n)}",
                        e["resource"]) for n, e in held]  # fmt: skip
            first = entries[0][1].get("resourceType") if entries else None
            index = Index((e.get("fullUrl"), e["resource"]) for _, e in held)
            return cls(data, entries, "pas" if first == "Claim" else "bundle", index)
        if data.get("resourceType") in REQUEST_RESOURCES:
            entries = [(f"{data['resourceType']}/{data.get('id', 'request')}", data)]
            return cls(data, entries, "service-request", Index([(None, data)]))
        raise MappingError(
            "expected a ServiceRequest, MedicationRequest, DeviceRequest or a Bundle, "
            f"not {data.get('resourceType')!r}",
            location="resourceType",
        )

    @property
    def resources(self) -> list[JSON]:
        return [resource for _, resource in self.entries]

    @property
    def claim(self) -> JSON | None:
        """The Claim of a PAS request (its first entry), else None."""
        return self.entries[0][1] if self.shape == "pas" else None

    @property
    def patient(self) -> JSON | None:
        """The Patient the request is about: the one its Claim names, else the one it holds."""
        named = self.index.find((self.claim or {}).get("patient"))
        if named is not None and named.get("resourceType") == "Patient":
            return named
        return next((r for r in self.resources if r.get("resourceType") == "Patient"), None)

    def localized(self, seed: str, base: str) -> RequestBundle:
        """The copy the service keeps (``adapter.fhir.local``), indexed as it is made."""
        copy, index = localized(self.data, seed, base, self.index)
        held = [e for e in copy.get("entry", []) if isinstance(e.get("resource"), dict)]
        return RequestBundle(copy, [(e["fullUrl"], e["resource"]) for e in held], self.shape, index)


def request_bundle(
    data: JSON | RequestBundle, *, checked: bool = False, limits: Limits = DEFAULT_LIMITS
) -> RequestBundle:
    """``data`` as a RequestBundle: as it is when it is one, else indexed, after the edge check unless the
    caller ran it (``checked``)."""
    if isinstance(data, RequestBundle):
        return data
    if not checked:
        check_inbound(data, version="R5" if is_r5(data) else "R4", limits=limits)
    return RequestBundle.of(data)
