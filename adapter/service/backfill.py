"""Backfill: everything an EHR already holds, determined from a FHIR Bulk Data export, then polling.

The export (the requests and what the determination reads about their patients, ``_since`` when given)
is streamed into a workspace on disk, a SQLite file indexed by patient, so memory stays flat however large
the EHR; its requests are then decided a page at a time in patient order (each page's patients' context read
from the workspace once), on the worker's processes, with the worker's guarantees: a request version is
recorded once, with its answer, under the same key polling uses. Killed and started again, a backfill
exports again and passes over what is recorded: nothing lost, nothing twice. At the end each request type's
polling cursor moves to the export's ``transactionTime`` (never back), so polling picks up from there.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import orjson

from adapter.errors import AdapterError, MappingError
from adapter.exchange.bulk import BulkExport
from adapter.fhir.inbound import check_tree
from adapter.fhir.pas import REQUEST_RESOURCES
from adapter.service.context import CONTEXT_SEARCHES, by_patient, context_bundles, patient_reference, patients_of
from adapter.service.state import micros
from adapter.service.worker import Page, PassReport, SyncWorker, cursor_name, version_key
from adapter.types import JSON

EXPORT_TYPES = tuple(dict.fromkeys([*REQUEST_RESOURCES, "Patient", *(t for t, _ in CONTEXT_SEARCHES)]))
_INSERTS_PER_COMMIT = 2000


@dataclass
class BackfillReport(PassReport):
    exported: int = 0
    transaction_time: str = ""


class Workspace:
    """The exported resources on disk, by type and id, indexed by patient."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "export.db"
        self.db = sqlite3.connect(self.path)
        self.db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE resources (type TEXT, id TEXT, patient TEXT, body BLOB, PRIMARY KEY (type, id));"
            "CREATE INDEX by_patient ON resources (patient);"
        )
        self.pending = 0

    def add(self, resource: JSON) -> None:
        rtype, rid = resource["resourceType"], str(resource.get("id", ""))
        patient = f"Patient/{rid}" if rtype == "Patient" else patient_reference(resource.get("subject"))
        self.db.execute("INSERT OR REPLACE INTO resources VALUES (?, ?, ?, ?)",
                        (rtype, rid, patient, orjson.dumps(resource)))  # fmt: skip
        self.pending += 1
        if self.pending >= _INSERTS_PER_COMMIT:
            self.db.commit()
            self.pending = 0

    def count(self, types: tuple[str, ...]) -> int:
        marks = ",".join("?" * len(types))
        return int(self.db.execute(f"SELECT count(*) FROM resources WHERE type IN ({marks})", types).fetchone()[0])

    def requests(self, page: int) -> Iterator[list[JSON]]:
        """The exported requests, a page at a time, in patient order (a patient's requests together)."""
        self.db.commit()
        marks = ",".join("?" * len(REQUEST_RESOURCES))
        cursor = self.db.execute(
            f"SELECT body FROM resources WHERE type IN ({marks}) ORDER BY patient, type, id", REQUEST_RESOURCES
        )
        while rows := cursor.fetchmany(page):
            yield [orjson.loads(body) for (body,) in rows]

    def context(self, patients: list[str]) -> dict[str, list[JSON]]:
        """Patient reference -> its Bundle entries (the Patient first), as ``ContextReader.read`` gives them."""
        wanted = {t: extra for t, extra in CONTEXT_SEARCHES}
        found: dict[str, list[JSON]] = {p: [] for p in patients}
        people: dict[str, JSON] = {}
        marks = ",".join("?" * len(patients))
        for rtype, body in self.db.execute(
            f"SELECT type, body FROM resources WHERE patient IN ({marks}) ORDER BY type, id", patients
        ):
            resource = orjson.loads(body)
            ref = f"{rtype}/{resource.get('id')}"
            if rtype == "Patient":
                people[ref] = resource
            elif rtype in wanted and all(resource.get(k) == v for k, v in wanted[rtype].items()):
                found[patient_reference(resource.get("subject"))].append({"fullUrl": ref, "resource": resource})
        return by_patient(patients, people, found)

    def close(self) -> None:
        self.db.close()


def backfill(
    worker: SyncWorker,
    *,
    since: str | None = None,
    group: str | None = None,
    patients: bool = False,
    progress: Callable[[int, int], None] | None = None,
    workspace: Path | None = None,
) -> BackfillReport:
    """Determine every request in a Bulk Data export of the EHR; ``progress(done, total)`` after each page."""
    report = BackfillReport()
    export = BulkExport(worker.ehr)
    manifest = export.wait(export.kick_off(EXPORT_TYPES, since=since, group=group, patients=patients))
    report.transaction_time = manifest.transaction_time
    with tempfile.TemporaryDirectory(prefix="imr-backfill-", dir=workspace) as folder:
        space = Workspace(Path(folder))
        try:
            for rtype, url in manifest.outputs:
                if rtype not in EXPORT_TYPES:
                    continue
                for n, resource in enumerate(export.lines(url), start=1):
                    if isinstance(resource, AdapterError):
                        _dead(worker, report, f"export:{rtype}:{n}", resource.message, {"url": url, "line": n})
                        continue
                    problem = _problem(resource, rtype)
                    if problem is not None:
                        _dead(worker, report, version_key(resource), problem, {"url": url, "line": n})
                        continue
                    space.add(resource)
                    report.exported += 1
            worker.process_pages(_pages(space, worker.page_size, report, progress), report)
        finally:
            space.close()
    for rtype in REQUEST_RESOURCES:  # polling goes on from the export's time, never back
        current = worker.store.cursor(cursor_name(rtype))
        if current is None or micros(current) < micros(manifest.transaction_time):
            worker.store.set_cursor(cursor_name(rtype), manifest.transaction_time)
    if worker.forwarder is not None:
        report.delivered = worker.forwarder.drain()
    return report


def _dead(worker: SyncWorker, report: BackfillReport, key: str, reason: str, where: JSON) -> None:
    """An export line to the dead letters, once however often the backfill is restarted."""
    if not worker.store.claimed(key):
        worker.store.dead_letter("export", key, reason, where, processed=True)
        report.dead += 1


def _problem(resource: JSON, rtype: str) -> str | None:
    """Why an exported resource cannot go into the workspace (None: it can): another type, or nested beyond
    the inbound limits (checked without recursion, before anything serialises it again)."""
    if resource.get("resourceType") != rtype:
        return "another type in the file"
    try:
        check_tree(resource)
    except MappingError as exc:
        return f"[{exc.code}] {exc.message}"
    return None


def _pages(space: Workspace, size: int, report: BackfillReport,
           progress: Callable[[int, int], None] | None) -> Iterator[Page]:  # fmt: skip
    """The workspace's requests as pages to decide; a page recorded reports progress."""
    total, read = space.count(REQUEST_RESOURCES), 0
    for found in space.requests(size):
        read += len(found)
        requests = [r for r in found if (r.get("status"), r.get("intent")) == ("active", "order")]
        report.seen += len(requests)
        done = partial(progress, read, total) if progress else (lambda: None)
        yield Page(requests, partial(_bundles, space), done)


def _bundles(space: Workspace, requests: list[JSON]) -> list[JSON | AdapterError]:
    return [*context_bundles(requests, space.context(patients_of(requests)))]
