"""What pended items are asked for, against the criteria the IMR's rationales cite (issue 23's "Must reach").

    python bench/evaluate_documentation.py [CORPUS_DIR] [--labels FILE] [--half even|odd|all] [--show even]

Each item is determined from the request side of its letter only (header, patient, case summary, the item
text), as ``evaluate_determination.py`` does; its ``documentation`` (the criteria a pended item names, ranked)
is compared with the labels (``fixtures/documentation/labels.yaml``: per letter and item, whether the IMR's
rationale rests on missing documentation and the criteria it cites, most decisive first). The letters are split
by their place in file-name order: the even-indexed half is the one the ranking may be studied on
(``--show even`` lists its items), the odd half is held out and only ever reported in total. That is not
``evaluate_determination.py``'s split (by case number, the even numbers the rules were written against): 29 of the
64 letters fall in the same half in both, so the odd half here holds letters the rules were written against. The
row "odd in both" reports the letters held out from both, the rules and the ranking.

Figures, for the items whose rationale rests on missing documentation: a cited criterion named (target
>= 85%), the first-ranked criterion cited (>= 70%), precision of the criteria named (>= 60%) and their mean
count per item (<= 2.5); for the items the IMR overturned, documentation asked for (<= 50%); over all labelled
items, decided or pended with named criteria (coverage, >= 75%) and the agreement of those (>= 85%: a decision
agrees with the IMR's; a request for documentation agrees when the IMR upheld the item for missing
documentation).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from adapter.determination import (
    RULES,
    Context,
    Determination,
    Text,
    build_facts,
    determine_all,
    facts_from_letter,
)
from adapter.determination.facts import letter_summary
from adapter.evaluation import case_half
from adapter.letters import parse_letter
from adapter.tables import mappings

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Item:
    case: str
    index: int
    half: str
    #: The half by case number, as ``evaluate_determination.py`` splits (the rules were written on the even one).
    rules_half: str
    request: str
    outcome: str
    missing: bool
    cited: list[str]
    answer: Determination

    @property
    def named(self) -> list[str]:
        return [need.criterion for need in self.answer.documentation]


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%} ({part}/{whole})" if whole else "-"


def figures(items: list[Item]) -> dict[str, str]:
    """The issue's figures over a group of labelled items."""
    missing = [i for i in items if i.missing]
    named = [c for i in missing for c in i.named]
    hit = sum(bool(set(i.named) & set(i.cited)) for i in missing)
    first = sum(bool(i.named) and i.named[0] in i.cited for i in missing)
    right = sum(c in i.cited for i in missing for c in i.named)
    overturned = [i for i in items if i.outcome == "overturned"]
    asked = sum(bool(i.named) for i in overturned)
    covered = [i for i in items if i.answer.recommendation != "A4" or i.named]
    agree = sum(
        (i.missing if i.answer.recommendation == "A4"
         else i.answer.recommendation.certifies == (i.outcome == "overturned"))
        for i in covered
    )  # fmt: skip
    return {
        "items (missing doc.)": f"{len(items)} ({len(missing)})",
        "cited named >=85%": _share(hit, len(missing)),
        "first cited >=70%": _share(first, len(missing)),
        "precision >=60%": _share(right, len(named)),
        "named per item <=2.5": f"{len(named) / len(missing):.2f}" if missing else "-",
        "asked on overturned <=50%": _share(asked, len(overturned)),
        "coverage >=75%": _share(len(covered), len(items)),
        "agreement >=85%": _share(agree, len(covered)),
    }


def labelled_items(corpus: Path, labels: Path) -> list[Item]:
    """Every labelled item of the corpus, determined from its letter's request side."""
    table = yaml.safe_load(labels.read_text())["letters"]
    truths = {t["case_number"]: t for t in map(json.loads, (corpus / "truth.jsonl").read_text().splitlines())}
    rules = mappings()[RULES]
    build_facts("MRI of the lumbar spine", Context(texts=[Text("note", "warm-up")]))  # the NLP pipeline built
    items = []
    for n, path in enumerate(sorted((corpus / "text").glob("*.txt"))):
        labelled = {entry["item"]: entry for entry in table.get(path.stem, [])}
        if not labelled:
            continue
        case = parse_letter(path.read_text())
        summary = letter_summary(case)
        answers = determine_all([facts_from_letter(case, item, summary) for item in case.items], rules)
        outcomes = [t["decision"] for t in truths[path.stem]["items"]]
        for index, (item, answer) in enumerate(zip(case.items, answers, strict=True)):
            if index in labelled:
                entry = labelled[index]
                items.append(Item(path.stem, index, "even" if n % 2 == 0 else "odd", case_half(path.stem),
                                  item.request, outcomes[index],
                                  bool(entry["rests_on_missing_documentation"]), list(entry.get("cited") or []),
                                  answer))  # fmt: skip
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--labels", type=Path, default=ROOT / "fixtures" / "documentation" / "labels.yaml")
    parser.add_argument("--half", choices=["even", "odd", "all"], default="all", help="which halves to report")
    parser.add_argument("--show", choices=["even"], help="list the even half's items (never the held-out half)")
    args = parser.parse_args()
    console = Console(highlight=False, width=200)
    items = labelled_items(args.corpus, args.labels)
    groups = {"even (studied)": [i for i in items if i.half == "even"],
              "odd (held out)": [i for i in items if i.half == "odd"],
              "odd in both": [i for i in items if i.half == i.rules_half == "odd"], "all": items}  # fmt: skip
    wanted = {"even": ["even (studied)"], "odd": ["odd (held out)", "odd in both"], "all": list(groups)}[args.half]
    table = Table(title="Documentation asked for vs the criteria the IMR cited")
    table.add_column("half")
    for name in wanted:
        row = figures(groups[name])
        if len(table.columns) == 1:
            for column in row:
                table.add_column(column, justify="right")
        table.add_row(name, *row.values())
    console.print(table)
    if args.show == "even":
        shown = Table(title="Even half, item by item", show_lines=True)
        for column in ("case", "request", "IMR", "missing doc.", "cited", "recommended", "named"):
            shown.add_column(column)
        for i in groups["even (studied)"]:
            shown.add_row(f"{i.case}#{i.index}", i.request[:60], i.outcome, str(i.missing), ", ".join(i.cited),
                          i.answer.recommendation, ", ".join(i.named))  # fmt: skip
        console.print(shown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
