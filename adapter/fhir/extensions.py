"""The extensions the adapter writes, each one's writer beside its reader.

The URLs are the tables' (``mappings/fhir.yaml`` ``extensions`` for the adapter's own, ``mappings/pas.yaml`` for
PAS's): a writer or reader takes the URL it writes or reads, as its caller has the tables at hand. Three kinds
live beside the one shape they belong to: PAS's reviewAction in ``adapter.fhir.pas`` (``review_action``,
``review_action_code``, ``review_number``), and the documentation asks' (administrationReferenceNumber,
serviceLineNumber; paLineNumber) in ``adapter.fhir.attachments`` and ``adapter.fhir.cdex``, each written and read
there only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from adapter.fhir.navigate import extensions
from adapter.model import CaseDates, GuidelineCitation, ParseWarning
from adapter.types import JSON

#: The parts of the case-dates extension, by ``CaseDates`` field.
_DATE_URLS: dict[str, str] = {
    "assigned": "assigned",
    "injury": "injury",
    "decision": "decision",
    "ur_denial": "urDenial",
    "application_received": "applicationReceived",
}
_DATE_FIELDS = {url: field for field, url in _DATE_URLS.items()}


def put(element: JSON, extension: JSON) -> None:
    """``extension`` on ``element``, in place of any it had with the same url."""
    element["extension"] = [e for e in element.get("extension", []) if e.get("url") != extension["url"]]
    element["extension"].append(extension)


def _value(extension: JSON) -> Any:
    """The value of a simple extension (whatever its ``value[x]`` type)."""
    return next((v for k, v in extension.items() if k.startswith("value")), None)


def _parts(extension: JSON) -> dict[str, Any]:
    """A complex extension's parts (sub-extensions), each url to its value."""
    return {p["url"]: _value(p) for p in extension.get("extension", [])}


def simple(url: str, kind: str, content: Any) -> JSON:
    """A simple extension: its url and one value, ``kind`` its ``value[x]`` (``valueCode``, ``valueReference``, ...).
    The adapter's letter-layout, guideline-basis, age-at-decision, session-count, body-site, service-request,
    determination-rule and reviewer extensions, and FHIR's data-absent-reason, are simple (age-at-decision and
    body-site read with ``age_of`` and ``body_sites_of``, session-count with ``by_id``)."""
    return {"url": url, kind: content}


def values(element: JSON, url: str) -> list[Any]:
    """The values of an element's simple extensions with this url, in order."""
    return [_value(e) for e in extensions(element, url)]


def part(extension: JSON, url: str, kind: str) -> Any:
    """The ``kind`` value (``valueString``, ...) of a complex extension's first part with this url."""
    found = extensions(extension, url)
    return found[0].get(kind) if found else None


def by_id(element: JSON, url: str, kind: str) -> Any:
    """The ``kind`` value of an element's first extension of the adapter's own named by ``url``'s id (its last
    segment), under whatever base: the requests a client sends may name one ``urn:imr-adapter:extension:{id}``,
    as before the adapter had a canonical base."""
    name = url.rsplit("/", 1)[-1]
    found = (e.get(kind) for e in element.get("extension", []) if str(e.get("url", "")).endswith(name))
    return next((v for v in found if v is not None), None)


def age_of(patient: JSON, url: str) -> int | None:
    """The age a Patient's age-at-decision extension gives."""
    age = (by_id(patient, url, "valueAge") or {}).get("value")
    return int(age) if age is not None else None


def body_sites_of(request: JSON, url: str) -> list[JSON]:
    """The CodeableConcepts of a request's body-site extensions (where a request without ``bodySite`` says)."""
    return [e["valueCodeableConcept"] for e in extensions(request, url) if "valueCodeableConcept" in e]


# --- guideline: a guideline the decision relied on, with its citations --------------------------------------


def citation(
    *,
    mtus: bool,
    title: str | None,
    edition: int | None = None,
    sections: Sequence[str] = (),
    pages: Sequence[int] = (),
) -> JSON:
    """The ``citation`` part of a guideline extension."""
    found: list[JSON] = [{"url": "mtus", "valueBoolean": mtus}]
    if title is not None:
        found.append({"url": "title", "valueString": title})
    if edition is not None:
        found.append({"url": "edition", "valueInteger": edition})
    found += [{"url": "section", "valueString": s} for s in sections]
    found += [{"url": "page", "valueInteger": p} for p in pages]
    return {"url": "citation", "extension": found}


def citation_of(extension: JSON) -> GuidelineCitation:
    """A ``citation`` part read back."""
    return GuidelineCitation(
        mtus=bool(part(extension, "mtus", "valueBoolean")),
        title=part(extension, "title", "valueString"),
        edition_year=part(extension, "edition", "valueInteger"),
        sections=[e["valueString"] for e in extensions(extension, "section")],
        pages=[e["valueInteger"] for e in extensions(extension, "page")],
    )


