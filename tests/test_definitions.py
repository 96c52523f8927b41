"""The adapter's own extensions resolve: every extension URL it writes (case Bundles, PAS requests, $submit
answers) is HL7's, Da Vinci PAS's, or one of its own, whose StructureDefinition the service serves, valid
R4, and describing exactly the values and parts the adapter writes."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.structuredefinition import StructureDefinition

from adapter import parse_letter
from adapter.config import load_settings
from adapter.errors import MappingTableError
from adapter.fhir import case_to_bundle
from adapter.fhir.build import pas_bundle
from adapter.service import wire
from adapter.tables import load_table
from tests.conftest import LETTERS, ROOT, auth

JSON = dict[str, Any]
TOKEN = "definitions-token"
FOREIGN = ("http://hl7.org/fhir/StructureDefinition/", "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    state = tmp_path_factory.mktemp("state") / "state.db"
    settings = load_settings(service={"tokens": {TOKEN: "system/Claim.write"}, "state_url": f"sqlite:///{state}",
                                      "forward": False, "rate_limit": 10_000})  # fmt: skip
    with TestClient(wire(settings).app()) as test_client:
        yield test_client


def _extensions(value: Any) -> Iterator[JSON]:
    """Every top-level extension (with its sub-extensions inside) anywhere in a resource or Bundle."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("extension", "modifierExtension") and isinstance(item, list):
                yield from (e for e in item if isinstance(e, dict))
                for e in item:
                    yield from _extensions({k: v for k, v in e.items() if k != "extension"})
            else:
                yield from _extensions(item)
    elif isinstance(value, list):
        for item in value:
            yield from _extensions(item)


def _elements(definition: JSON) -> dict[str, JSON]:
    return {e["id"]: e for e in definition["differential"]["element"]}


def _conforms(extension: JSON, elements: dict[str, JSON], at: str = "Extension") -> None:
    """An extension instance holds what its definition says at ``at``: its value type, or defined parts."""
    value = next((k for k in extension if k.startswith("value")), None)
    if value is not None:
        types = [t["code"] for t in elements[f"{at}.value[x]"].get("type", [])]
        assert value[len("value") :].lower() == types[0].lower(), (at, value, types)
        return
    names = [p["url"] for p in extension["extension"]]
    for name in set(names):
        slice_id = f"{at}.extension:{name}"
        assert slice_id in elements, f"{name} is not a part of {at}"
        assert elements[slice_id]["max"] == "*" or names.count(name) == 1
    for part in extension["extension"]:
        _conforms(part, elements, f"{at}.extension:{part['url']}")


def _written(client: TestClient) -> list[JSON]:
    """What the adapter writes: case Bundles and PAS requests for every fixture letter, and $submit answers."""
    out = []
    for path in sorted(LETTERS.glob("*.txt")):
        case = parse_letter(path.read_bytes())
        out += [case_to_bundle(case), pas_bundle(case)]
        answer = client.post("/fhir/Claim/$submit", content=json.dumps(pas_bundle(case)), headers=auth(TOKEN))
        assert answer.status_code == 200, answer.text
        out.append(answer.json())
    return out


def test_every_extension_written_resolves_to_its_definition(client: TestClient) -> None:
    served: dict[str, JSON] = {}
    own = 0
    for extension in (e for written in _written(client) for e in _extensions(written)):
        url = extension["url"]
        assert url.startswith(("http://", "https://")), url
        if url.startswith(FOREIGN):
            continue
        own += 1
        if url not in served:
            found = client.get("/fhir/StructureDefinition", params={"url": url}).json()
            assert found["total"] == 1, url
            definition = found["entry"][0]["resource"]
            read = client.get(f"/fhir/StructureDefinition/{definition['id']}")
            assert read.status_code == 200 and read.json() == definition
            StructureDefinition.model_validate(definition)
            served[url] = definition
        _conforms(extension, _elements(served[url]))
    assert own > 0 and len(served) >= 10


def test_the_statement_lists_them_and_an_unknown_one_is_404(client: TestClient) -> None:
    statement = client.get("/fhir/metadata").json()
    assert "StructureDefinition" in {r["type"] for r in statement["rest"][0]["resource"]}
    all_of_them = client.get("/fhir/StructureDefinition").json()
    assert all_of_them["total"] == len(all_of_them["entry"]) >= 14
    assert client.get("/fhir/StructureDefinition/no-such-extension").status_code == 404
    assert client.get("/fhir/StructureDefinition", params={"name": "x"}).status_code == 400


def test_an_extension_without_a_definition_fails_at_load(tmp_path: Path) -> None:
    import yaml

    from adapter.tables import FHIRTable

    data = yaml.safe_load((ROOT / "mappings" / "fhir.yaml").read_text())
    broken = copy.deepcopy(data)
    del broken["extension_definitions"]["evidence"]
    path = tmp_path / "fhir.yaml"
    path.write_text(yaml.safe_dump(broken))
    with pytest.raises(MappingTableError, match="missing \\['evidence'\\]"):
        load_table(path, FHIRTable)
