"""What the edge refuses in a JSON tree, and where it says the problem is (the OperationOutcome's location)."""

from __future__ import annotations

from typing import Any

import pytest

from adapter.errors import AdapterError, InputLimitError, MappingError
from adapter.fhir.inbound import Limits, check_inbound, check_tree

NPI = "http://hl7.org/fhir/sid/us-npi"


@pytest.mark.parametrize(
    ("tree", "error", "location"),
    [
        ({"entry": [{"resource": {"gender": None}}]}, MappingError, "entry[0].resource.gender"),
        ({"note": [{"text": "pain\x00"}]}, MappingError, "note[0].text"),
        ({"performer": [{"identifier": {"system": NPI, "value": "12345"}}]}, MappingError,
         "performer[0].identifier.value"),
        ({"entry": [{}, {"resource": {"text": "x" * 11}}]}, InputLimitError, "entry[1].resource.text"),
        ({"a": {"b": {"c": {"d": 1}}}}, InputLimitError, "a.b.c.d"),
        ([None], MappingError, "[0]"),
        ({"item": [{"quantity": {"value": 2**63}}]}, MappingError, "item[0].quantity.value"),
    ],
)  # fmt: skip
def test_a_problem_is_placed_where_it_is(tree: Any, error: type[AdapterError], location: str) -> None:
    with pytest.raises(error) as raised:
        check_tree(tree, Limits(max_text=10, max_depth=4))
    assert raised.value.location == location


def test_a_tree_too_large_is_refused_before_it_is_walked_through() -> None:
    with pytest.raises(InputLimitError, match="more than 100 JSON values"):
        check_tree({"entry": [{"n": n} for n in range(100)]}, Limits(max_nodes=100))
    check_tree({"entry": [{"n": n, "text": "ok\ttab"} for n in range(10)]}, Limits(max_nodes=100))


def test_two_entries_of_one_full_url_are_refused_where_the_second_stands() -> None:
    """FHIR bdl-7: a fullUrl is unique in a Bundle; the service would store the two as one resource."""
    patient = {"fullUrl": "urn:uuid:0b308c24-e229-5099-9721-f1787ac06458", "resource": {"resourceType": "Patient"}}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [patient, {"resource": {"resourceType": "Basic",
              "code": {"text": "x"}}}, patient]}  # fmt: skip
    with pytest.raises(MappingError, match="entry\\[0\\] has the same fullUrl") as raised:
        check_inbound(bundle)
    assert raised.value.location == "entry[2].fullUrl"
    check_inbound({**bundle, "entry": bundle["entry"][:2]})
