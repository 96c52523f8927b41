"""Rewrite fixtures/golden/<letter>.json from the parser's current output for every fixture letter.

Run after a deliberate parser change and review the diff: the golden files are what the tests hold the
parser to.
"""

from __future__ import annotations

from pathlib import Path

from adapter.letters import parse_letter

ROOT = Path(__file__).resolve().parent.parent
LETTERS = ROOT / "fixtures" / "letters"
GOLDEN = ROOT / "fixtures" / "golden"


def golden_json(path: Path) -> str:
    """The golden rendering of one letter: the case without the (volatile, bulky) source text."""
    case = parse_letter(path.read_bytes())
    return case.model_dump_json(indent=2, exclude={"source"}) + "\n"


def main() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for path in sorted(LETTERS.iterdir()):
        if path.suffix in {".txt", ".pdf"}:
            (GOLDEN / f"{path.stem}.json").write_text(golden_json(path))
            print(f"wrote fixtures/golden/{path.stem}.json")


if __name__ == "__main__":
    main()
