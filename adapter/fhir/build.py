"""IMRCase -> a FHIR R4 (4.0.1) transaction Bundle, as plain JSON-ready dicts.

Building dicts (not fhir.resources models) keeps conversion fast; the tests validate every Bundle with
the fhir.resources R4B models, the official R4 JSON schema and a real server.

Every entry has a ``urn:uuid`` fullUrl derived from its business identifier (so a case always converts
to the same Bundle) and a conditional create (``ifNoneExist``) on that identifier, so posting a case
twice leaves one copy of everything. What goes where is documented in README.md ("FHIR mapping").
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, date, datetime
from urllib.parse import quote

from adapter.categories import categorise
from adapter.errors import MappingError
from adapter.fhir.extensions import simple
from adapter.fhir.navigate import closure
from adapter.fhir.pas import (
    PAS,
    REQUEST_RESOURCES,
    Carrier,
    PASTable,
    collection,
)
from adapter.fhir.pas import Code as PASCode
from adapter.fhir.response import letter_response
from adapter.letters import requested_on, summary_text
from adapter.lexicon import LEXICON
from adapter.model import DisputedItem, IMRCase
from adapter.tables import Coding, Tables, mappings
from adapter.types import JSON
from adapter.version import __version__

#: Resource types whose ``identifier`` search some servers do not index (the sekmet sandbox has no search
#: parameter but the common ones for DeviceRequest): their conditional create goes by a tag with the same key.
_UNINDEXED_IDENTIFIER = frozenset({"DeviceRequest"})

#: The identifier kind of each request resource type.
_KINDS = {"ServiceRequest": "service-request", "MedicationRequest": "medication-request",
          "DeviceRequest": "device-request"}  # fmt: skip

#: Namespace of the adapter's deterministic resource UUIDs (uuid5 of "system|value").
UUID_NAMESPACE = uuid.UUID("6f1c1a53-4f7e-5a0e-9a55-1d5b8f3c2e71")


def case_key(case: IMRCase) -> str:
    """What identifies a case: its IMR case number, else the SHA-1 of its letter."""
    if case.case_number:
        return case.case_number
    if case.source is not None:
        return f"sha1-{case.source.sha1}"
    raise MappingError("a case needs a case number or its source letter to be identified", location="case_number")


def _concept(coding: Coding | None, text: str) -> JSON:
    concept: JSON = {"text": text}
    if coding is not None:
        concept["coding"] = [coding.as_fhir()]
    return concept


class _Bundle:
    """Accumulates entries; each resource gets its identifier, fullUrl and conditional request."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.entries: list[JSON] = []

    def add(self, resource: JSON, kind: str, value: str) -> str:
        system = self.tables.identifier_system(kind)
        key = f"{system}|{value}"
        identifiers = [{"system": system, "value": value}, *resource.pop("identifier", [])]
        resource = {"resourceType": resource.pop("resourceType"), "identifier": identifiers, **resource}
        if resource["resourceType"] in _UNINDEXED_IDENTIFIER:
            # the same key as a tag too, and the conditional create on it: _tag is searchable on every type
            return self.add_tagged(resource, system, str(uuid.uuid5(UUID_NAMESPACE, key)), key=key)
        return self._entry(resource, key, f"identifier={quote(system, safe=':/')}|{quote(value)}")

    def add_tagged(self, resource: JSON, system: str, code: str, *, key: str | None = None) -> str:
        """For resources without an identifier element (Provenance): a meta.tag does the same job. ``key``
        names the entry (its fullUrl; by default the tag)."""
        rtype = resource.pop("resourceType")
        resource = {"resourceType": rtype, "meta": {"tag": [{"system": system, "code": code}]}, **resource}
        return self._entry(resource, key or f"{system}|{code}", f"_tag={quote(system, safe=':/')}|{quote(code)}")

    def _entry(self, resource: JSON, key: str, condition: str) -> str:
        full_url = f"urn:uuid:{uuid.uuid5(UUID_NAMESPACE, key)}"
        rtype = resource["resourceType"]
        self.entries.append(
            {
                "fullUrl": full_url,
                "resource": resource,
                "request": {"method": "POST", "url": rtype, "ifNoneExist": condition},
            }
        )
        return full_url


