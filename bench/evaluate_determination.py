"""The determination module against the published IMR decisions in the corpus.

    python bench/evaluate_determination.py [CORPUS_DIR]

Each item is determined from the request side of its letter only (header, patient, case summary, the
item text). Prints coverage (share not pended), agreement on decided items (A3 = upheld; A1/A2/A6 =
overturned), the false-denial rate (overturned items answered A3), per-rule precision, the same figures
for the baseline "deny everything", a confusion table, and latency (p50, p99) and requests per second.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from adapter.determination import determine, facts_from_letter, load_rules
from adapter.determination.facts import letter_summary
from adapter.letters import parse_letter

ROOT = Path(__file__).resolve().parent.parent
OVERTURNING = {"A1", "A2", "A6"}


def figures(pairs: list[tuple[str, str]]) -> tuple[float, float, float, int, int]:
    decided = [(a, t) for a, t in pairs if a != "A4"]
    agree = sum(1 for a, t in decided if (a == "A3") == (t == "upheld"))
    overturned = sum(1 for _, t in pairs if t == "overturned")
    false_denials = sum(1 for a, t in pairs if a == "A3" and t == "overturned")
    return (len(decided) / len(pairs), agree / len(decided) if decided else 0.0,
            false_denials / overturned if overturned else 0.0, len(decided), false_denials)  # fmt: skip


def main() -> int:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "corpus"
    truths = {t["case_number"]: t for t in map(json.loads, (corpus / "truth.jsonl").read_text().splitlines())}
    rules = load_rules()
    pairs: list[tuple[str, str]] = []
    per_rule: dict[str, Counter[str]] = defaultdict(Counter)
    work = []
    for path in sorted((corpus / "text").glob("*.txt")):
        case = parse_letter(path.read_text())
        summary = letter_summary(case)
        for item, truth in zip(case.items, truths[case.case_number]["items"], strict=True):
            facts = facts_from_letter(case, item, summary)
            work.append(facts)
            answer = determine(facts, rules)
            pairs.append((answer.action, truth["decision"]))
            for rule in answer.rules:
                right = (answer.action == "A3") == (truth["decision"] == "upheld")
                per_rule[rule]["fired"] += 1
                per_rule[rule][
                    "right" if right and answer.action != "A4" else ("pended" if answer.action == "A4" else "wrong")
                ] += 1

    console = Console(highlight=False, width=140)
    coverage, agreement, false_rate, decided, false_denials = figures(pairs)
    base = figures([("A3", t) for _, t in pairs])
    overturned = sum(1 for _, t in pairs if t == "overturned")
    summary_table = Table(
        title=f"Determination vs published IMR decisions ({len(pairs)} items, {overturned} overturned)"
    )
    for column in ("", "coverage", "agreement (decided)", "false denials"):
        summary_table.add_column(column, justify="right")
    summary_table.add_row(
        "rules", f"{coverage:.1%} ({decided})", f"{agreement:.1%}", f"{false_rate:.1%} ({false_denials})"
    )
    summary_table.add_row("deny everything", f"{base[0]:.1%}", f"{base[1]:.1%}", f"{base[2]:.1%} ({base[4]})")
    console.print(summary_table)

    confusion = Table(title="Confusion: answer x IMR decision")
    confusion.add_column("answer")
    confusion.add_column("upheld", justify="right")
    confusion.add_column("overturned", justify="right")
    counts = Counter(pairs)
    for action in ("A1", "A2", "A3", "A4", "A6"):
        confusion.add_row(action, str(counts[(action, "upheld")]), str(counts[(action, "overturned")]))
    console.print(confusion)

    rule_table = Table(title="Per rule")
    for column in ("rule", "fired", "right", "wrong", "pended", "precision"):
        rule_table.add_column(column, justify="right" if column != "rule" else "left")
    for rule, c in sorted(per_rule.items(), key=lambda kv: -kv[1]["fired"]):
        judged = c["right"] + c["wrong"]
        rule_table.add_row(rule, str(c["fired"]), str(c["right"]), str(c["wrong"]), str(c["pended"]),
                           f"{c['right'] / judged:.0%}" if judged else "-")  # fmt: skip
    console.print(rule_table)

    latencies = []
    for _ in range(20):
        for facts in work:
            started = time.perf_counter()
            determine(facts, rules)
            latencies.append(time.perf_counter() - started)
    latencies.sort()
    p50 = statistics.median(latencies) * 1e6
    p99 = latencies[int(len(latencies) * 0.99)] * 1e6
    console.print(f"determine(): p50 {p50:.0f} us, p99 {p99:.0f} us, {len(latencies) / sum(latencies):,.0f} requests/s "
                  f"(1 process; machine has {os.cpu_count()} cores)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
