"""FHIR from outside, checked once at the edge: bounded, well-formed, about one patient.

Everything the readers (``requested_services``, ``bundle_to_case``) get from a client or a server passes
here first, so that past this point the shapes are the ones FHIR R4 promises:

- **bounded**: nesting depth, number of JSON nodes, Bundle entries and the length of any one string are
  capped (``InputLimitError``), so no input makes later work unbounded;
- **clean**: no ``null`` values, no NUL or other control characters in strings (FHIR's ``string`` allows
  tab, CR and LF only), and every NPI (an Identifier of ``http://hl7.org/fhir/sid/us-npi``) ten digits with
  its check digit right (``adapter.npi``);
- **well-typed**: every resource validates against its fhir.resources model (R4B for R4 4.0.1 content, the
  root package for R5; R4 content passes the FHIR R4 JSON schema first, ``adapter.fhir.schema``), so
  ``code.text`` is a string, ``meta`` an object, ``extension`` a list;
- **one patient**: every ``subject``, ``patient``, ``for`` and ``beneficiary`` in a Bundle (contained
  resources included) names the same Patient by a literal reference, the Bundle holds at most that one
  Patient (no Group, no contained Patient), and every clinical note names its patient. A patient named
  another way (identifier or display only, conditionally, ``patient/x``) cannot be checked and is refused.
  A decision must never mix two patients' facts.

Problems raise ``MappingError`` (location = the path, e.g. ``entry[2].resource.code.text``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pydantic import ValidationError

from adapter.config import DEFAULT_MAX_CLINICAL_TEXT, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_TEXT
from adapter.errors import InputLimitError, MappingError
from adapter.fhir.schema import schema_valid
from adapter.fhir.validate import invalid
from adapter.npi import NPI_SYSTEM, npi_problem
from adapter.types import CONTAINERS, JSON

_PATIENT_FIELDS = ("subject", "patient", "for", "beneficiary")
_ALLOWED_CONTROLS = frozenset("\t\r\n")


@dataclass(frozen=True)
class Limits:
    """How much one inbound request may hold."""

    max_depth: int = 40
    max_nodes: int = 200_000
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_text: int = DEFAULT_MAX_TEXT
    #: All clinical text one determination reads (notes, documents, supporting info), in characters.
    max_clinical_text: int = DEFAULT_MAX_CLINICAL_TEXT


DEFAULT_LIMITS = Limits()


def _not_an_npi(identifier: JSON) -> str | None:
    """Why an Identifier of the NPI system holds no NPI (None: it holds one, or it is no NPI Identifier)."""
    value = identifier.get("value")
    return npi_problem(value) if identifier.get("system") == NPI_SYSTEM and isinstance(value, str) else None


def _spelled(path: Any) -> str | None:
    """A location as FHIR spells it (``entry[0].resource.code``) from the steps ``check_tree`` carries: each node
    its (parent's path, key or index), made into text only for the one node a problem is found at."""
    steps: list[str | int] = []
    while path is not None:
        path, step = path
        steps.append(step)
    spelled = ""
    for step in reversed(steps):
        spelled += f"[{step}]" if isinstance(step, int) else f".{step}" if spelled else step
    return spelled or None


def _check_value(value: Any, limits: Limits, where: Any) -> None:
    """One JSON scalar of an inbound tree (``where``: its steps, spelled only when it is refused)."""
    if isinstance(value, str):
        if len(value) > limits.max_text:
            raise InputLimitError(f"a text longer than {limits.max_text} characters", location=_spelled(where))
        if not value.isprintable() and any(c < " " and c not in _ALLOWED_CONTROLS for c in value):
            raise MappingError("a string holds a control character (NUL or similar)", location=_spelled(where))
    elif value is None:
        raise MappingError("null is not a FHIR JSON value (leave the element out)", location=_spelled(where))
    elif isinstance(value, int) and not -(2**63) <= value < 2**63:  # what is kept and hashed is 64-bit
        raise MappingError("an integer beyond 64 bits", location=_spelled(where))


def check_tree(data: Any, limits: Limits = DEFAULT_LIMITS) -> None:
    """Depth, node count, string length and characters, and integers of 64 bits, of a JSON tree, without
    recursion: objects and arrays are queued, the values in them checked where they stand."""
    if not isinstance(data, CONTAINERS):
        _check_value(data, limits, None)
        return
    stack: list[tuple[Any, int, Any]] = [(data, 1, None)]
    nodes, max_text = 1, limits.max_text
    while stack:
        node, depth, where = stack.pop()
        nodes += len(node)
        if nodes > limits.max_nodes:
            raise InputLimitError(f"more than {limits.max_nodes} JSON values", location=_spelled(where))
        if isinstance(node, dict):
            if problem := _not_an_npi(node):
                raise MappingError(f"not an NPI: {problem}", location=_spelled((where, "value")))
            steps: Any = node.items()
        else:
            steps = enumerate(node)
        for step, value in steps:
            if depth >= limits.max_depth:
                raise InputLimitError(f"nested deeper than {limits.max_depth} levels", location=_spelled((where, step)))
            if isinstance(value, CONTAINERS):
                stack.append((value, depth + 1, (where, step)))
            elif not isinstance(value, str) or len(value) > max_text or not value.isprintable():
                _check_value(value, limits, (where, step))  # a plain printable text of its size needs no more


@lru_cache(maxsize=256)
def _model(version: Literal["R4", "R5"], resource_type: str) -> Any:
    from fhir.resources import get_fhir_model_class as r5_model
    from fhir.resources.R4B import get_fhir_model_class as r4_model

    try:
        return (r4_model if version == "R4" else r5_model)(resource_type)
    except (KeyError, ValueError, AttributeError, ImportError):
        return None


def check_resource(resource: Any, where: str = "", version: Literal["R4", "R5"] = "R4") -> None:
    """One resource against its fhir.resources model (R4: first against the FHIR R4 JSON schema, which answers
    fifty times faster, ``adapter.fhir.schema``)."""
    if not isinstance(resource, dict):
        raise MappingError("expected a FHIR resource (a JSON object)", location=where or None)
    rtype = resource.get("resourceType")
    model = _model(version, rtype) if isinstance(rtype, str) and rtype.isalpha() else None
    if model is None:
        raise MappingError(
            f"not a FHIR {version} resource type: {rtype!r}", location=f"{where}.resourceType".lstrip(".")
        )
    if version == "R4" and schema_valid(resource):
        return  # the schema's yes is the model's; its no is checked by the model, whose error is the one told
    try:
        model.model_validate(resource)
    except (AttributeError, TypeError) as exc:  # fhir_core's own validators can fail this way on odd types
        raise MappingError(
            f"not valid FHIR {version} {rtype}: a value of the wrong type", location=where or None
        ) from exc
    except ValidationError as exc:
        raise invalid(exc, f"FHIR {version} {rtype}", where) from exc


def entries(bundle: JSON, limits: Limits = DEFAULT_LIMITS) -> list[tuple[str, JSON]]:
    """(path, resource) of every entry of a Bundle whose shape was checked. A fullUrl is unique in a Bundle (FHIR
    bdl-7; a history Bundle's versions of one resource aside): two entries that share one would be stored as one."""
    raw = bundle.get("entry", [])
    if not isinstance(raw, list):
        raise MappingError("Bundle.entry must be a list", location="entry")
    if len(raw) > limits.max_entries:
        raise InputLimitError(f"more than {limits.max_entries} Bundle entries", location="entry")
    found = []
    urls: dict[str, int] = {}
    for n, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise MappingError("a Bundle entry must be an object", location=f"entry[{n}]")
        url = entry.get("fullUrl")
        if isinstance(url, str) and bundle.get("type") != "history":
            if url in urls:
                raise MappingError(f"entry[{urls[url]}] has the same fullUrl (FHIR bdl-7: a fullUrl is unique in a "
                                   "Bundle)", location=f"entry[{n}].fullUrl")  # fmt: skip
            urls[url] = n
        if "resource" in entry:
            if not isinstance(entry["resource"], dict):
                raise MappingError("an entry's resource must be an object", location=f"entry[{n}].resource")
            found.append((f"entry[{n}].resource", entry["resource"]))
    return found


#: A literal reference to a Patient: ``Patient/1``, ``Patient/1/_history/2`` or an absolute URL ending so.
_PATIENT_REF = re.compile(r"(?:[a-z][a-z0-9+.-]*://[^?#\s]*/)?Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/?#]+)?")
#: Resources whose text a determination reads as clinical notes: about no patient, they would count for any.
_CLINICAL = frozenset({"DocumentReference", "Observation", "DiagnosticReport", "Composition"})


def _patient_ref(resource: JSON, where: str) -> str | None:
    """The Patient a resource is about (``Patient/id`` or the ``urn:`` of a Bundle entry), None when it names
    none; a patient named any other way (by identifier or display only, conditionally, as a contained
    resource, a Group or a reference of another type or case) cannot be checked and is refused."""
    for name in _PATIENT_FIELDS:
        if name not in resource:
            continue
        value = resource[name]
        ref = value.get("reference") if isinstance(value, dict) else None
        location = f"{where}.{name}".lstrip(".")
        if not isinstance(ref, str):
            raise MappingError(
                f"{name} names its patient without a reference (by identifier or display only); refer to the "
                "request's Patient",
                location=location,
            )
        if ref.startswith(("urn:uuid:", "urn:oid:")):
            return ref
        found = _PATIENT_REF.fullmatch(ref)
        if found is None:
            raise MappingError(
                f"{name} must refer to the request's Patient as Patient/id or its fullUrl, not {ref[:60]!r} "
                "(no conditional, contained, Group or other references)",
                location=location,
            )
        return f"Patient/{found.group(1)}"
    if resource.get("resourceType") in _CLINICAL or resource.get("note"):
        raise MappingError(
            f"a {resource.get('resourceType')} with clinical text must name its patient (subject)",
            location=where or None,
        )
    return None


def _resources_of(bundle: JSON) -> list[tuple[str, JSON]]:
    """(path, resource) of every entry and every resource contained in one."""
    found = []
    for n, entry in enumerate(bundle.get("entry", [])):
        resource = entry.get("resource") or {}
        found.append((f"entry[{n}].resource", resource))
        found += [(f"entry[{n}].resource.contained[{m}]", r) for m, r in enumerate(resource.get("contained", []))]
    return found


def check_one_patient(bundle: JSON) -> None:
    """Every patient reference in the Bundle names one Patient, the Bundle holds no other (and no Group),
    and every clinical note names its patient."""
    aliases: dict[str, str] = {}
    patients = []
    for n, entry in enumerate(bundle.get("entry", [])):
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == "Patient":
            patients.append(n)
            canonical = f"Patient/{resource.get('id', n)}"
            aliases[canonical] = canonical
            if isinstance(entry.get("fullUrl"), str):
                full_url = entry["fullUrl"]
                found = _PATIENT_REF.fullmatch(full_url)
                aliases[f"Patient/{found.group(1)}" if found else full_url] = canonical
    if len(patients) > 1:
        raise MappingError("the request holds more than one Patient", location=f"entry[{patients[1]}].resource")
    seen: str | None = next(iter(aliases.values()), None)
    for where, resource in _resources_of(bundle):
        rtype, contained = resource.get("resourceType"), ".contained[" in where
        if rtype == "Group" or (rtype == "Patient" and contained):
            raise MappingError(
                f"a {'contained ' if contained else ''}{rtype} names another patient or several; send the "
                "request's one Patient as an entry",
                location=where,
            )
        ref = _patient_ref(resource, where)
        if ref is None:
            continue
        ref = aliases.get(ref, ref)
        if seen is None:
            seen = ref
        elif ref != seen:
            raise MappingError(
                f"the request mixes patients ({seen} and {ref}); send one patient's request at a time",
                location=where,
            )


def check_inbound(
    data: Any, *, version: Literal["R4", "R5"] = "R4", limits: Limits = DEFAULT_LIMITS, valid: set[int] | None = None
) -> JSON:
    """The whole edge check of one inbound resource or Bundle; returns it when it passes. ``valid``: the ids
    of resources validated already, whichever Bundle held them (a page of requests shares each patient's
    context): those are not validated again, and those validated here join them."""
    if not isinstance(data, dict):
        raise MappingError("expected a FHIR resource (a JSON object)")
    check_tree(data, limits)
    if data.get("resourceType") != "Bundle":
        check_resource(data, version=version)
        check_one_patient({"entry": [{"resource": data}]})
        return data
    found = entries(data, limits)
    shell = {**data, "entry": [{k: v for k, v in e.items() if k != "resource"} for e in data.get("entry", [])]}
    if not shell["entry"]:
        del shell["entry"]
    check_resource(shell, version=version)
    for where, resource in found:
        if valid is None or id(resource) not in valid:
            check_resource(resource, where, version)
            if valid is not None:
                valid.add(id(resource))
    check_one_patient(data)
    return data
