"""Determine a letter, a ServiceRequest or a Bundle: the one path from an input file to its requested
services, their facts and their determinations, for the ``determine`` and ``facts`` commands and the
benchmarks alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from adapter.determination import RULES, RequestFacts, determine_all, facts_from_letter
from adapter.determination.facts import letter_summary
from adapter.errors import InputError
from adapter.fhir.request_facts import requested_services
from adapter.inputs import read_letter
from adapter.letters import parse_letter
from adapter.review.policy import Policy
from adapter.tables import mappings


def request_facts(path: Path) -> tuple[str | None, list[tuple[str, RequestFacts]]]:
    """One input (a letter, a ServiceRequest or a Bundle) -> its case number and each requested service with
    the facts the engine reads for it."""
    data = read_letter(path)
    if path.suffix.lower() == ".json" or data.lstrip()[:1] == b"{":
        try:
            resource = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"not JSON: {exc}", location=str(path)) from exc
        if not isinstance(resource, dict):
            raise InputError("not a FHIR resource", location=str(path))
        return None, [(r.facts.request, r.facts) for r in requested_services(resource)]
    case = parse_letter(data)
    summary = letter_summary(case)
    return case.case_number, [(i.requested, facts_from_letter(case, i, summary)) for i in case.items]


def determine_file(path: Path, policy: Policy) -> dict[str, Any]:
    """One input (a letter, a ServiceRequest or a Bundle) -> its determinations as a JSON-ready dict, adverse
    recommendations as the review ``policy`` says."""
    case_number, found = request_facts(path)
    answers = determine_all([facts for _, facts in found], mappings()[RULES], adverse=policy.adverse)
    return {
        "input": str(path),
        "case_number": case_number,
        "items": [
            {"request": request, **answer.model_dump(mode="json", exclude_none=True)}
            for (request, _), answer in zip(found, answers, strict=True)
        ],
    }


def facts_file(path: Path) -> dict[str, Any]:
    """One input -> every fact the engine reads for each requested service: the request's own facts, and each
    documentation fact with its status, quote and source (not only those a rule used)."""
    case_number, found = request_facts(path)
    items = []
    for request, facts in found:
        values = facts.model_dump(mode="json", exclude={"evidence"})
        evidence = {fact: f.model_dump(mode="json", exclude_none=True) for fact, f in facts.evidence.items()}
        items.append({"request": request, "facts": values, "evidence": evidence})
    return {"input": str(path), "case_number": case_number, "items": items}