def case_to_bundle(case: IMRCase, *, tables: Tables | None = None, generated_at: datetime | None = None) -> JSON:
    """The case as a FHIR R4 transaction Bundle (a JSON-ready dict)."""
    return _Builder(case, tables or mappings().tables, generated_at or datetime.now(UTC)).build()


class _Builder:
    def __init__(self, case: IMRCase, tables: Tables, generated_at: datetime) -> None:
        self.case = case
        self.tables = tables
        self.t = tables.fhir
        self.ext = tables.fhir.extensions
        self.systems = tables.system_uris
        self.key = case_key(case)
        self.generated_at = generated_at
        self.bundle = _Bundle(tables)
        self.pas = mappings()[PAS]
        self.carriers = [self.pas.carrier(categorise(item.requested)) for item in case.items]

    def ref(self, full_url: str) -> JSON:
        return {"reference": full_url}

    def build(self) -> JSON:
        case, bundle = self.case, self.bundle
        imr_org = bundle.add(
            {"resourceType": "Organization", "active": True, "name": self.t.imr_organization.name},
            "organization",
            self.t.imr_organization.identifier,
        )
        claims_admin = bundle.add(
            self.organization(self.t.claims_administrator_name, self.pas.insurer_type),
            "organization",
            f"{self.key}/claims-administrator",
        )
        requestor = bundle.add(
            self.organization(self.t.requesting_provider_display, self.pas.requestor_type),
            "organization",
            f"{self.key}/requestor",
        )
        patient = bundle.add(self.patient(), "patient", self.key)
        coverage = bundle.add(self.coverage(patient, claims_admin), "coverage", self.key)
        role = self.reviewer(imr_org)
        conditions = [
            bundle.add(self.condition(text, patient), "condition", f"{self.key}/{n}")
            for n, text in enumerate(case.diagnoses, start=1)
        ]
        history = []
        for n, fact in enumerate(case.treatment_history, start=1):
            procedure: JSON = {
                "resourceType": "Procedure",
                "extension": [simple(self.ext.session_count, "valueInteger", fact.count)],
                "status": "completed",
                "code": {"text": fact.therapy},
                "subject": self.ref(patient),
                # US Core us-core-7: a completed Procedure says when; the letters do not
                "_performedDateTime": {"extension": [simple(self.ext.data_absent_reason, "valueCode", "unknown")]},
                "note": [{"text": fact.text}],
            }
            history.append(bundle.add(procedure, "procedure", f"{self.key}/{n}"))
        requests = [self.request(item, n, patient, requestor, conditions) for n, item in enumerate(case.items, start=1)]
        claim = bundle.add(self.claim(patient, coverage, claims_admin, requestor, requests, history), "claim", self.key)
        dates = case.dates
        created = self._created(dates.decision, dates.assigned, dates.application_received)
        answer = letter_response(case, patient=self.ref(patient), insurer=self.ref(imr_org), claim=self.ref(claim),
                                 reviewer=self.ref(role), created=created, tables=self.tables)  # fmt: skip
        response = bundle.add(answer, "claim-response", self.key)
        if case.source is not None:
            bundle.add(self.document_reference(patient, response), "document-reference", self.key)
        targets = [self.ref(e["fullUrl"]) for e in bundle.entries]
        # A tag code must be a FHIR code (no stray spaces): the key's UUID always is.
        tag = str(uuid.uuid5(UUID_NAMESPACE, f"provenance|{self.key}"))
        bundle.add_tagged(self.provenance(targets), self.t.provenance_tag_system, tag)
        return {"resourceType": "Bundle", "type": "transaction", "entry": bundle.entries}

    # --- resources ---------------------------------------------------------------------------------

    def organization(self, name: str, kind: PASCode) -> JSON:
        """A PAS insurer or requestor: active, with its X12 entity type."""
        return {
            "resourceType": "Organization",
            "active": True,
            "type": [{"coding": [self.pas.coding("entity_type", kind)]}],
            "name": name,
        }

    def patient(self) -> JSON:
        """The injured worker. Published letters redact the name: US Core's data-absent-reason "masked"
        stands in its place, and gender "unknown" where the letter does not say."""
        masked = simple(self.ext.data_absent_reason, "valueCode", "masked")
        patient: JSON = {"resourceType": "Patient", "name": [{"extension": [masked]}]}
        if self.case.patient.age is not None:
            age = {"value": self.case.patient.age, "unit": "a", "system": self.systems["ucum"], "code": "a"}
            patient["extension"] = [simple(self.ext.patient_age, "valueAge", age)]
        patient["gender"] = self.case.patient.gender.value if self.case.patient.gender is not None else "unknown"
        return patient

    def coverage(self, patient: str, payor: str) -> JSON:
        """The workers' compensation coverage; the injured worker is its subscriber (relationship self), and
        the claim (the case) stands for the member identifier the letters redact."""
        member_type = self.pas.coding("identifier_type", PASCode(code="MB", display="Member Number"))
        identifiers: list[JSON] = [
            {"type": {"coding": [member_type]}, "system": self.tables.identifier_system("member"), "value": self.key}
        ]
        if self.case.case_number:
            identifiers.append({"system": self.t.case_number_system, "value": self.case.case_number})
        return {
            "resourceType": "Coverage",
            "identifier": identifiers,
            "status": "active",
            "type": {
                "coding": [c.as_fhir() for c in self.t.coverage_type],
                "text": "workers' compensation",
            },
            "subscriber": self.ref(patient),
            "beneficiary": self.ref(patient),
            "relationship": {
                "coding": [
                    {"system": self.pas.code_systems.subscriber_relationship, "code": "self"},
                    self.pas.coding("relationship", self.pas.relationship),
                ]
            },
            "payor": [self.ref(payor)],
        }

    def reviewer(self, imr_org: str) -> str:
        reviewer = self.case.reviewer
        practitioner: JSON = {"resourceType": "Practitioner", "active": True}
        if reviewer.licensure:
            practitioner["qualification"] = [
                {"code": {"text": "License to practise medicine"}, "issuer": {"display": state}}
                for state in reviewer.licensure
            ]
        who = self.bundle.add(practitioner, "practitioner", f"{self.key}/reviewer")
        role: JSON = {
            "resourceType": "PractitionerRole",
            "practitioner": self.ref(who),
            "organization": self.ref(imr_org),
            "code": [{"text": "IMR expert reviewer"}],
        }
        if reviewer.specialty:
            role["specialty"] = [{"text": s} for s in reviewer.specialty]
        return self.bundle.add(role, "practitioner-role", f"{self.key}/reviewer")

    def condition(self, text: str, patient: str) -> JSON:
        condition: JSON = {
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{"system": self.systems["condition_clinical"], "code": "active"}]},
            "category": [{"coding": [{"system": self.systems["condition_category"], "code": "problem-list-item"}]}],
            "code": _concept(self.tables.diagnosis_code(text), text),
            "subject": self.ref(patient),
        }
        if self.case.dates.injury is not None:
            condition["onsetDateTime"] = self.case.dates.injury.isoformat()
        return condition

    def _service(self, item: DisputedItem, carrier: Carrier) -> JSON:
        """What is requested, coded from the X12 278 requested-service value set: CPT or HCPCS where the table
        knows it, else the X12 service type (beside any other code the table gives, such as RxNorm)."""
        coding = self.tables.service_code(item.requested)
        codings = [coding.as_fhir()] if coding is not None else []
        if coding is None or coding.system not in self.pas.value_sets.requested_service:
            codings.insert(0, self.pas.coding("service_type", carrier.service_type))
        return {"coding": codings, "text": item.requested}

    def _timing(self, item: DisputedItem) -> JSON | None:
        repeat: JSON = {}
        if item.frequency_per_week is not None:
            repeat.update(frequency=item.frequency_per_week, period=1, periodUnit="wk")
        if item.duration_weeks is not None:
            ucum = self.systems["ucum"]
            repeat["boundsDuration"] = {"value": item.duration_weeks, "unit": "wk", "system": ucum, "code": "wk"}
        return {"repeat": repeat} if repeat else None

    def _site(self, item: DisputedItem) -> JSON | None:
        if item.body_site is None:
            return None
        return _concept(self.tables.body_site_code(item.body_site), item.body_site)

    def request(self, item: DisputedItem, n: int, patient: str, requestor: str, conditions: list[str]) -> str:
        """The item as its EHR would order it (PAS requestedService): a drug as a MedicationRequest with its
        RxNorm ingredient, equipment as a DeviceRequest, anything else as a ServiceRequest."""
        carrier = self.carriers[n - 1]
        timing, site = self._timing(item), self._site(item)
        quantity = {"value": item.quantity} if item.quantity is not None else None
        subject = self.ref(patient)
        ordered_by = {"requester": self.ref(requestor), "reasonReference": [self.ref(c) for c in conditions]}
        # no bodySite on a MedicationRequest or DeviceRequest in R4: the adapter's extension carries it
        site_extension = [simple(self.ext.body_site, "valueCodeableConcept", site)] if site else None
        fields: JSON
        if carrier.resource == "MedicationRequest":
            fields = {
                "medicationCodeableConcept": self._medication(item), "subject": subject,
                "extension": site_extension, **ordered_by,
                "dosageInstruction": [{"timing": timing}] if timing else None,
                "dispenseRequest": {"quantity": quantity} if quantity else None,
            }  # fmt: skip
        elif carrier.resource == "DeviceRequest":
            fields = {
                "codeCodeableConcept": self._service(item, carrier), "subject": subject,
                "extension": site_extension, "occurrenceTiming": timing, **ordered_by,
            }  # fmt: skip
        else:
            fields = {
                "code": self._service(item, carrier), "subject": subject, "quantityQuantity": quantity,
                "occurrenceTiming": timing, "bodySite": [site] if site else None, **ordered_by,
            }  # fmt: skip
        request = {"resourceType": carrier.resource, "status": "active", "intent": "order"}
        request.update({k: v for k, v in fields.items() if v})
        return self.bundle.add(request, _KINDS[carrier.resource], f"{self.key}/{n}")

    def _medication(self, item: DisputedItem) -> JSON:
        """The drug as text, coded as its Claim item is (the services table's RxNorm code), else with its
        RxNorm ingredient when the request names exactly one known drug."""
        drugs = {d.ingredient: d for d in mappings()[LEXICON].drugs_in(item.requested)}
        medication: JSON = {"text": item.requested}
        coding = self.tables.service_code(item.requested)
        if coding is not None and coding.system == self.systems["rxnorm"]:
            medication["coding"] = [coding.as_fhir()]
        elif len(drugs) == 1 and (drug := next(iter(drugs.values()))).rxnorm:
            medication["coding"] = [{"system": self.systems["rxnorm"], "code": drug.rxnorm, "display": drug.ingredient}]
        return medication

    def _priority(self) -> JSON:
        if self.case.priority is None:
            return {"extension": [simple(self.ext.data_absent_reason, "valueCode", "unknown")]}
        code = getattr(self.t.priorities, self.case.priority.value)
        return {"coding": [{"system": self.systems["process_priority"], "code": code}]}

    def _created(self, *order: date | None) -> str:
        return next((d.isoformat() for d in order if d is not None), self.generated_at.date().isoformat())

    def claim(
        self, patient: str, coverage: str, insurer: str, requestor: str, requests: list[str], history: list[str]
    ) -> JSON:
        """The PAS Claim: coded diagnoses, one item per request with the PAS item extensions, its X12
        service type, place of service and code; the prior treatment as supporting information."""
        dates = self.case.dates
        claim: JSON = {
            "resourceType": "Claim",
            "status": "active",
            "type": {"coding": [{"system": self.systems["claim_type"], "code": "professional"}]},
            "use": "preauthorization",
            "patient": self.ref(patient),
            "created": self._created(requested_on(self.case), dates.decision),
            "insurer": self.ref(insurer),
            "provider": self.ref(requestor),
            "priority": self._priority(),
            "insurance": [{"sequence": 1, "focal": True, "coverage": self.ref(coverage)}],
        }
        coded = [(c, text) for text in self.case.diagnoses if (c := self.tables.diagnosis_code(text)) is not None]
        if coded:
            claim["diagnosis"] = [
                {"sequence": n, "diagnosisCodeableConcept": _concept(c, text)} for n, (c, text) in enumerate(coded, 1)
            ]
        if dates.injury is not None:
            claim["accident"] = {"date": dates.injury.isoformat()}
        pas, items = self.pas, []
        if history:
            claim["supportingInfo"] = [_supporting(pas, n, procedure) for n, procedure in enumerate(history, start=1)]
        for n, (item, request, carrier) in enumerate(zip(self.case.items, requests, self.carriers, strict=True), 1):
            line: JSON = {
                "extension": [
                    simple(pas.extensions.request_type, "valueCodeableConcept",
                           {"coding": [pas.coding("request_type", pas.request_type)]}),
                    simple(pas.extensions.certification_type, "valueCodeableConcept",
                           {"coding": [pas.coding("certification_type", pas.certification_type)]}),
                    simple(pas.extensions.requested_service, "valueReference", self.ref(request)),
                ],
                "sequence": n,
                "category": {"coding": [pas.coding("service_type", carrier.service_type)]},
                "productOrService": self._service(item, carrier),
                "locationCodeableConcept": {
                    "coding": [{"system": pas.code_systems.place_of_service, "code": carrier.place}]
                },
            }  # fmt: skip
            if item.quantity is not None:
                line["quantity"] = {"value": item.quantity}
            items.append(line)
        claim["item"] = items
        return claim

    def document_reference(self, patient: str, response: str) -> JSON:
        source = self.case.source
        assert source is not None
        attachments = [self._attachment(source.media_type, source.data)]
        if source.pdf is not None:
            attachments.append(self._attachment("text/plain", source.text.encode("utf-8")))
        return {
            "resourceType": "DocumentReference",
            "status": "current",
            "docStatus": "final",
            "type": {"text": self.t.document_type_text},
            "subject": self.ref(patient),
            "content": [{"attachment": a} for a in attachments],
            "context": {"related": [self.ref(response)]},
        }

    def _attachment(self, content_type: str, data: bytes) -> JSON:
        return {
            "contentType": content_type,
            "data": base64.b64encode(data).decode("ascii"),
            "size": len(data),
            "hash": base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),
            "title": f"IMR letter {self.key}" + (" (text)" if content_type == "text/plain" else ""),
        }

    def provenance(self, targets: list[JSON]) -> JSON:
        provenance: JSON = {
            "resourceType": "Provenance",
            "target": targets,
            "recorded": self.generated_at.isoformat(timespec="seconds"),
            "activity": {"coding": [{"system": self.systems["data_operation"], "code": "CREATE"}]},
            "agent": [
                {
                    "type": {"coding": [{"system": self.systems["provenance_agent_type"], "code": "assembler"}]},
                    "who": {"display": f"imr-adapter {__version__}"},
                }
            ],
        }
        documents = [
            t
            for t, e in zip(targets, self.bundle.entries, strict=True)
            if e["resource"]["resourceType"] == "DocumentReference"
        ]
        if documents:
            provenance["entity"] = [{"role": "source", "what": documents[0]}]
        return provenance


