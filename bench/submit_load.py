"""PAS `$submit` under a steady load beside bare `GET /metadata`: is a prior authorization as quick to answer as
the service is to answer at all?

    python bench/submit_load.py [--rate 50] [--seconds 20] [--read-first 10] [--processes 2]
                                [--corpus /work/shared/corpus/text]

Makes PAS request Bundles from the corpus letters with `imr-adapter convert --pas` (into a temporary folder,
read at run time, removed after), starts `imr-adapter serve` in a process of its own (fresh SQLite state,
answers kept for the payer to read, not forwarded: the shared payer server is left alone), and from another
process sends, open loop (a fixed arrival rate, whatever the answers before), --rate `POST /fhir/Claim/$submit`
a second beside --rate `GET /fhir/metadata` a second. Each Bundle goes out under a Claim identifier of its
own, so none is a retry, but the letters repeat: the service reads a letter's text in full (the evidence pass)
the first time only. Before the run, each letter is sent once at --read-first a second (a service that has
read its patients' notes before, as a running one has); its latencies are printed apart. With --read-first 0
the run itself starts with every letter's first reading. --processes: how many processes serve (`serve
--processes`), one per core by default.

Prints progress each second, then p50/p95/p99 of each endpoint and the ratio of the p99s, and the CPU the
service's processes spend per `$submit`: their CPU time over the run (/proc) less what the same number of GETs
cost them in a GET-only run just before.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from service import Stream, open_loop, percentile, serving

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "text"
SUBMIT, METADATA = "POST /fhir/Claim/$submit", "GET /fhir/metadata"


def pas_bundles(corpus: Path) -> list[tuple[str, Any]]:
    """(case number, PAS request Bundle) of every letter in ``corpus``, as ``convert --pas`` makes them."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "adapter.cli", "convert", "--pas", "--no-progress", "--out", out, str(corpus)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return [(p.name.removesuffix(".pas.json"), orjson.loads(p.read_bytes()))
                for p in sorted(Path(out).glob("*.pas.json"))]  # fmt: skip


def submissions(bundles: list[tuple[str, Any]], count: int, run: str) -> list[bytes]:
    """``count`` request bodies, the letters in turn, each Bundle and Claim under identifiers of its own."""
    bodies = []
    for n in range(count):
        case, bundle = bundles[n % len(bundles)]
        claim = bundle["entry"][0]["resource"]
        value = f"{case}-{run}-{n}"
        bundle["identifier"] = {**bundle["identifier"], "value": value}
        claim["identifier"] = [{**claim["identifier"][0], "value": value}]
        bodies.append(orjson.dumps(bundle))
    return bodies


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time so far of a process and the processes it forked (/proc/<pid>/stat fields 14
    and 15; the children from /proc/<pid>/task/*/children)."""
    children = [int(c) for t in Path(f"/proc/{pid}/task").glob("*/children") for c in t.read_text().split()]
    total = 0
    for one in (pid, *children):
        fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _run(base: str, rate: float, seconds: float, streams: list[Stream], queue: Any) -> None:
    queue.put(asyncio.run(open_loop(base, rate, seconds, streams, progress=True)))


def _load(base: str, rate: float, seconds: float, streams: list[Stream]) -> dict[str, list[float]]:
    """An open-loop run from a process of its own (the service's latencies, not the load generator's)."""
    queue: Any = multiprocessing.Queue()
    load = multiprocessing.Process(target=_run, args=(base, rate, seconds, streams, queue))
    load.start()
    try:
        results: dict[str, list[float]] = queue.get()
    finally:
        load.join()
    return results


def _line(name: str, values: list[float]) -> str:
    p50, p95, p99 = (percentile(values, q) for q in (0.5, 0.95, 0.99))
    return f"  {name:<26} n={len(values):5d}  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 {p99:6.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second to each endpoint")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--calibrate", type=float, default=5.0, help="seconds of GET alone before, for its CPU")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="letters to make the PAS Bundles of")
    parser.add_argument("--read-first", type=float, default=10.0, metavar="RATE",
                        help="each letter sent once at this rate before the run (0: not)")  # fmt: skip
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="processes serving (serve --processes; default: one per core)")  # fmt: skip
    args = parser.parse_args()
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    bundles = pas_bundles(args.corpus)
    count = int(args.rate * args.seconds)
    bodies = submissions(bundles, count, f"{time.time_ns():x}")
    print(f"{len(bundles)} PAS Bundles from {args.corpus}; {count} submissions at {args.rate:g}/s beside "
          f"{count} GET /metadata at {args.rate:g}/s for {args.seconds:g} s")  # fmt: skip
    print(f"the service on {args.processes} process{'es' if args.processes > 1 else ''}")
    with serving(IMR_SERVICE__PROCESSES=str(args.processes)) as (base, server):
        print(f"GET /metadata alone for {args.calibrate:g} s (its CPU):")
        before = _cpu_seconds(server.pid)
        alone = _load(base, args.rate, args.calibrate, [Stream(METADATA, "GET", "/metadata")])
        per_get = (_cpu_seconds(server.pid) - before) / max(1, len(alone[METADATA]))
        if args.read_first:
            print(f"each letter read once, {args.read_first:g} a second:")
            firsts = submissions(bundles, len(bundles), f"{time.time_ns():x}")
            read = _load(base, args.read_first, len(bundles) / args.read_first, [Stream(SUBMIT, "POST",
                         "/Claim/$submit", firsts)])[SUBMIT]  # fmt: skip
        print("$submit beside GET /metadata:")
        before = _cpu_seconds(server.pid)
        results = _load(base, args.rate, args.seconds, [Stream(SUBMIT, "POST", "/Claim/$submit", bodies),
                                                        Stream(METADATA, "GET", "/metadata")])  # fmt: skip
        spent = _cpu_seconds(server.pid) - before
    print("machine: {} cores, load average after: {:.2f} {:.2f} {:.2f}".format(os.cpu_count(), *os.getloadavg()))
    for name in (SUBMIT, METADATA):
        print(_line(name, results[name]))
    first = read if args.read_first else results[SUBMIT][: len(bundles)]  # in the order sent
    where = f"before the run, {args.read_first:g} a second" if args.read_first else "the run's first"
    print(_line("$submit, first readings", first) + f"  (each letter's text never read before: {where})")
    ratio = percentile(results[SUBMIT], 0.99) / percentile(results[METADATA], 0.99)
    print(f"  $submit p99 / GET p99: {ratio:.1f}x")
    if "errors" in results:
        print(f"  errors: {len(results['errors'])} ({sorted({int(v) for v in results['errors']})})")
    submits = len(results[SUBMIT])
    cpu = (spent - per_get * len(results[METADATA])) / submits * 1000
    print(f"  service CPU: {cpu:.1f} ms per $submit ({per_get * 1000:.2f} ms per GET /metadata)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
