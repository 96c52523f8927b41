"""Letter text -> FHIR Bundle JSON: the adapter's pipeline against fhir.resources validating and serialising
the same Bundles, and peak memory while converting many letters to NDJSON.

    python bench/convert.py [CORPUS_DIR] [--letters N]     (default: ../shared/corpus, 10000 letters)

Prints letters per second (one process, so per core) for
  pipeline  = parse the letter + build the Bundle (plain dicts) + serialise it with orjson, and
  baseline  = fhir.resources R4B: Bundle.model_validate + model_dump_json on the very same Bundles,
then the peak resident memory of `imr-adapter convert --ndjson` over 1,000 and N letters (flat = no growth).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from fhir.resources.R4B.bundle import Bundle

from adapter.fhir import case_to_bundle
from adapter.letters import parse_letter
from adapter.tables import mappings

ROOT = Path(__file__).resolve().parent.parent


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} letters/s"


def peak_rss_mb(letters: Path, count: int, work: Path) -> float:
    """Peak RSS of a child `imr-adapter convert --ndjson` over `count` letters (links to the corpus)."""
    source = sorted(letters.glob("*.txt"))
    batch = work / f"letters-{count}"
    batch.mkdir()
    for n in range(count):
        (batch / f"{n:06d}.txt").symlink_to(source[n % len(source)])
    out = work / f"out-{count}"
    command = [
        sys.executable,
        "-m",
        "adapter.cli",
        "convert",
        str(batch),
        "--ndjson",
        "--out",
        str(out),
        "--no-progress",
    ]
    script = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    child = subprocess.run([sys.executable, "-c", script, *command], check=True, capture_output=True, text=True)
    return int(child.stdout.strip()) / 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--letters", type=int, default=10_000)
    args = parser.parse_args()
    texts = [p.read_text() for p in sorted((Path(args.corpus) / "text").glob("*.txt"))]
    tables = mappings().tables
    rounds = 5

    started = time.perf_counter()
    for _ in range(rounds):
        payloads = [orjson.dumps(case_to_bundle(parse_letter(t), tables=tables)) for t in texts]
    pipeline = time.perf_counter() - started

    bundles = [case_to_bundle(parse_letter(t), tables=tables) for t in texts]
    started = time.perf_counter()
    for _ in range(rounds):
        for bundle in bundles:
            Bundle.model_validate(bundle).model_dump_json()
    baseline = time.perf_counter() - started

    count = rounds * len(texts)
    print(f"machine: {os.cpu_count()} cores; {len(texts)} corpus letters x {rounds} rounds; "
          f"mean Bundle {sum(map(len, payloads)) // len(payloads):,} bytes")  # fmt: skip
    print(f"pipeline (parse + build + orjson):                 {rate(count, pipeline)}")
    print(f"baseline (fhir.resources validate + serialise only): {rate(count, baseline)}")
    print(f"pipeline / baseline: {baseline / pipeline:.1f}x")

    with tempfile.TemporaryDirectory() as work:
        small = peak_rss_mb(Path(args.corpus) / "text", 1_000, Path(work))
        large = peak_rss_mb(Path(args.corpus) / "text", args.letters, Path(work))
    print(f"peak RSS, convert --ndjson: {small:.0f} MB for 1,000 letters, {large:.0f} MB for {args.letters:,} letters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
