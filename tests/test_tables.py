"""The mapping tables: the shipped ones load; broken ones fail at load naming the file and the line."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest

from adapter import MappingTableError
from adapter.tables import TableFile, mappings
from tests.conftest import ROOT, replace_once


@pytest.fixture
def tables_copy(mappings_copy: Path) -> Path:
    return mappings_copy


def _line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), start=1) if needle in line)


def test_shipped_tables_load_and_code() -> None:
    tables = mappings().tables
    assert tables.service_code("MRI of the cervical spine") is not None
    assert tables.diagnosis_code("cervicalgia") is not None
    assert tables.body_site_code("left shoulder") is not None
    assert tables.service_code("a request nobody codes") is None


def test_a_changed_code_is_used(tables_copy: Path) -> None:
    services = tables_copy / "services.yaml"
    services.write_text(services.read_text().replace('code: "72148"', 'code: "72149"'))
    coding = mappings(tables_copy).tables.service_code("MRI of the lumbar spine")
    assert coding is not None and coding.code == "72149"


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("services.yaml", "'\\bEMG\\b', 'electromyogra'", "'\\bEMG(\\b', 'electromyogra'", "does not compile"),
        ("services.yaml", 'code: "97110"', 'code: "9711"', "is not a cpt code"),
        ("diagnoses.yaml", "code: M54.2,", "code: M54-2,", "is not a icd10cm code"),
        ("fhir.yaml", "  standard: normal", "  standard: normal\n  urgent: stat", "Extra inputs are not permitted"),
    ],
)
def test_broken_table_names_file_and_line(tables_copy: Path, file: str, old: str, new: str, message: str) -> None:
    path = tables_copy / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    with pytest.raises(MappingTableError) as raised:
        _ = mappings(tables_copy).tables
    assert message in raised.value.message
    where = raised.value.location or ""
    assert where.startswith(f"{path}:")
    first_changed = _line_of(path, new.splitlines()[-1].strip()[:12])
    assert abs(int(where.rsplit(":", 1)[1]) - first_changed) <= 1


def test_bad_yaml(tables_copy: Path) -> None:
    (tables_copy / "body_sites.yaml").write_text("entries: [\n  {match: ['x'], code: \"1\"\n")
    with pytest.raises(MappingTableError) as raised:
        _ = mappings(tables_copy).tables
    assert "not valid YAML" in raised.value.message
    assert (raised.value.location or "").startswith(str(tables_copy / "body_sites.yaml"))


def test_a_key_given_twice_is_refused_where_it_is_given_again(tables_copy: Path) -> None:
    """YAML keeps the last of two equal keys and says nothing: a table would lose an entry and load."""
    fhir = tables_copy / "fhir.yaml"
    fhir.write_text(fhir.read_text().replace("  standard: normal", "  standard: normal\n  standard: urgent", 1))
    with pytest.raises(MappingTableError) as raised:
        _ = mappings(tables_copy).tables
    assert "the key 'standard' is given twice" in raised.value.message
    assert raised.value.location == f"{fhir}:{_line_of(fhir, 'standard: urgent')}"


def test_a_lexicon_finding_must_be_a_request_fact(mappings_copy: Path) -> None:
    """A finding the fact builder has no field for would be read and dropped: the rules refuse to load."""
    from adapter.determination.rules import RULES

    replace_once(
        mappings_copy / "lexicon.yaml",
        "  gi_risk:",
        "  gut_feeling:\n    conflict: present\n    history: false\n    present: ['gut feeling']\n  gi_risk:",
    )
    with pytest.raises(MappingTableError) as raised:
        mappings(mappings_copy)[RULES]
    assert "lexicon findings that are no request fact: ['gut_feeling']" in raised.value.message


def _declared() -> list[TableFile[Any]]:
    """Every table the adapter declares: the ``TableFile`` of each module of the package."""
    import adapter

    names = [m.name for m in pkgutil.walk_packages(adapter.__path__, "adapter.")
             if not m.name.endswith("__main__") and ".migrations" not in m.name]  # fmt: skip
    modules = [importlib.import_module(name) for name in names]
    found = {id(v): v for m in modules for v in vars(m).values() if isinstance(v, TableFile)}
    return list(found.values())


def test_every_table_is_declared_once_and_loads_once_per_folder() -> None:
    """Each file under mappings/ is one TableFile, read through the one loader; a folder's tables load once."""
    declared = _declared()
    assert sorted(t.file for t in declared) == sorted(p.name for p in (ROOT / "mappings").glob("*.yaml"))
    shipped = mappings()
    assert mappings(ROOT / "mappings") is shipped
    for table in declared:
        assert shipped[table] is shipped[table]
    assert shipped.tables is shipped.tables


def test_a_table_is_checked_against_the_tables_of_its_own_folder(mappings_copy: Path) -> None:
    """The opioid table is checked against the lexicon beside it (which here has one opioid more), not the
    shipped one."""
    from adapter.determination.mme import OPIOIDS

    replace_once(mappings_copy / "opioids.yaml", "  tramadol: 0.1", "  tramadol: 0.1\n  levorphanol: 11")
    replace_once(
        mappings_copy / "lexicon.yaml", "    tramadol: {", '    levorphanol: {rxnorm: "6378"}\n    tramadol: {'
    )
    assert mappings(mappings_copy)[OPIOIDS].oral["levorphanol"] == 11
