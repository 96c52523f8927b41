"""The one loader of the tables under ``mappings/`` (``load_table``), the ``Mappings`` of a folder, and the FHIR
and code tables themselves.

Every table is a ``TableFile`` (its file and the model that validates it), declared beside its model by the module
that owns its vocabulary (``LEXICON`` in ``adapter.lexicon``, ``CATEGORIES`` in ``adapter.categories``,
the jurisdictions' deadlines in ``adapter.deadlines``, ``PAS`` in ``adapter.fhir.pas``, the determination's tables in
``adapter.determination``; this module's own are ``fhir.yaml`` and the code maps, as ``Mappings.tables``).
``mappings(folder)[TABLE]`` reads it through ``load_table`` once per folder; a table checked against others
(the rules and the categories against the lexicon) names them in ``reads`` and its validators find them in the
validation context. A table that does not load (bad YAML, an unknown key, a regular expression that does not
compile, a code that is not of its system's form, a name another table lacks) raises ``MappingTableError``
naming the file and the line, at start-up rather than at the first request.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from adapter.actions import ReviewAction
from adapter.config import DEFAULT_MAPPINGS
from adapter.errors import MappingTableError

__all__ = [
    "DEFAULT_MAPPINGS",
    "LABEL_WINDOW",
    "Coding",
    "Mappings",
    "TableFile",
    "Tables",
    "compiles",
    "label_window",
    "load_table",
    "mappings",
]

#: libyaml's safe loader where PyYAML was built with it (several times faster at start-up), else Python's.
_SAFE: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SAFE):  # type: ignore[valid-type,misc]
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last one, silently: a table
    would lose an entry and load as if nothing were wrong)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep)
        return mapping


SAFE_LOADER: type[yaml.SafeLoader] = _Loader

M = TypeVar("M", bound=BaseModel)

_CODE_FORMS = {
    "icd10cm": re.compile(r"[A-TV-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?"),
    "cpt": re.compile(r"\d{4}[0-9FT]"),
    "hcpcs": re.compile(r"[A-V]\d{4}"),
    "snomed": re.compile(r"\d{6,18}"),
    "rxnorm": re.compile(r"\d{1,8}"),
}


def compiles(patterns: list[str]) -> list[str]:
    """The patterns, when every one compiles (a validator for tables of regular expressions)."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"regular expression {pattern!r} does not compile: {exc}") from None
    return patterns


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Coding(_Table):
    """A FHIR Coding as plain data."""

    system: str
    code: str
    display: str

    def as_fhir(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}


class CodeEntry(_Table):
    match: list[str] = Field(min_length=1)
    code: str
    display: str
    system: str | None = None

    @field_validator("match")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        return compiles(patterns)

    @model_validator(mode="after")
    def _code_has_its_system_form(self, info: ValidationInfo) -> CodeEntry:
        system = self.system or (info.context or {}).get("system")
        if system is None:
            raise ValueError("no system: set one on the entry or for the whole table")
        form = _CODE_FORMS.get(system)
        if form is not None and not form.fullmatch(self.code):
            raise ValueError(f"code {self.code!r} is not a {system} code")
        return self

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{p})" for p in self.match), re.IGNORECASE)


#: How much of a label (an item, diagnosis or site text) the table patterns read. Labels are short; the
#: patterns' ``A.*B`` form costs the square of the text's length, so a hostile 400 KB label must not reach
#: them whole.
LABEL_WINDOW = 1000


def label_window(text: str) -> str:
    """The head of a label that table patterns match against (bounded work on untrusted text)."""
    return text[:LABEL_WINDOW]


class CodeMap(_Table):
    """Text -> code, first matching entry wins; ``default`` (explicitly null) when nothing matches."""

    system: str | None = None
    default: None
    entries: list[CodeEntry]


class Extensions(_Table):
    data_absent_reason: str
    min_value: str
    max_value: str
    display: str
    case_dates: str
    reviewer: str
    guideline: str
    guideline_basis: str
    modified_request: str
    patient_age: str
    session_count: str
    letter_layout: str
    parse_warning: str
    body_site: str
    service_request: str
    determination_rule: str
    recommendation: str
    evidence: str


