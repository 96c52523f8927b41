"""Rewrite the golden files in fixtures/golden/ from the current code, for every fixture letter:
<letter>.json (the parsed case) and <letter>.bundle.json (its FHIR R4 transaction Bundle).

Run after a deliberate change and review the diff: the golden files are what the tests hold the code to.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.golden import golden_bundle, golden_case  # noqa: E402

LETTERS = ROOT / "fixtures" / "letters"
GOLDEN = ROOT / "fixtures" / "golden"


def main() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for path in sorted(LETTERS.iterdir()):
        if path.suffix in {".txt", ".pdf"}:
            (GOLDEN / f"{path.stem}.json").write_text(golden_case(path))
            (GOLDEN / f"{path.stem}.bundle.json").write_bytes(golden_bundle(path))
            print(f"wrote fixtures/golden/{path.stem}.json and .bundle.json")


if __name__ == "__main__":
    main()