def _supporting(pas: PASTable, sequence: int, reference: str) -> JSON:
    """A PAS Claim ``supportingInfo``: additional information (its report type in PAS documentInformation) that
    ``reference`` holds."""
    report = {
        "url": "reportTypeCode",
        "valueCodeableConcept": {"coding": [pas.coding("report_type", pas.supporting_report_type)]},
    }
    return {
        "extension": [{"url": pas.extensions.document_information, "extension": [report]}],
        "sequence": sequence,
        "category": {"coding": [{"system": pas.code_systems.temp_codes, "code": "additionalInformation"}]},
        "valueReference": {"reference": reference},
    }


#: What an EHR holds about a request: the case Bundle's request side, without any decision.
REQUEST_SIDE = frozenset({"Patient", "Condition", "Procedure", *REQUEST_RESOURCES})


def request_bundle(case: IMRCase, summary: str | None, *, tables: Tables | None = None) -> JSON:
    """The request side of a case as an EHR would hold it: Patient, Conditions, prior Procedures, the
    ServiceRequests, and the clinical summary as a text note (a DocumentReference). No decision, no
    guideline line and no rationale."""
    tables = tables or mappings().tables
    entries = request_side(case_to_bundle(case, tables=tables))
    if summary and summary.strip():
        entries.append(_clinical_note(case, summary, entries, tables))
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _clinical_note(case: IMRCase, summary: str, entries: list[JSON], tables: Tables) -> JSON:
    """The clinical summary as the EHR's text note about the patient: a DocumentReference with the text inline
    (a progress note, US Core's clinical-note category), as a Bundle entry."""
    patient = next(e["fullUrl"] for e in entries if e["resource"]["resourceType"] == "Patient")
    data = summary.strip().encode("utf-8")
    systems = tables.fhir.code_systems
    note = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": systems.loinc, "code": "11506-3", "display": "Progress note"}],
                 "text": "Clinical note (case summary)"},
        "category": [{"coding": [{"system": systems.documentreference_category, "code": "clinical-note",
                                  "display": "Clinical Note"}]}],
        "subject": {"reference": patient},
        "content": [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(data).decode("ascii"),
                                    "size": len(data), "title": "Case summary"}}],
    }  # fmt: skip
    bundle = _Bundle(tables)
    bundle.add(note, "clinical-note", case_key(case))
    return bundle.entries[0]


