"""The facts of a request read before are recalled, under the new request's sources, and the memory is bounded."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from adapter.determination import recall
from adapter.determination.evidence import Text
from adapter.determination.facts import Context, build_facts
from adapter.fhir.request import RequestBundle
from adapter.fhir.request_facts import requested_services
from adapter.lexicon import LEXICON
from adapter.tables import mappings

SUBMIT = Path(__file__).parent.parent / "fixtures" / "http" / "claim-submit.json"
NOTE = "Low back pain radiating to the left leg. Straight leg raise is positive on the left. Failed 6 weeks of PT."


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The requests the evidence pass really reads (not recalled), in order."""
    read: list[str] = []
    build = recall.build_facts

    def counted(request: str, context: Context, **kwargs: Any) -> Any:
        read.append(request)
        return build(request, context, **kwargs)

    monkeypatch.setattr(recall, "build_facts", counted)
    monkeypatch.setattr(recall, "FACTS", recall.FactsMemo())
    monkeypatch.setattr("adapter.fhir.request_facts.FACTS", recall.FACTS)
    return read


def _by_place(requested: list[Any]) -> list[Any]:
    """Each request's facts, every finding's source told by its text's place among the request's texts."""
    out = []
    for r in requested:
        place = {t.source: n for n, t in enumerate(r.texts)}
        evidence = {k: (f.status, f.quote, f.start, f.end, place.get(f.source, f.source))
                    for k, f in r.facts.evidence.items()}  # fmt: skip
        out.append((r.facts.model_dump(exclude={"evidence"}), evidence))
    return out


def test_a_request_sent_again_under_other_ids_is_recalled_with_its_own_sources(reads: list[str]) -> None:
    bundle = json.loads(SUBMIT.read_text())
    first = requested_services(RequestBundle.of(bundle).localized("first", "http://service/fhir"))
    read_first = len(reads)
    again = requested_services(RequestBundle.of(bundle).localized("again", "http://service/fhir"))
    assert read_first == len(first) and len(reads) == read_first  # nothing read twice
    assert _by_place(again) == _by_place(first)
    sources = {f.source for r in again for f in r.facts.evidence.values() if f.source and "/" in f.source}
    own = {t.source for r in again for t in r.texts}
    assert sources and sources <= own  # quotes point into this request's resources, not the first one's


def test_other_text_is_read_anew(reads: list[str]) -> None:
    context = Context(texts=[Text("DocumentReference/1", NOTE)])
    memo = recall.FactsMemo()
    memo.facts("Lumbar MRI", context)
    memo.facts("Lumbar MRI", Context(texts=[Text("DocumentReference/1", NOTE + " No numbness.")]))
    memo.facts("Lumbar MRI", context)
    assert reads == ["Lumbar MRI", "Lumbar MRI"]


def test_the_memory_is_bounded(reads: list[str]) -> None:
    memo = recall.FactsMemo(size=3)
    for n in range(5):
        memo.facts("Lumbar MRI", Context(texts=[Text("DocumentReference/1", f"Pain {n}/10.")]))
    assert len(memo._read) == 3
    memo.facts("Lumbar MRI", Context(texts=[Text("DocumentReference/1", "Pain 0/10.")]))
    assert len(reads) == 6  # the oldest was let go


def test_recalled_facts_are_the_requests_own(reads: list[str]) -> None:
    """Each recall makes the facts anew, equal to those first read: a caller changing its copy changes no other."""
    context = Context(texts=[Text("DocumentReference/1", NOTE)])
    memo = recall.FactsMemo()
    first = memo.facts("Lumbar MRI", context)
    again = memo.facts("Lumbar MRI", context)
    assert again == first and again is not first and len(reads) == 1
    kept = first.model_copy(deep=True)
    first.diagnoses.append("first's own")
    again.evidence.clear()
    again.medications.append("again's own")
    assert memo.facts("Lumbar MRI", context) == kept


def test_processes_sharing_a_folder_read_a_text_once_among_them(reads: list[str], tmp_path: Path) -> None:
    """``serve --processes``: what one forked process read, another recalls, with its own sources."""
    memo = recall.FactsMemo()
    memo.share(tmp_path)
    try:
        child = multiprocessing.get_context("fork").Process(
            target=memo.facts, args=("Lumbar MRI", Context(texts=[Text("DocumentReference/a", NOTE)]))
        )
        child.start()
        child.join(timeout=60)
        assert child.exitcode == 0
        recalled = memo.facts("Lumbar MRI", Context(texts=[Text("DocumentReference/b", NOTE)]))
    finally:
        memo.unshare()
    assert reads == []  # read in the other process only
    assert recalled == build_facts("Lumbar MRI", Context(texts=[Text("DocumentReference/b", NOTE)]))


def test_another_lexicon_recalls_nothing_shared(reads: list[str], tmp_path: Path) -> None:
    context = Context(texts=[Text("DocumentReference/1", NOTE)])
    lexicon = mappings()[LEXICON]
    other = lexicon.model_copy(update={"topical_forms": [*lexicon.topical_forms, "salve"]})
    first, second = recall.FactsMemo(), recall.FactsMemo()
    for memo in (first, second):
        memo.share(tmp_path)
    try:
        first.facts("Lumbar MRI", context)
        second.facts("Lumbar MRI", context, lexicon=other)
        second.facts("Lumbar MRI", context)
    finally:
        first.unshare()
        second.unshare()
    assert reads == ["Lumbar MRI", "Lumbar MRI"]  # the same lexicon's content is recalled, another's is read


def test_a_failing_shared_folder_is_a_miss_not_a_failure(
    reads: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memo = recall.FactsMemo()
    memo.share(tmp_path)

    def broken(*_: Any, **__: Any) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    try:
        assert memo._shared is not None
        monkeypatch.setattr(memo._shared, "get", broken)
        monkeypatch.setattr(memo._shared, "set", broken)
        context = Context(texts=[Text("DocumentReference/1", NOTE)])
        facts = memo.facts("Lumbar MRI", context)
    finally:
        memo.unshare()
    assert reads == ["Lumbar MRI"] and facts == build_facts("Lumbar MRI", context)
