"""FHIR R4 resources checked against HL7's FHIR R4 JSON schema compiled once by jsonschema-rs: a Bundle's
resources in a twentieth of a millisecond, where validating them with their fhir.resources models takes four
(``bench/validators.py`` measures both, and compares what each refuses on mutated corpus Bundles).

The schema is ``fhir.schema.json`` of FHIR 4.0.1 (http://hl7.org/fhir/R4/fhir.schema.json.zip, CC0), kept
gzipped beside this module. It says less than the models check, so what they check beyond it is added to it,
read off the R4B models themselves, definition by definition:

- a choice element (``value[x]``) holds at most one of its types, and exactly one where it is required;
- a required primitive is given, as its value or as its ``_element`` extension.

A resource the schema passes is valid. One it refuses is validated by its model after all, whose verdict
stands: what is refused, and the message and path that say why, stay the models'.
"""

from __future__ import annotations

import gzip
import json
import typing
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

JSON = dict[str, Any]
SCHEMA = Path(__file__).with_name("fhir-r4.schema.json.gz")
#: ``beyond_schema()`` as it was last written (``python -m adapter.fhir.schema``).
BEYOND = Path(__file__).with_name("fhir-r4.beyond.json")


def _model_of(annotation: Any) -> Any:
    """The fhir.resources model inside a field's annotation (``list[ClaimItemType] | None`` -> ClaimItem)."""
    if isinstance(annotation, type):
        return annotation.get_model_klass() if hasattr(annotation, "get_model_klass") else None
    for arg in typing.get_args(annotation):
        if (found := _model_of(arg)) is not None:
            return found
    return None


def _target(spec: JSON) -> str | None:
    """The definition a property refers to (``$ref`` or ``items.$ref``)."""
    ref = spec.get("$ref") or spec.get("items", {}).get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _hl7() -> JSON:
    with gzip.open(SCHEMA, "rb") as raw:
        schema: JSON = json.load(raw)
    return schema


def beyond_schema() -> dict[str, JSON]:
    """What each definition's R4B model checks that the schema does not say, found by walking the schema and
    the models together from every resource type: ``{"Claim_Item": {"choices": [[names], ...], "one_of":
    [names of the choices one of which is required], "required": [primitives]}}`` (slow: it imports every
    model; ``BEYOND`` keeps its result, and a test that it is current)."""
    from fhir.resources.R4B import get_fhir_model_class

    definitions = _hl7()["definitions"]
    found: dict[str, JSON] = {}
    seen: set[str] = set()
    todo: list[tuple[str, Any]] = []
    for ref in definitions["ResourceList"]["oneOf"]:
        try:
            todo.append((str(_target(ref)), get_fhir_model_class(str(_target(ref)))))
        except (KeyError, ValueError):  # an R4 type R4B dropped: the schema's word alone
            continue
    while todo:
        name, model = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        fields = {(info.alias or key): info for key, info in model.model_fields.items()}
        for prop, spec in definitions[name].get("properties", {}).items():
            target, info = _target(spec), fields.get(prop)
            if target in definitions and info is not None and (inner := _model_of(info.annotation)) is not None:
                todo.append((str(target), inner))
        aliases = {key: info.alias or key for key, info in model.model_fields.items()}
        groups = list(model.get_one_of_many_fields(None).values())
        choices = [[aliases[key] for key in group] for group in groups]
        one_of = [[aliases[key] for key in group] for group in groups
                  if (model.model_fields[group[0]].json_schema_extra or {}).get("one_of_many_required")]  # fmt: skip
        required = sorted(aliases.get(key, key) for key, _ in model.get_required_fields(None))
        if choices or required:
            found[name] = {"choices": sorted(choices), "one_of": sorted(one_of), "required": required}
    return dict(sorted(found.items()))


def _checks(beyond: JSON) -> list[JSON]:
    """One definition's model checks as JSON schema."""
    checks: list[JSON] = []
    for names in beyond["choices"]:
        # at most one: each choice, when given, excludes the others (evaluated only for what is given)
        checks.append({"dependencies": {n: {"not": {"anyOf": [{"required": [o]} for o in names if o != n]}}
                                        for n in names}})  # fmt: skip
    checks += [{"anyOf": [{"required": [n]} for n in names]} for names in beyond["one_of"]]
    checks += [{"anyOf": [{"required": [n]}, {"required": [f"_{n}"]}]} for n in beyond["required"]]
    return checks


def _schema() -> JSON:
    """The R4 schema, each definition with what its model checks beyond it, and a resource checked against the
    definition its ``resourceType`` names (not against every resource type in turn, as its ``oneOf`` would)."""
    definitions = _hl7()["definitions"]
    for definition in definitions.values():
        if "properties" in definition:  # HL7's complex types leave it out: a number would pass for an Identifier
            definition["type"] = "object"
    # Stricter than HL7's where the models are (never looser: what the schema refuses, the models decide):
    # base64 as Python decodes it, padding and all; a primitive's ``_element`` extension says something.
    definitions["base64Binary"]["pattern"] = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
    definitions["Element"]["minProperties"] = 1
    for name, beyond in json.loads(BEYOND.read_text()).items():
        definitions[name] = {**definitions[name], "allOf": _checks(beyond)}
    types = [str(_target(ref)) for ref in definitions["ResourceList"]["oneOf"]]
    definitions["ResourceList"] = {
        "type": "object",
        "required": ["resourceType"],
        "properties": {"resourceType": {"enum": types}},
        "allOf": [
            {"if": {"properties": {"resourceType": {"const": t}}}, "then": {"$ref": f"#/definitions/{t}"}}
            for t in types
        ],  # fmt: skip
    }
    return {"definitions": definitions, "$ref": "#/definitions/ResourceList"}


@cache
def _validator() -> Any:
    return jsonschema_rs.Draft7Validator(_schema())


def schema_valid(resource: JSON) -> bool:
    """Whether an R4 resource passes the schema (False says only that its model must decide)."""
    return bool(_validator().is_valid(resource))


def warm_up() -> None:
    """Compile the schema now (about a second), not in the first request's time."""
    _validator()


if __name__ == "__main__":  # write BEYOND anew, after a fhir.resources upgrade
    BEYOND.write_text(json.dumps(beyond_schema(), indent=1) + "\n")
