"""A conformance smoke test of a FHIR server, for integration engineers: does it do what the adapter needs?

Each check runs on its own (a failure does not stop the rest), uses resources it makes for itself
(tagged, so they are easy to find and are deleted afterwards), and reports pass or fail with a reason.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adapter.errors import AdapterError, ConflictError, FHIRServerError, NotFoundError
from adapter.exchange.client import FHIRClient
from adapter.fhir.build import pas_bundle
from adapter.fhir.conformance import response_faults
from adapter.fhir.pas import PAS
from adapter.model import Decision, DisputedItem, GuidelineBasis, IMRCase, Layout
from adapter.tables import mappings

TAG_SYSTEM = mappings().tables.fhir.systems.conformance_check
PAS_SUBMIT = mappings()[PAS].canonicals.claim_submit


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str
    milliseconds: float


class _Failed(Exception):
    pass


def _expect(condition: bool, detail: str) -> None:
    if not condition:
        raise _Failed(detail)


class ConformanceCheck:
    """The checks, in order; ``run()`` returns one result per check."""

    def __init__(self, client: FHIRClient) -> None:
        self.client = client
        self.run_id = uuid.uuid4().hex[:12]
        self.created: list[tuple[str, str]] = []

    def _patient(self, n: int) -> dict[str, Any]:
        return {
            "resourceType": "Patient",
            "meta": {"tag": [{"system": TAG_SYSTEM, "code": self.run_id}]},
            "identifier": [{"system": TAG_SYSTEM, "value": f"{self.run_id}-{n}"}],
            "gender": "unknown",
        }

    def _create(self, n: int) -> str:
        result = self.client.create(self._patient(n))
        _expect(result.status == 201, f"create answered {result.status}")
        _expect(result.id is not None, "no Location or id for the created resource")
        assert result.id is not None
        self.created.append(("Patient", result.id))
        return result.id

    def metadata(self) -> str:
        statement = self.client.capabilities()
        _expect(statement.get("resourceType") == "CapabilityStatement", "no CapabilityStatement")
        version = statement.get("fhirVersion", "")
        _expect(version.startswith("4.0"), f"fhirVersion {version!r}, not 4.0.x")
        return f"FHIR {version}, {statement.get('software', {}).get('name', 'unnamed server')}"

    def create_and_read(self) -> str:
        rid = self._create(1)
        patient = self.client.read("Patient", rid)
        _expect(patient.get("identifier", [{}])[0].get("value") == f"{self.run_id}-1", "read gave other content")
        _expect(bool(patient.get("meta", {}).get("versionId")), "no meta.versionId")
        return f"Patient/{rid}"

    def update_with_if_match(self) -> str:
        rid = self.created[0][1] if self.created else self._create(1)
        patient = self.client.read("Patient", rid)
        version = patient["meta"]["versionId"]
        patient["gender"] = "other"
        updated = self.client.update(patient, if_match=version)
        _expect(updated.status == 200, f"update answered {updated.status}")
        try:
            self.client.update(patient, if_match=version)
        except ConflictError as exc:
            return f"stale If-Match refused with {exc.status}"
        raise _Failed("an update with a stale If-Match was accepted")

    def search_with_paging(self) -> str:
        for n in (2, 3, 4):
            self._create(n)
        found = list(self.client.search("Patient", {"_tag": f"{TAG_SYSTEM}|{self.run_id}", "_count": "1"}))
        pages = sum(
            1 for _ in self.client.search_pages("Patient", {"_tag": f"{TAG_SYSTEM}|{self.run_id}", "_count": "1"})
        )
        _expect(len(found) == len(self.created), f"found {len(found)} of {len(self.created)} across pages")
        _expect(pages >= 2, "no next link with _count=1")
        return f"{len(found)} resources over {pages} pages"

    def conditional_create(self) -> str:
        patient = self._patient(5)
        query = f"identifier={TAG_SYSTEM}|{self.run_id}-5"
        first = self.client.create(patient, if_none_exist=query)
        second = self.client.create(patient, if_none_exist=query)
        if first.id:
            self.created.append(("Patient", first.id))
        _expect(first.status == 201, f"first conditional create answered {first.status}")
        _expect(second.status == 200, f"second conditional create answered {second.status}, not 200")
        matches = list(self.client.search("Patient", {"identifier": f"{TAG_SYSTEM}|{self.run_id}-5"}))
        _expect(len(matches) == 1, f"{len(matches)} copies after two conditional creates")
        return "201 then 200, one copy"

    def transaction(self) -> str:
        full_url = f"urn:uuid:{uuid.uuid4()}"
        condition = f"identifier={TAG_SYSTEM}|{self.run_id}-6"
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"fullUrl": full_url, "resource": self._patient(6),
                 "request": {"method": "POST", "url": "Patient", "ifNoneExist": condition}},
                {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "conformance check"},
                              "meta": {"tag": [{"system": TAG_SYSTEM, "code": self.run_id}]},
                              "subject": {"reference": full_url}},
                 "request": {"method": "POST", "url": "Observation"}},
            ],
        }  # fmt: skip
        results = self.client.transaction(bundle)
        _expect([r.status for r in results] == [201, 201], f"entry statuses {[r.status for r in results]}")
        for rtype, result in zip(("Patient", "Observation"), results, strict=True):
            if result.id:
                self.created.append((rtype, result.id))
        observation = self.client.read("Observation", results[1].id or "")
        reference = observation["subject"]["reference"]
        _expect(reference.endswith(f"Patient/{results[0].id}"), f"urn:uuid reference not resolved: {reference}")
        return "2 entries, references resolved"

    def errors(self) -> str:
        try:
            self.client.read("Patient", f"no-such-{self.run_id}")
            raise _Failed("reading a missing resource succeeded")
        except NotFoundError as exc:
            _expect(exc.outcome is not None, f"{exc.status} without an OperationOutcome")
        try:
            self.client.create({"resourceType": "Patient", "gender": 42, "birthDate": "not a date"})
            raise _Failed("an invalid resource was accepted")
        except FHIRServerError as exc:
            _expect(exc.status in (400, 422), f"an invalid resource answered {exc.status}")
            _expect(exc.outcome is not None, f"{exc.status} without an OperationOutcome")
            return f"404 and {exc.status} with OperationOutcome"

    def _pas_request(self) -> dict[str, Any]:
        """A PAS request Bundle of the check's own: a service, a drug and a device, so each request type goes."""
        items = [
            DisputedItem(request=text, decision=Decision.UPHELD, guideline_basis=GuidelineBasis.MTUS)
            for text in ("Physical therapy for the lumbar spine, 6 sessions", "Cyclobenzaprine 7.5mg #60",
                         "TENS unit purchase")
        ]  # fmt: skip
        case = IMRCase(case_number=f"CHECK-{self.run_id}", layout=Layout.CASE_NUMBER, items=items)
        bundle = pas_bundle(case)
        bundle["meta"]["tag"] = [{"system": TAG_SYSTEM, "code": self.run_id}]
        return bundle

    def pas_request(self) -> str:
        """A Da Vinci PAS request Bundle: to ``Claim/$submit`` where the server offers PAS's operation (the answer
        must be a PAS response Bundle that echoes the Claim's items), else kept whole as a Bundle resource (a
        core FHIR ``Claim/$submit`` takes a Claim and answers a ClaimResponse: not PAS's)."""
        bundle = self._pas_request()
        claim = bundle["entry"][0]["resource"]
        offered = {op.get("definition") for op in self.client.declared().get("Claim", {}).get("operation", [])}
        if PAS_SUBMIT in offered:
            answer = self.client.operation("submit", rtype="Claim", resource=bundle) or {}
            faults = response_faults(answer, claim)
            _expect(not faults, f"the $submit answer is not a PAS response Bundle: {faults[0] if faults else ''}")
            return f"Claim/$submit answered a PAS response Bundle for {len(claim['item'])} items"
        stored = self.client.create(bundle)
        _expect(stored.status == 201 and stored.id is not None, f"storing the Bundle answered {stored.status}")
        assert stored.id is not None
        self.created.append(("Bundle", stored.id))
        back = self.client.read("Bundle", stored.id)
        kinds = [e.get("resource", {}).get("resourceType") for e in back.get("entry", [])]
        _expect(kinds == [e["resource"]["resourceType"] for e in bundle["entry"]], f"read back as {kinds}")
        return f"no PAS $submit offered; the PAS Bundle ({len(kinds)} entries) stored and read back whole"

    def delete(self) -> str:
        rid = self._create(7)
        result = self.client.delete("Patient", rid)
        self.created.remove(("Patient", rid))
        _expect(result.status in (200, 202, 204), f"delete answered {result.status}")
        try:
            self.client.read("Patient", rid)
        except NotFoundError as exc:
            return f"deleted; read then answered {exc.status}"
        raise _Failed("the resource can still be read after delete")

    def run(self) -> list[CheckResult]:
        checks: list[tuple[str, Callable[[], str]]] = [
            ("metadata", self.metadata), ("create + read", self.create_and_read),
            ("update with If-Match", self.update_with_if_match), ("search with paging", self.search_with_paging),
            ("conditional create", self.conditional_create), ("transaction", self.transaction),
            ("error handling", self.errors), ("PAS request Bundle", self.pas_request), ("delete", self.delete),
        ]  # fmt: skip
        results = []
        for name, check in checks:
            started = time.monotonic()
            try:
                detail, passed = check(), True
            except _Failed as exc:
                detail, passed = str(exc), False
            except AdapterError as exc:
                detail, passed = str(exc), False
            results.append(CheckResult(name, passed, detail, (time.monotonic() - started) * 1000))
        self.clean_up()
        return results

    def clean_up(self) -> None:
        for rtype, rid in reversed(self.created):
            try:
                self.client.delete(rtype, rid)
            except AdapterError:
                pass
        self.created.clear()
