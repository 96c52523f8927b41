"""The category of a requested service (adapter.categories): what the words or codes of a request name, and a
category table that is broken fails at load naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adapter import MappingTableError
from adapter.categories import CATEGORIES, categorise
from adapter.tables import mappings
from tests.conftest import ROOT, replace_once


@pytest.mark.parametrize(
    ("request_text", "category"),
    [
        ("Acupuncture 2 times a week for 3 weeks #6", "acupuncture"),
        ("TENS unit rental #30 days", "tens"),
        ("Chiropractic treatment #8 for the low back", "chiropractic"),
        ("Physical therapy #12 visits for the right knee", "physical-therapy"),
        ("Myofascial release 6 sessions for the neck", "chiropractic"),
        ("LSO back support", "durable-medical-equipment"),
        ("Diagnostic ultrasound of the right shoulder", "imaging-other"),
        ("Ultrasound therapy 6 sessions", "passive-modality"),
        ("Carpal tunnel release, right", "surgery"),
        ("Acmeprofen 10 mg tablets #30", "other-drug"),
    ],
)
def test_counts_and_doses_do_not_make_a_therapy_a_drug(request_text: str, category: str) -> None:
    """A count ("#6") or a dose belongs to drugs only when no therapy, device or study names the request."""
    assert categorise(request_text) == category


@pytest.mark.parametrize(
    ("request_text", "category"),
    [
        ("Lumbar ESI L5-S1", "epidural-injection"),
        ("Repeat right L4-5 TFESI", "epidural-injection"),
        ("Selective nerve root block, left L5", "epidural-injection"),
        ("Bilateral L4-5, L5-S1 MBB", "medial-branch-block"),
        ("TPI x3 to the upper trapezius", "trigger-point-injection"),
        ("XR lumbar spine, 3 views", "xray-spine"),
        ("XR of the right wrist", "xray-other"),
        ("Right TKA", "surgery"),
        ("ACDF C5-6", "surgery"),
        ("FCE", "functional-capacity-evaluation"),
        ("UDS x1", "testing"),
    ],
)
def test_a_request_line_in_the_field_s_abbreviations_has_its_category(request_text: str, category: str) -> None:
    """Requests as EHRs send them, abbreviated, get the category of the words in full (an "ESI" is an epidural)."""
    assert categorise(request_text) == category


def test_every_request_category_says_how_pas_carries_it() -> None:
    """A category the determination knows gets its own PAS resource, service type and place (the default is
    for text no category matches)."""
    categories = yaml.safe_load((ROOT / "mappings" / "categories.yaml").read_text())
    pas = yaml.safe_load((ROOT / "mappings" / "pas.yaml").read_text())
    assert {entry["id"] for entry in categories["entries"]} <= set(pas["categories"])


def test_a_category_naming_no_drug_class_of_the_lexicon_fails_at_load(mappings_copy: Path) -> None:
    """A category drawing its words from a drug class the lexicon lacks would match nothing: the table refuses."""
    replace_once(mappings_copy / "categories.yaml", "{id: nsaid, drugs: nsaid}", "{id: nsaid, drugs: nsaids}")
    with pytest.raises(MappingTableError) as raised:
        mappings(mappings_copy)[CATEGORIES]
    assert "no drug class 'nsaids' in the lexicon" in raised.value.message
    path = mappings_copy / "categories.yaml"
    line = next(n for n, text in enumerate(path.read_text().splitlines(), start=1) if "drugs: nsaids" in text)
    assert raised.value.location == f"{path}:{line}"


def test_a_therapy_credited_for_an_unknown_category_fails_at_load(mappings_copy: Path) -> None:
    """A therapy whose result a category's case rests on must name a category the table has."""
    replace_once(mappings_copy / "lexicon.yaml", "credited_for: [radiofrequency-neurotomy]", "credited_for: [rfa]")
    with pytest.raises(MappingTableError) as raised:
        mappings(mappings_copy)[CATEGORIES]
    assert "lexicon therapies name unknown categories ['rfa']" in raised.value.message
