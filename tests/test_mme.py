"""Opioids: doses in morphine milligram equivalents, a taper by a physician for a high dose in long-term use
(never an abrupt stop), and the opioid table checked against the lexicon."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from adapter import MappingTableError
from adapter.determination import (
    Context,
    Text,
    build_facts,
    determine,
)
from adapter.determination.rules import fires
from adapter.tables import mappings
from tests.conftest import BY_ID, RULES, replace_once


@pytest.mark.parametrize(
    ("request_text", "ingredient", "expected"),
    [
        ("Norco 10/325mg 1 tab every 6 hours #120", "hydrocodone", 40.0),
        ("Oxycodone 30mg #180 for 30 days", "oxycodone", 270.0),
        ("OxyContin 40 mg every 12 hours #60", "oxycodone", 120.0),
        ("Duragesic 50 mcg/hr patch, change every 72 hours #10", "fentanyl", 120.0),
        ("Tylenol #3 twice daily #60", "codeine", 9.0),
        ("Methadone 10mg three times daily #90", "methadone", 240.0),  # 30 mg a day: the 21-40 band, x8
        ("Methadone 5mg twice daily #60", "methadone", 40.0),  # 10 mg a day: x4
        ("Nucynta 100mg every 6 hours #120", "tapentadol", 160.0),
        ("Tramadol 50mg #60", "tramadol", None),  # no frequency and no supply: unknown, never over a limit
        ("Butrans 10 mcg/hr patch #4", "buprenorphine", None),  # no factor in the table
    ],
)
def test_opioid_doses_in_morphine_equivalents(request_text: str, ingredient: str, expected: float | None) -> None:
    from adapter.determination.mme import mme_per_day
    from adapter.lexicon import LEXICON

    quantity = int(request_text.rsplit("#", 1)[1].split()[0])
    per_day = mappings()[LEXICON].doses_per_day(request_text.lower())
    days = 30.0 if "30 days" in request_text else None
    assert mme_per_day(request_text, ingredient, doses_per_day=per_day, quantity=quantity, supply_days=days) == expected


def test_a_high_opioid_dose_in_long_term_use_is_tapered_by_a_physician() -> None:
    context = Context(texts=[Text("note", "She has taken OxyContin since 2024 for chronic low back pain.")],
                      medication_list=["oxycodone"], injury=date(2024, 3, 1), as_of=date(2026, 11, 20))  # fmt: skip
    found = build_facts("OxyContin 40 mg every 12 hours #60", context, quantity=60)
    assert (found.mme_per_day, found.units_at_mme_threshold, found.units_after_taper_step) == (120.0, 40, 54)
    answer = determine(found, RULES)
    # one step of about 10% (60 -> 54 tablets), not one cut to the threshold (40)
    assert (answer.recommendation, answer.certified_quantity, answer.action) == ("A6", 54.0, "A4")
    assert "comes to 120 morphine milligram equivalents a day" in answer.rationale


def test_a_taper_prevails_over_an_abrupt_stop() -> None:
    """An opioid continued without documented benefit (A3) at a dose to taper (A6): MTUS Opioids 2016 and the
    CDC want a taper, so the taper step is recommended and the stopping rule is named as giving way."""
    text = ("She has taken OxyContin since 2024 for chronic low back pain. There has been no functional "
            "improvement with it; pain is unchanged.")  # fmt: skip
    context = Context(texts=[Text("note", text)], medication_list=["oxycodone"], injury=date(2024, 3, 1),
                      as_of=date(2026, 11, 20))  # fmt: skip
    found = build_facts("OxyContin 40 mg every 12 hours #60", context, quantity=60)
    fired = [r.id for r in RULES.rules if fires(r, found)]
    assert "opioid-dose-above-wean-threshold" in fired and any(BY_ID[r].action == "A3" for r in fired)
    answer = determine(found, RULES)
    assert (answer.recommendation, answer.certified_quantity) == ("A6", 54.0)
    assert answer.rules == ["opioid-dose-above-wean-threshold"] and "give way to the taper" in answer.rationale


def test_the_opioid_table_names_only_opioids(mappings_copy: Path) -> None:
    from adapter.determination.mme import OPIOIDS

    replace_once(mappings_copy / "opioids.yaml", "  tramadol: 0.1", "  tramadol: 0.1\n  naproxen: 1")
    with pytest.raises(MappingTableError, match="naproxen"):
        mappings(mappings_copy)[OPIOIDS]
