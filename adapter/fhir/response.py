"""Determinations -> a FHIR R4 ClaimResponse shaped like Da Vinci PAS (and the PAS response Bundle).

One item per requested service with the PAS reviewAction (A1/A3/A4/A6: the action sent); the engine's
recommendation and the evidence it read (fact, status, quote, source) in the adapter's recommendation and
evidence extensions; for A6, what is certified in an ``addItem``; the rationale in ``processNote`` linked by
``noteNumber``; each rule's guideline citation in the adapter's guideline extension. ``outcome`` is
``complete`` when every item is decided, else ``partial`` (PAS does not allow ``queued``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from adapter.determination import Determination
from adapter.tables import Tables, load_tables

JSON = dict[str, Any]
SERVICE_REQUEST_EXTENSION = "urn:imr-adapter:extension:service-request"
RULE_EXTENSION = "urn:imr-adapter:extension:determination-rule"


def _pages(pages: str | None) -> list[int]:
    out: list[int] = []
    for start, end in re.findall(r"(\d+)(?:\s*-\s*(\d+))?", pages or ""):
        out.extend(range(int(start), int(end) + 1) if end and 0 < int(end) - int(start) < 50 else [int(start)])
    return out


def claim_response(
    answers: Sequence[tuple[str, JSON, Determination]],
    *,
    patient: JSON | None,
    claim_ref: str | None = None,
    created: datetime | None = None,
    tables: Tables | None = None,
) -> JSON:
    """A ClaimResponse for (ServiceRequest reference, ServiceRequest, Determination) triples, in order."""
    tables = tables or load_tables()
    ext, systems = tables.fhir.extensions, tables.system_uris

    def review(code: str) -> JSON:
        coding = {"system": systems["review_action"], "code": code}
        return {
            "category": {"coding": [{"system": systems["adjudication"], "code": "submitted"}]},
            "extension": [{"url": ext.review_action, "extension": [{"url": ext.review_action_code,
                                                                    "valueCodeableConcept": {"coding": [coding]}}]}],
        }  # fmt: skip

    items, added, notes = [], [], []
    for n, (ref, request, answer) in enumerate(answers, start=1):
        extensions: list[JSON] = [{"url": SERVICE_REQUEST_EXTENSION, "valueReference": {"reference": ref}}]
        extensions += [{"url": RULE_EXTENSION, "valueString": rule} for rule in answer.rules]
        for citation in answer.citations:
            parts: list[JSON] = [
                {"url": "mtus", "valueBoolean": citation.guideline.startswith("MTUS")},
                {"url": "title", "valueString": citation.guideline},
            ]
            if citation.section:
                parts.append({"url": "section", "valueString": citation.section})
            parts += [{"url": "page", "valueInteger": p} for p in _pages(citation.pages)]
            extensions.append({"url": ext.guideline, "extension": [
                {"url": "source", "valueCode": "rule"}, {"url": "text", "valueString": citation.rule},
                {"url": "citation", "extension": parts}]})  # fmt: skip
        recommended = {"system": systems["review_action"], "code": answer.recommendation}
        extensions.append({"url": ext.recommendation, "valueCodeableConcept": {"coding": [recommended]}})
        for found in answer.evidence:
            parts = [{"url": "fact", "valueCode": found.fact}, {"url": "status", "valueCode": found.status}]
            if found.quote:
                parts.append({"url": "quote", "valueString": found.quote})
            if found.source:
                parts.append({"url": "source", "valueString": found.source})
            extensions.append({"url": ext.evidence, "extension": parts})
        notes.append({"number": n, "type": "display", "text": answer.rationale})
        items.append(
            {"extension": extensions, "itemSequence": n, "noteNumber": [n], "adjudication": [review(answer.action)]}
        )
        if answer.action == "A6" and answer.certified_quantity is not None:
            code = request.get("code", {})
            added.append({
                "itemSequence": [n],
                "productOrService": code.get("concept", code) or {"text": "service"},
                "quantity": {"value": answer.certified_quantity},
                "adjudication": [review("A1")],
            })  # fmt: skip
    response: JSON = {
        "resourceType": "ClaimResponse",
        "id": str(uuid.uuid4()),
        "status": "active",
        "type": {"coding": [{"system": systems["claim_type"], "code": "professional"}]},
        "use": "preauthorization",
        "patient": patient or {"display": "unknown patient"},
        "created": (created or datetime.now(UTC)).isoformat(timespec="seconds"),
        "insurer": {"display": "IMR adapter utilization review"},
        "outcome": "complete" if all(a.action != "A4" for _, _, a in answers) else "partial",
        "disposition": ", ".join(f"{a.action}" for _, _, a in answers),
        "item": items,
        "processNote": notes,
    }
    if claim_ref:
        response["request"] = {"reference": claim_ref}
    if added:
        response["addItem"] = added
    return response
