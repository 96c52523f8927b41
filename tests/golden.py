"""How golden files are rendered; shared by the golden tests and scripts/update_golden.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from adapter.fhir import case_to_bundle
from adapter.letters import parse_letter

#: The conversion time written into golden Bundles (Provenance.recorded), so that they do not change.
GOLDEN_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def golden_case(path: Path) -> str:
    """The golden rendering of one letter: the case without the (bulky) source text."""
    return parse_letter(path.read_bytes()).model_dump_json(indent=2, exclude={"source"}) + "\n"


def golden_bundle(path: Path) -> bytes:
    """The golden rendering of one letter's FHIR R4 transaction Bundle."""
    bundle = case_to_bundle(parse_letter(path.read_bytes()), generated_at=GOLDEN_TIME)
    return orjson.dumps(bundle, option=orjson.OPT_INDENT_2) + b"\n"