class CodeSystems(_Table):
    icd10cm: str
    cpt: str
    hcpcs: str
    snomed: str
    rxnorm: str
    loinc: str
    claim_type: str
    process_priority: str
    act_code: str
    data_operation: str
    provenance_agent_type: str
    condition_clinical: str
    condition_category: str
    data_absent_reason: str
    claim_decision_r5: str
    note_type: str
    ucum: str
    task_code: str
    documentreference_category: str
    related_claim: str
    observation_value: str
    restful_security_service: str
    act_reason: str
    claim_use: str
    cdex_temp: str


class Canonicals(_Table):
    """Other implementation guides' profiles, extensions and operations."""

    backport_filter_criteria: str
    backport_payload_content: str
    backport_heartbeat_period: str
    backport_topic_canonical: str
    backport_status_profile: str
    backport_status_operation: str
    backport_events_operation: str
    dtr_questionnaire: str
    dtr_questionnaire_package: str
    dtr_qr_context: str
    cdex_submit_attachment: str
    cdex_attachment_request: str


class Systems(_Table):
    """The adapter's own code and tag systems."""

    review: str
    ehr_reference: str
    determination_version: str
    attachment_line: str
    conformance_check: str
    carried_attachment: str


class ExtensionPart(_Table):
    """A (sub-)extension's content: the FHIR type of its value, or its own parts; ``max`` "*" when it repeats."""

    value: str | None = None
    parts: dict[str, ExtensionPart] = Field(default_factory=dict)
    max: Literal["1", "*"] = "1"

    @model_validator(mode="after")
    def _value_or_parts(self) -> ExtensionPart:
        if (self.value is None) == (not self.parts):
            raise ValueError("an extension has a value type or parts, not both and not neither")
        return self


class ExtensionDefinition(ExtensionPart):
    """One of the adapter's own extensions, as its StructureDefinition describes it."""

    title: str
    description: str
    context: list[str] = Field(min_length=1)


class ReviewActions(_Table):
    upheld: ReviewAction
    overturned: ReviewAction
    modified: ReviewAction


class Priorities(_Table):
    standard: str
    expedited: str


class Organization(_Table):
    name: str
    identifier: str


class FHIRTable(_Table):
    identifier_system: str
    case_number_system: str
    provenance_tag_system: str
    systems: Systems
    code_systems: CodeSystems
    canonicals: Canonicals
    canonical_base: str
    extensions: Extensions
    extension_definitions: dict[str, ExtensionDefinition]
    review_actions: ReviewActions
    priorities: Priorities
    imr_organization: Organization
    coverage_type: list[Coding] = Field(min_length=1)
    claims_administrator_name: str
    requesting_provider_display: str
    document_type_text: str

    @model_validator(mode="before")
    @classmethod
    def _canonical(cls, data: Any) -> Any:
        """The adapter's own extensions are named by id: their URL is ``{canonical_base}/StructureDefinition/{id}``."""
        if isinstance(data, dict) and isinstance(data.get("extensions"), dict) and data.get("canonical_base"):
            base = str(data["canonical_base"]).rstrip("/")
            named = {k: v if not isinstance(v, str) or "://" in v else f"{base}/StructureDefinition/{v}"
                     for k, v in data["extensions"].items()}  # fmt: skip
            data = {**data, "extensions": named}
        return data

    @model_validator(mode="after")
    def _defined(self) -> FHIRTable:
        """Every extension of the adapter's own has its definition, and every definition is used."""
        prefix = f"{self.canonical_base.rstrip('/')}/StructureDefinition/"
        ids = {url.removeprefix(prefix) for url in self.extensions.model_dump().values() if url.startswith(prefix)}
        defined = set(self.extension_definitions)
        if ids != defined:
            raise ValueError(f"extension_definitions: missing {sorted(ids - defined)}, unused {sorted(defined - ids)}")
        return self

    @field_validator("identifier_system")
    @classmethod
    def _has_kind(cls, value: str) -> str:
        if "{kind}" not in value:
            raise ValueError("identifier_system must contain {kind}")
        return value


