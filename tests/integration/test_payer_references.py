"""What the sync worker writes to the payer server resolves there: each answer goes with copies of the patient,
the request and what the request names (as far as the EHR sent them), each copy made once however many
answers name it, and every reference in all of it read back from the payer."""

from __future__ import annotations

import os
import time
from pathlib import Path

from adapter.config import SANDBOX, load_settings
from adapter.exchange import FHIRClient
from adapter.fhir.pas import REQUEST_RESOURCES
from adapter.fhir.payer import references
from adapter.fhir.response import FOREIGN_REFERENCE_SYSTEM
from adapter.service import wire
from adapter.service.pipeline import DETERMINATION_SYSTEM
from adapter.service.worker import cursor_name
from adapter.types import JSON


def _references(node: object) -> list[str]:
    return [r["reference"] for r in references(node) if "reference" in r]


def _resolve_all(payer: FHIRClient, resource: JSON, seen: set[str]) -> None:
    """Read every reference under ``resource`` from the payer, and theirs in turn."""
    for reference in _references(resource):
        if reference in seen:
            continue
        seen.add(reference)
        rtype, _, rid = reference.partition("/")
        _resolve_all(payer, payer.read(rtype, rid), seen)  # NotFoundError: it does not resolve


def test_a_workers_answers_name_only_what_the_payer_holds(tmp_path: Path, ehr_url: str) -> None:
    state = {"state_url": f"sqlite:///{tmp_path}/state.db", "worker_processes": 1}
    settings = load_settings(ehr_url=ehr_url, payer_url=os.environ.get("IMR_PAYER_URL") or SANDBOX, service=state)
    wiring = wire(settings)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    for rtype in REQUEST_RESOURCES:  # only what this test writes (and whatever else arrives meanwhile)
        wiring.store.set_cursor(cursor_name(rtype), since)
    with FHIRClient(ehr_url) as ehr:
        patient = ehr.create({"resourceType": "Patient", "gender": "female"}).id
        subject = {"reference": f"Patient/{patient}"}
        condition = ehr.create({"resourceType": "Condition", "subject": subject, "code": {"text": "Neck pain"}}).id
        requests = [ehr.create({"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                                "subject": subject, "reasonReference": [{"reference": f"Condition/{condition}"}],
                                "code": {"text": f"Physical therapy {n} visits, neck"}}).id
                    for n in (6, 8)]  # fmt: skip
    with wiring.worker() as worker:
        assert worker.run_once().decided >= 2
    assert wiring.forwarder is not None
    wiring.forwarder.drain()
    assert wiring.store.outbox_pending() == 0
    with FHIRClient(settings.payer, auth=settings.auth("payer")) as payer:
        answers = [r for r in wiring.store.search(count=100)[1] if r["patient"]["reference"] == f"Patient/{patient}"]
        assert len(answers) == 2
        copies: list[JSON] = []
        for answer in answers:
            (held,) = payer.search("ClaimResponse", {"identifier": f"{DETERMINATION_SYSTEM}|{answer['id']}"})
            assert list(_references(held))  # it names the patient and the request, by reference
            seen: set[str] = set()
            _resolve_all(payer, held, seen)
            copies.append(payer.read(*held["patient"]["reference"].split("/", 1)))
            assert any(r.startswith("Condition/") for r in seen)  # the request's reason came along
        assert copies[0]["id"] == copies[1]["id"]  # one copy of the patient for both answers
        tagged = list(payer.search("Patient", {"_tag": f"{FOREIGN_REFERENCE_SYSTEM}|Patient/{patient}"}))
        assert len(tagged) == 1
        for rid in requests:
            assert (
                len(list(payer.search("ServiceRequest", {"_tag": f"{FOREIGN_REFERENCE_SYSTEM}|ServiceRequest/{rid}"})))
                == 1
            )
    wiring.store.close()