def guideline(url: str, source: str, text: str | None, citations: Sequence[JSON]) -> JSON:
    """The guideline extension: who relied on it (``source``), its words and its ``citation`` parts."""
    found: list[JSON] = [{"url": "source", "valueCode": source}]
    if text is not None:
        found.append({"url": "text", "valueString": text})
    return {"url": url, "extension": [*found, *citations]}


def guidelines_of(element: JSON, url: str) -> dict[str, JSON]:
    """An element's guideline extensions by source."""
    return {part(g, "source", "valueCode"): g for g in extensions(element, url)}


# --- evidence: a documentation fact the engine read ----------------------------------------------------------


def evidence(url: str, fact: str, status: str, quote: str | None, source: str | None) -> JSON:
    """The evidence extension of a ClaimResponse item: fact, status and, when found, quote and source."""
    found: list[JSON] = [{"url": "fact", "valueCode": fact}, {"url": "status", "valueCode": status}]
    if quote:
        found.append({"url": "quote", "valueString": quote})
    if source:
        found.append({"url": "source", "valueString": source})
    return {"url": url, "extension": found}


def evidence_of(item: JSON, url: str) -> list[dict[str, Any]]:
    """An item's evidence extensions read back: fact, status, quote and source by name."""
    return [_parts(e) for e in extensions(item, url)]


# --- recommendation: the engine's, beside the action sent -----------------------------------------------------


def recommendation(url: str, concept: JSON) -> JSON:
    """The recommendation extension of a ClaimResponse item: the engine's X12 306 code as a CodeableConcept."""
    return simple(url, "valueCodeableConcept", concept)


def recommended(item: JSON, url: str) -> str | None:
    """The engine's recommendation (its X12 306 code) an item's recommendation extension carries."""
    return next((c["code"] for e in extensions(item, url) for c in e["valueCodeableConcept"].get("coding", [])), None)


# --- the reviewer, PAS's --------------------------------------------------------------------------------------


def pas_reviewer(url: str, *, specialty: str | None = None, npi: JSON | None = None) -> JSON:
    """PAS ``claimResponseReviewer``: a human reviewed, with the reviewer's specialty or NPI when known."""
    found: list[JSON] = [{"url": "wasHumanReviewedFlag", "valueBoolean": True}]
    if specialty is not None:
        found.append({"url": "reviewerSpecialty", "valueCodeableConcept": {"text": specialty}})
    if npi is not None:
        found.append({"url": "reviewerNPI", "valueIdentifier": npi})
    return {"url": url, "extension": found}


# --- the letter's: its dates, parse warnings and modified requests -------------------------------------------


def case_dates(url: str, dates: CaseDates) -> JSON | None:
    """The case-dates extension: the dates a letter states (None when it states none)."""
    found = [{"url": _DATE_URLS[k], "valueDate": v.isoformat()} for k, v in dates if v is not None]
    return {"url": url, "extension": found} if found else None


def case_dates_of(response: JSON, url: str) -> CaseDates:
    """The dates of a ClaimResponse's case-dates extension."""
    found = [e for d in extensions(response, url) for e in d.get("extension", [])]
    return CaseDates(**{_DATE_FIELDS[e["url"]]: date.fromisoformat(e["valueDate"]) for e in found})


def parse_warning(url: str, warning: ParseWarning) -> JSON:
    """A parse-warning extension: the field of the letter not read, and why."""
    found = [{"url": "field", "valueString": warning.field}, {"url": "message", "valueString": warning.message}]
    return {"url": url, "extension": found}


def parse_warnings_of(response: JSON, url: str) -> list[ParseWarning]:
    """A ClaimResponse's parse warnings."""
    return [
        ParseWarning(field=part(w, "field", "valueString"), message=part(w, "message", "valueString"))
        for w in extensions(response, url)
    ]


def modified_request(url: str, *, original: str | None, authorized: str | None, statement: str | None) -> JSON | None:
    """The modified-request extension of an item: the original request, what was authorized and the statement
    (None when there is none of them)."""
    named = (("original", original), ("authorized", authorized), ("statement", statement))
    found = [{"url": k, "valueString": v} for k, v in named if v is not None]
    return {"url": url, "extension": found} if found else None


def modified_request_of(item: JSON, url: str) -> dict[str, Any]:
    """An item's modified-request parts by name (empty when it has none)."""
    found = extensions(item, url)
    return {k: part(found[0], k, "valueString") for k in ("original", "authorized", "statement")} if found else {}
