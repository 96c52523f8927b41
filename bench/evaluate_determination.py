"""The determination against the published IMR decisions in the corpus, on two halves; the evidence reader
against clinical sentences with the statuses they state.

    python bench/evaluate_determination.py [CORPUS_DIR] [--show even] [--sentences FILE ...]

Each item is determined from the request side of its letter only (header, patient, case summary, the
item text). The corpus is split by case number: the even half is the one rules may be written against,
the odd half is held out, so a rule that only fits the corpus's wording shows there first. For each half
and in all: coverage (share of items with a recommendation other than A4), agreement on recommended items
(A3 = upheld; A1/A2/A6 = overturned), A3 recommended for items the IMR overturned, A1 or A6 recommended for
them, the "deny everything" baseline, the actions sent under the default policy (no A3 leaves the adapter),
per-rule figures, A1 precision (certifications the IMR also certified: A1 goes out unreviewed), and latency
per request with the NLP (p50, p99) on one core. ``--show even`` lists the even half's items with their
recommendation, rules and evidence (never the held-out half).

Sentences (``fixtures/determination/sentences.yaml`` unless ``--sentences`` names other files of the same
form, each entry optionally tagged with a ``phenomenon``): the share of expected statuses read right, by
phenomenon and by fact, and the count of ``absent`` read where the text does not state absence.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from adapter.actions import ReviewAction
from adapter.determination import (
    RULES,
    Context,
    Determination,
    Text,
    build_facts,
    determine,
    determine_all,
    facts_from_letter,
)
from adapter.determination.evidence import forget_texts
from adapter.determination.facts import letter_summary
from adapter.evaluation import case_half
from adapter.letters import parse_letter
from adapter.tables import mappings

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Item:
    case: str
    half: str
    request: str
    truth: str
    answer: Determination
    seconds: float


def summary_row(items: list[Item]) -> list[str]:
    recommended = [i for i in items if i.answer.recommendation != "A4"]
    agree = sum((i.answer.recommendation == "A3") == (i.truth == "upheld") for i in recommended)
    overturned = [i for i in items if i.truth == "overturned"]
    a3 = sum(i.answer.recommendation == "A3" for i in overturned)
    certify = sum(i.answer.recommendation.certifies for i in overturned)
    a1 = [i for i in items if i.answer.recommendation == "A1"]
    a1_right = sum(i.truth == "overturned" for i in a1)
    sent_a3 = sum(i.answer.action == "A3" for i in items)
    deny_all = sum(i.truth == "upheld" for i in items) / len(items) if items else 0.0
    return [
        str(len(items)),
        f"{len(recommended) / len(items):.1%} ({len(recommended)})" if items else "-",
        f"{agree / len(recommended):.1%}" if recommended else "-",
        f"{a3 / len(overturned):.1%} ({a3}/{len(overturned)})" if overturned else "-",
        f"{certify / len(overturned):.1%} ({certify})" if overturned else "-",
        f"{a1_right / len(a1):.0%} ({a1_right}/{len(a1)})" if a1 else "-",
        str(sent_a3),
        f"{deny_all:.1%}",
    ]


def evaluate_sentences(paths: list[Path], console: Console, sets: set[str] | None = None) -> None:
    """Expected statuses read right, by phenomenon and by fact; absences read where none is stated. ``sets``:
    only the sentences of these sets (a held-out set is scored without its sentences being shown)."""
    by_phenomenon: dict[str, Counter[str]] = defaultdict(Counter)
    by_fact: dict[str, Counter[str]] = defaultdict(Counter)
    false_absent: list[str] = []
    for path in paths:
        for case in yaml.safe_load(path.read_text()):
            if sets is not None and case.get("set") not in sets:
                continue
            request = case.get("request", "Physical therapy 2 times a week for 4 weeks for the low back")
            facts = build_facts(request, Context(texts=[Text("note", case["text"])]))
            phenomenon = case.get("phenomenon", "(untagged)")
            for fact, expected in case["expect"].items():
                got = getattr(facts, fact)
                outcome = "right" if got == expected else "wrong"
                by_phenomenon[phenomenon][outcome] += 1
                by_fact[fact][outcome] += 1
                if got == "absent" and expected != "absent":
                    shown = not str(case.get("set")).startswith("heldout")  # held-out text is never shown
                    false_absent.append(f"{fact}: {case['text'][:90] if shown else '(held out)'}")
    for title, table_of in (("phenomenon", by_phenomenon), ("fact", by_fact)):
        table = Table(title=f"Sentences: statuses read right, by {title}")
        for column in (title, "right", "of", "share"):
            table.add_column(column, justify="left" if column == title else "right")
        for key, c in sorted(table_of.items(), key=lambda kv: kv[1]["right"] / sum(kv[1].values())):
            total = c["right"] + c["wrong"]
            table.add_row(key, str(c["right"]), str(total), f"{c['right'] / total:.1%}")
        right = sum(c["right"] for c in table_of.values())
        total = sum(sum(c.values()) for c in table_of.values())
        table.add_row("all", str(right), str(total), f"{right / total:.1%}" if total else "-", style="bold")
        console.print(table)
    console.print(f"absent read where absence is not stated: {len(false_absent)}")
    for line in false_absent:
        console.print(f"  {line}", markup=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--show", choices=["even"], help="list the even half's items (never the held-out half)")
    parser.add_argument(
        "--sentences",
        nargs="+",
        type=Path,
        metavar="FILE",
        default=[ROOT / "fixtures" / "determination" / "sentences.yaml"],
        help="clinical sentences with expected statuses (default: the project's)",
    )
    parser.add_argument(
        "--set",
        nargs="+",
        dest="sets",
        metavar="SET",
        help="score only the sentences of these sets (held-out sets' sentences are never shown)",
    )
    parser.add_argument("--sentences-only", action="store_true", help="skip the corpus")  # fmt: skip
    args = parser.parse_args()
    console = Console(highlight=False, width=160)
    if args.sentences_only:
        evaluate_sentences(args.sentences, console, set(args.sets) if args.sets else None)
        return 0
    truths = {t["case_number"]: t for t in map(json.loads, (args.corpus / "truth.jsonl").read_text().splitlines())}
    rules = mappings()[RULES]
    build_facts("MRI of the lumbar spine", Context(texts=[Text("note", "warm-up")]))  # the NLP pipeline built
    items: list[Item] = []
    for path in sorted((args.corpus / "text").glob("*.txt")):
        case = parse_letter(path.read_text())
        assert case.case_number is not None
        summary = letter_summary(case)
        facts, seconds = [], []
        for item in case.items:
            forget_texts()  # each item timed cold, its letter's text analysed anew
            started = time.process_time()  # this process's CPU time: one core's work, whatever else runs
            facts.append(facts_from_letter(case, item, summary))
            determine(facts[-1], rules)
            seconds.append(time.process_time() - started)
        answers = determine_all(facts, rules)  # services associated with a surgery follow it
        for item, truth, answer, took in zip(case.items, truths[case.case_number]["items"], answers, seconds,
                                             strict=True):  # fmt: skip
            items.append(
                Item(case.case_number, case_half(case.case_number), item.request, truth["decision"], answer, took)
            )

    table = Table(title=f"Recommendations vs published IMR decisions ({len(items)} items)")
    for column in ("half", "items", "coverage", "agreement", "A3 on overturned", "A1/A6 on overturned",
                   "A1 precision", "A3 sent", "deny-all agreement"):  # fmt: skip
        table.add_column(column, justify="right" if column != "half" else "left")
    for name, group in (("even (written against)", [i for i in items if i.half == "even"]),
                        ("odd (held out)", [i for i in items if i.half == "odd"]), ("all", items)):  # fmt: skip
        table.add_row(name, *summary_row(group))
    console.print(table)

    confusion = Table(title="Confusion: recommendation x IMR decision (all)")
    for column in ("recommendation", "upheld", "overturned"):
        confusion.add_column(column, justify="right")
    counts = Counter((i.answer.recommendation, i.truth) for i in items)
    for action in sorted(ReviewAction):
        confusion.add_row(action.value, str(counts[(action, "upheld")]), str(counts[(action, "overturned")]))
    console.print(confusion)

    per_rule: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for i in items:
        for rule in i.answer.rules:
            outcome = "pended" if i.answer.recommendation == "A4" else (
                "right" if (i.answer.recommendation == "A3") == (i.truth == "upheld") else "wrong")  # fmt: skip
            per_rule[(rule, i.half)][outcome] += 1
    rule_table = Table(title="Per rule and half: right / wrong / pended (precision)")
    for column in ("rule", "even", "odd (held out)"):
        rule_table.add_column(column, justify="right" if column != "rule" else "left")
    for rule in sorted({r for r, _ in per_rule}):
        cells = []
        for half in ("even", "odd"):
            c = per_rule[(rule, half)]
            judged = c["right"] + c["wrong"]
            precision = f" ({c['right'] / judged:.0%})" if judged else ""
            cells.append(f"{c['right']} / {c['wrong']} / {c['pended']}{precision}")
        rule_table.add_row(rule, *cells)
    console.print(rule_table)

    if args.show == "even":
        shown = Table(title="Even half, item by item", show_lines=True)
        for column in ("case", "request", "IMR", "recommended", "rules", "evidence"):
            shown.add_column(column)
        for i in (i for i in items if i.half == "even"):
            evidence = "; ".join(f"{e.fact}={e.status}" for e in i.answer.evidence)
            shown.add_row(i.case, i.request[:70], i.truth, i.answer.recommendation, ", ".join(i.answer.rules),
                          evidence)  # fmt: skip
        console.print(shown)

    latencies = sorted(i.seconds for i in items)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99)] * 1000
    console.print(f"facts (with the NLP) + determine, per request, CPU time: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
                  f"(1 process; machine has {os.cpu_count()} cores)")  # fmt: skip
    evaluate_sentences(args.sentences, console, set(args.sets) if args.sets else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