def request_side(bundle: JSON) -> list[JSON]:
    """The entries of an adapter-built Bundle an EHR holds: Patient, Conditions, Procedures, the requests,
    and what they refer to (the requesting provider)."""
    side = [e for e in bundle["entry"] if e["resource"]["resourceType"] in REQUEST_SIDE]
    return closure(bundle["entry"], side)


def pas_bundle(case: IMRCase, *, tables: Tables | None = None, generated_at: datetime | None = None) -> JSON:
    """A Da Vinci PAS 2.2.1 request Bundle for the case: a collection Bundle with its identifier and
    timestamp, the Claim first, then every resource the Claim refers to (directly or not) and the rest of
    the request side (prior treatment); no decision."""
    tables = tables or mappings().tables
    generated_at = generated_at or datetime.now(UTC)
    full = case_to_bundle(case, tables=tables, generated_at=generated_at)
    claim = next(e for e in full["entry"] if e["resource"]["resourceType"] == "Claim")
    side = request_side(full)
    summary = summary_text(case.source.text, case.layout) if case.source is not None else None
    if summary and summary.strip():  # the clinical text travels with the request: $submit is not decided blind
        note = _clinical_note(case, summary, side, tables)
        side.append(note)
        full = {**full, "entry": [*full["entry"], note]}
        info = claim["resource"].setdefault("supportingInfo", [])
        info.append(_supporting(mappings()[PAS], len(info) + 1, note["fullUrl"]))
    return collection(
        mappings()[PAS].profiles.request_bundle,
        {"system": tables.identifier_system("pas-request"), "value": case_key(case)},
        generated_at.isoformat(timespec="seconds"),
        [claim, *side],
        full["entry"],
    )
