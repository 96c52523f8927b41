"""The adapter's own extensions as FHIR R4 StructureDefinitions, made from ``mappings/fhir.yaml``
(``extension_definitions``): what the service serves at ``/fhir/StructureDefinition/{id}``, so that every
extension URL the adapter writes resolves to its definition (R4 Extension.url; PAS spec-23)."""

from __future__ import annotations

import re

from adapter.tables import ExtensionDefinition, ExtensionPart, Tables, mappings
from adapter.types import JSON

_EXTENSION = "http://hl7.org/fhir/StructureDefinition/Extension"


def _elements(part: ExtensionPart, path: str, at: str, url: str) -> list[JSON]:
    """The differential elements of an extension (or a sub-extension at ``at``) below its root element."""
    if part.parts:
        elements: list[JSON] = [
            {"id": f"{at}.extension", "path": f"{path}.extension", "slicing": {
                "discriminator": [{"type": "value", "path": "url"}], "rules": "open"}},
        ]  # fmt: skip
        for name, sub in part.parts.items():
            sliced = f"{at}.extension:{name}"
            elements.append({"id": sliced, "path": f"{path}.extension", "sliceName": name, "min": 0, "max": sub.max})
            elements += _elements(sub, f"{path}.extension", sliced, name)
        value: JSON = {"id": f"{at}.value[x]", "path": f"{path}.value[x]", "max": "0"}
    else:
        elements = [{"id": f"{at}.extension", "path": f"{path}.extension", "max": "0"}]
        value = {"id": f"{at}.value[x]", "path": f"{path}.value[x]", "min": 1, "type": [{"code": part.value}]}
    return [*elements, {"id": f"{at}.url", "path": f"{path}.url", "fixedUri": url}, value]


def structure_definition(definition_id: str, tables: Tables | None = None) -> JSON | None:
    """The StructureDefinition of one of the adapter's own extensions (None: no such extension)."""
    tables = tables or mappings().tables
    definition: ExtensionDefinition | None = tables.fhir.extension_definitions.get(definition_id)
    if definition is None:
        return None
    url = f"{tables.fhir.canonical_base.rstrip('/')}/StructureDefinition/{definition_id}"
    root = {"id": "Extension", "path": "Extension", "short": definition.title, "definition": definition.description}
    return {
        "resourceType": "StructureDefinition",
        "id": definition_id,
        "url": url,
        "name": re.sub(r"(?:^|-)(\w)", lambda m: m.group(1).upper(), definition_id),
        "title": definition.title,
        "status": "active",
        "description": definition.description,
        "fhirVersion": "4.0.1",
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": c} for c in definition.context],
        "type": "Extension",
        "baseDefinition": _EXTENSION,
        "derivation": "constraint",
        "differential": {"element": [root, *_elements(definition, "Extension", "Extension", url)]},
    }


def structure_definitions(tables: Tables | None = None) -> list[JSON]:
    """All of them, by id."""
    tables = tables or mappings().tables
    found = [structure_definition(i, tables) for i in sorted(tables.fhir.extension_definitions)]
    return [d for d in found if d is not None]