class Tables:
    """The loaded tables, with the look-ups the FHIR mapping needs."""

    def __init__(self, fhir: FHIRTable, diagnoses: CodeMap, services: CodeMap, body_sites: CodeMap) -> None:
        self.fhir = fhir
        self.diagnoses = diagnoses
        self.services = services
        self.body_sites = body_sites
        self.system_uris: dict[str, str] = fhir.code_systems.model_dump()

    def identifier_system(self, kind: str) -> str:
        return self.fhir.identifier_system.format(kind=kind)

    def _code(self, table: CodeMap, text: str | None) -> Coding | None:
        if not text:
            return None
        window = label_window(text)
        for entry in table.entries:
            if entry.pattern.search(window):
                system = entry.system or table.system
                assert system is not None  # checked at load
                return Coding(system=self.system_uris.get(system, system), code=entry.code, display=entry.display)
        return None

    def diagnosis_code(self, text: str | None) -> Coding | None:
        return self._code(self.diagnoses, text)

    def service_code(self, text: str | None) -> Coding | None:
        return self._code(self.services, text)

    def body_site_code(self, text: str | None) -> Coding | None:
        return self._code(self.body_sites, text)


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML node at a pydantic error location (the deepest one found)."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def load_table(path: Path, model: type[M], *, context: Mapping[str, Any] | None = None) -> M:
    """One YAML table validated by its model; ``MappingTableError`` naming ``file:line`` when it is broken.
    ``context`` (the tables this one is checked against, by name) reaches the model's validators."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise MappingTableError(f"cannot read the table: {exc.strerror or exc}", location=str(path)) from exc
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise MappingTableError(f"not valid YAML: {getattr(exc, 'problem', exc)}", location=where) from exc
    system = {"system": data.get("system")} if isinstance(data, dict) else {}
    try:
        return model.model_validate(data, context={**(context or {}), **system})
    except ValidationError as exc:
        first = exc.errors()[0]
        line = _line_of(yaml.compose(text, Loader=SAFE_LOADER), tuple(first["loc"]))  # the nodes know their lines
        dotted = ".".join(str(p) for p in first["loc"]) or "(top)"
        where = f"{path}:{line}" if line else str(path)
        raise MappingTableError(f"{dotted}: {first['msg']}", location=where) from exc


@dataclass(frozen=True, eq=False)
class TableFile(Generic[M]):
    """A table under ``mappings/``: its file, the model that validates it, and the tables its validators check
    it against (found in the validation context under these names)."""

    file: str
    model: type[M]
    reads: Mapping[str, TableFile[Any]] = field(default_factory=dict)


_FHIR = TableFile("fhir.yaml", FHIRTable)
_DIAGNOSES = TableFile("diagnoses.yaml", CodeMap)
_SERVICES = TableFile("services.yaml", CodeMap)
_BODY_SITES = TableFile("body_sites.yaml", CodeMap)


class Mappings:
    """The tables of one mappings folder, each read through ``load_table`` once, when first asked for:
    ``mappings[LEXICON]``, and the FHIR mapping's look-ups as ``tables``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._loaded: dict[TableFile[Any], Any] = {}
        self._loading = threading.RLock()  # the service's threads ask at once; each table is still read once

    def __getitem__(self, table: TableFile[M]) -> M:
        if table not in self._loaded:
            with self._loading:
                if table not in self._loaded:
                    context = {name: self[other] for name, other in table.reads.items()}
                    self._loaded[table] = load_table(self.folder / table.file, table.model, context=context)
        loaded: M = self._loaded[table]
        return loaded

    @cached_property
    def tables(self) -> Tables:
        """``fhir.yaml`` and the code maps, with the look-ups the FHIR mapping needs."""
        return Tables(
            fhir=self[_FHIR], diagnoses=self[_DIAGNOSES], services=self[_SERVICES], body_sites=self[_BODY_SITES]
        )


@lru_cache(maxsize=8)
def _mappings(folder: Path) -> Mappings:
    return Mappings(folder)


def mappings(folder: Path = DEFAULT_MAPPINGS) -> Mappings:
    """The one ``Mappings`` of ``folder`` (the shipped tables unless told otherwise)."""
    return _mappings(folder)
