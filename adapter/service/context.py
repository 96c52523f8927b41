"""The context of a page of EHR requests, read in as few round trips as the EHR allows.

A request is determined with what the EHR knows about its patient: the Patient, Conditions, Procedures,
MedicationRequests (the drugs taken), completed ServiceRequests (earlier care) and DocumentReferences (the
clinical notes). Read one request at a time, that is six searches per request. Read per page, it is one
search per resource type for all the page's patients at once (``subject=Patient/a,Patient/b,...``, FHIR's
OR), all sent in one ``batch`` Bundle when the EHR's CapabilityStatement declares ``batch``, each followed
through its ``next`` links; the Patients come with the page itself when the request search offers
``_include={type}:subject``. Each patient's context is read once however many of its requests the page
holds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from adapter.exchange import FHIRClient
from adapter.fhir.navigate import typed_id
from adapter.types import JSON

#: What the EHR knows about a patient that a determination reads, by resource type (and its filter).
CONTEXT_SEARCHES: tuple[tuple[str, dict[str, str]], ...] = (
    ("Condition", {}),
    ("Procedure", {}),
    ("MedicationRequest", {}),
    ("ServiceRequest", {"status": "completed"}),
    ("DocumentReference", {}),
)
#: Patients per OR search: keeps each search line well under the usual 8 KB request-line limits.
PATIENTS_PER_SEARCH = 50
#: Results per search page asked for (a server may send fewer and a next link).
RESULTS_PER_PAGE = 1000


@dataclass
class Capabilities:
    """What the EHR's CapabilityStatement offers for reading context."""

    batch: bool = False
    #: Request types whose search offers ``_include={type}:subject``.
    include_subject: set[str] = field(default_factory=set)
    #: The search parameters declared per resource type.
    search_params: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, ehr: FHIRClient) -> Capabilities:
        """From the EHR's CapabilityStatement (one read)."""
        rests = _objects(ehr.capabilities().get("rest"))  # read like any other input: any shape at all
        declared = {str(r.get("type")): r for rest in rests for r in _objects(rest.get("resource"))}
        includes = {t: r.get("searchInclude") for t, r in declared.items()}
        params = {t: _objects(r.get("searchParam")) for t, r in declared.items()}
        return cls(
            batch=any(i.get("code") == "batch" for rest in rests for i in _objects(rest.get("interaction"))),
            include_subject={t for t, i in includes.items() if isinstance(i, list) and f"{t}:subject" in i},
            search_params={t: {str(p.get("name")) for p in found} for t, found in params.items()},
        )


def _objects(value: Any) -> list[JSON]:
    """The JSON objects of a list (nothing when it is not one)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def search_entries(page: JSON) -> list[tuple[JSON, str]]:
    """(resource, search mode) of every entry of a search page that holds a resource with a type, whatever
    else the EHR put there (an entry list that is not a list, entries or ``search`` that are not objects):
    its answers are read like any other input, never trusted to be shaped."""
    entries = page.get("entry")
    found = []
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            search = entry.get("search")
            mode = search.get("mode") if isinstance(search, dict) else None
            found.append((resource, mode if isinstance(mode, str) else "match"))
    return found


def patient_reference(reference: JSON | None) -> str:
    """``Patient/{id}`` from a reference to a patient (relative or absolute), else ""."""
    found = typed_id(str(reference.get("reference", "") if isinstance(reference, dict) else ""), absolute=True)
    return f"Patient/{found[1]}" if found and found[0] == "Patient" else ""


def patients_of(requests: Iterable[JSON]) -> list[str]:
    """The patients (``Patient/{id}``) the requests are for, sorted, once each."""
    return sorted({ref for r in requests if (ref := patient_reference(r.get("subject")))})


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ContextReader:
    """Reads the patients' context of a page of requests."""

    def __init__(self, ehr: FHIRClient, capabilities: Capabilities) -> None:
        self.ehr = ehr
        self.capabilities = capabilities

    def searches(self, patients: Sequence[str], known: set[str]) -> list[tuple[str, list[tuple[str, str]]]]:
        """(type, parameters) of every search the page needs: Patients not already at hand, then context."""
        out: list[tuple[str, list[tuple[str, str]]]] = []
        missing = [p.removeprefix("Patient/") for p in patients if p not in known]
        for chunk in _chunks(missing, PATIENTS_PER_SEARCH):
            out.append(("Patient", [("_id", ",".join(chunk)), ("_count", str(RESULTS_PER_PAGE))]))
        for chunk in _chunks(list(patients), PATIENTS_PER_SEARCH):
            for rtype, extra in CONTEXT_SEARCHES:
                params = [("subject", ",".join(chunk)), *extra.items(), ("_count", str(RESULTS_PER_PAGE))]
                out.append((rtype, params))
        return out

    def pages(self, searches: list[tuple[str, list[tuple[str, str]]]]) -> Iterable[JSON]:
        """Every result page of the searches: one batch round trip (and the next links) where offered."""
        if not self.capabilities.batch or not searches:
            for rtype, params in searches:
                yield from self.ehr.search_pages(rtype, params)
            return
        bundle = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": f"{rtype}?{urlencode(params)}"}} for rtype, params in searches
            ],
        }
        for (rtype, params), result in zip(searches, self.ehr.batch(bundle), strict=True):
            if 200 <= result.status < 300 and isinstance(result.resource, dict):
                yield from self.ehr.pages(result.resource)
            else:  # that one search again on its own: its error (if any) is raised as the server's answer
                yield from self.ehr.search_pages(rtype, params)

    def read(self, requests: Sequence[JSON], included: Iterable[JSON] = ()) -> dict[str, list[JSON]]:
        """Patient reference -> the Bundle entries of what the EHR knows about that patient (the Patient
        first when the EHR has it); ``included`` are Patients that came with the page."""
        patients = patients_of(requests)
        found: dict[str, list[JSON]] = defaultdict(list)
        people = {f"Patient/{p['id']}": p for p in included
                  if p.get("resourceType") == "Patient" and isinstance(p.get("id"), str)}  # fmt: skip
        for page in self.pages(self.searches(patients, set(people))):
            for resource, mode in search_entries(page):
                rtype, rid = resource["resourceType"], resource.get("id")
                if not isinstance(rid, str) or not rid or mode != "match":
                    continue
                if rtype == "Patient":
                    people[f"Patient/{rid}"] = resource
                else:
                    found[patient_reference(resource.get("subject"))].append(
                        {"fullUrl": f"{rtype}/{rid}", "resource": resource}
                    )
        return by_patient(patients, people, found)


def by_patient(patients: Sequence[str], people: dict[str, JSON], found: dict[str, list[JSON]]) -> dict[str, list[JSON]]:
    """Patient reference -> its Bundle entries: the Patient first (when at hand), then what was found for it."""
    return {ref: ([{"fullUrl": ref, "resource": people[ref]}] if ref in people else []) + found.get(ref, [])
            for ref in patients}  # fmt: skip


def context_bundles(requests: Sequence[JSON], contexts: dict[str, list[JSON]]) -> list[JSON]:
    """Each request's context Bundle from its patient's entries (``contexts`` by patient reference)."""
    return [context_bundle(r, contexts.get(patient_reference(r.get("subject")), [])) for r in requests]


def context_bundle(request: JSON, patient: list[JSON]) -> JSON:
    """A collection Bundle: the request first, then its patient's context (the request itself left out)."""
    own = (request["resourceType"], request["id"])
    entries = [{"fullUrl": f"{own[0]}/{own[1]}", "resource": request}]
    entries += [e for e in patient if (e["resource"]["resourceType"], e["resource"].get("id")) != own]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}
