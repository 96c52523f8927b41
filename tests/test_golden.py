"""Every fixture letter parses to its reviewed golden case (scripts/update_golden.py rewrites them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapter import IMRCase, parse_letter
from tests.conftest import FIXTURES, LETTERS
from tests.golden import golden_case

LETTER_FILES = sorted(p for p in LETTERS.iterdir() if p.suffix in {".txt", ".pdf"})


def test_every_layout_has_a_fixture() -> None:
    layouts = {parse_letter(p.read_bytes()).layout for p in LETTER_FILES}
    assert layouts == {"case-number", "2014-variant", "maximus-notice", "professional-review"}


@pytest.mark.parametrize("path", LETTER_FILES, ids=lambda p: p.name)
def test_matches_golden(path: Path) -> None:
    golden = json.loads((FIXTURES / "golden" / f"{path.stem}.json").read_text())
    assert json.loads(golden_case(path)) == golden
    case = parse_letter(path.read_bytes())
    # the golden file is itself a valid case, and the case round-trips through JSON
    assert IMRCase.model_validate(golden).model_dump(mode="json", exclude={"source"}) == golden
    again = IMRCase.model_validate_json(case.model_dump_json())
    assert again == case
    assert again.source is not None and again.source.data == path.read_bytes()
