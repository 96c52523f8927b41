"""The FHIR R4 JSON schema at the edge: what it passes, the models pass; what the models refuse is refused with
the models' own message and path; the table of what the models check beyond the schema is current."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from adapter.errors import MappingError
from adapter.fhir import schema
from adapter.fhir.inbound import check_resource
from adapter.fhir.validate import invalid

SUBMIT = json.loads((Path(__file__).parent.parent / "fixtures" / "http" / "claim-submit.json").read_text())
RESOURCES = [e["resource"] for e in SUBMIT["entry"]]


def _of(rtype: str) -> dict[str, Any]:
    return copy.deepcopy(next(r for r in RESOURCES if r["resourceType"] == rtype))


def _models_say(resource: dict[str, Any]) -> str:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except ValidationError as exc:
        return str(invalid(exc, f"FHIR R4 {resource['resourceType']}", "entry[0].resource"))
    raise AssertionError("the models pass it")


def test_a_request_the_models_pass_passes_the_schema_alone() -> None:
    assert all(schema.schema_valid(r) for r in RESOURCES)


def _with(rtype: str, change: Any) -> dict[str, Any]:
    resource = _of(rtype)
    change(resource)
    return resource


BROKEN = {
    "a number for an Identifier": _with("Claim", lambda c: c.update(identifier=[7])),
    "a choice given twice": _with(
        "Claim", lambda c: c["item"][0].update(locationReference={"reference": "Location/1"})
    ),
    "a required primitive left out": _with("Claim", lambda c: c.pop("status")),
    "an empty primitive extension": _with("Claim", lambda c: c.update(_created={})),
    "base64 that does not decode": _with("Patient", lambda p: p.update(photo=[{"data": "abc"}])),
    "an unknown element": _with("Coverage", lambda c: c.update(colour="blue")),
    "a malformed date": _with("Condition", lambda c: c.update(recordedDate="2026-02-30T25:00:00Z")),
}


@pytest.mark.parametrize("resource", BROKEN.values(), ids=BROKEN.keys())
def test_what_the_models_refuse_is_refused_in_their_words(resource: dict[str, Any]) -> None:
    assert not schema.schema_valid(resource)
    with pytest.raises(MappingError) as refused:
        check_resource(resource, "entry[0].resource")
    assert str(refused.value) == _models_say(resource)


def test_the_table_of_what_the_models_check_beyond_the_schema_is_current() -> None:
    assert json.loads(schema.BEYOND.read_text()) == schema.beyond_schema(), "run python -m adapter.fhir.schema"
