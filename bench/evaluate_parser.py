"""Parser accuracy per field against the corpus ground truth, and parsing speed.

    python bench/evaluate_parser.py [CORPUS_DIR]      (default: ../shared/corpus beside the project)

Prints a table of per-field accuracy, the mismatches, and letters per second on the extracted text
(single process, so the figure is per core) and on the PDFs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from adapter.errors import AdapterError
from adapter.evaluation import Score
from adapter.letters import parse_letter

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"


def main() -> int:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CORPUS
    truths = [json.loads(line) for line in (corpus / "truth.jsonl").read_text().splitlines() if line.strip()]
    texts = {t["case_number"]: (corpus / "text" / f"{t['case_number']}.txt").read_text() for t in truths}
    pdfs = {t["case_number"]: (corpus / "pdf" / f"{t['case_number']}.pdf").read_bytes() for t in truths}
    console = Console(highlight=False, width=140)

    score, pdf_score = Score(), Score()
    for truth in truths:
        for source, target in ((texts, score), (pdfs, pdf_score)):
            try:
                target.add(parse_letter(source[truth["case_number"]]), truth)
            except AdapterError as exc:
                target.missing(truth, str(exc))

    table = Table(title=f"Parser accuracy on {len(truths)} letters ({corpus})")
    table.add_column("field")
    table.add_column("text", justify="right")
    table.add_column("pdf", justify="right")
    for name in score.fields():
        table.add_row(name, f"{score.accuracy(name):.1%} ({score.right[name]}/{score.total[name]})",
                      f"{pdf_score.accuracy(name):.1%}")  # fmt: skip
    console.print(table)
    for mismatch in score.mismatches[:40]:
        console.print("mismatch:", *mismatch, markup=False)

    rounds = max(1, 2000 // len(truths))
    started = time.perf_counter()
    for _ in range(rounds):
        for text in texts.values():
            parse_letter(text)
    text_rate = rounds * len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    for data in pdfs.values():
        parse_letter(data)
    pdf_rate = len(pdfs) / (time.perf_counter() - started)
    console.print(
        f"speed (1 process, machine has {os.cpu_count()} cores): {text_rate:,.0f} letters/s on extracted text, "
        f"{pdf_rate:,.1f} letters/s from PDF (text extraction included)"
    )
    return 0 if not score.mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
