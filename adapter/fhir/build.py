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
from typing import Any
from urllib.parse import quote

from adapter import __version__
from adapter.errors import MappingError
from adapter.model import Decision, DisputedItem, GuidelineCitation, IMRCase
from adapter.tables import Coding, Tables, load_tables

JSON = dict[str, Any]

#: Sub-extension names of the case-dates extension, per CaseDates field.
DATE_URLS: dict[str, str] = {
    "assigned": "assigned",
    "injury": "injury",
    "decision": "decision",
    "ur_denial": "urDenial",
    "application_received": "applicationReceived",
}

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


def _citation(citation: GuidelineCitation) -> JSON:
    parts: list[JSON] = [{"url": "mtus", "valueBoolean": citation.mtus}]
    if citation.title is not None:
        parts.append({"url": "title", "valueString": citation.title})
    if citation.edition_year is not None:
        parts.append({"url": "edition", "valueInteger": citation.edition_year})
    parts += [{"url": "section", "valueString": s} for s in citation.sections]
    parts += [{"url": "page", "valueInteger": p} for p in citation.pages]
    return {"url": "citation", "extension": parts}


class _Bundle:
    """Accumulates entries; each resource gets its identifier, fullUrl and conditional request."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.entries: list[JSON] = []

    def add(self, resource: JSON, kind: str, value: str) -> str:
        system = self.tables.identifier_system(kind)
        rtype = resource.pop("resourceType")
        identifiers = [{"system": system, "value": value}, *resource.pop("identifier", [])]
        resource = {"resourceType": rtype, "identifier": identifiers, **resource}
        return self._entry(resource, f"{system}|{value}", f"identifier={quote(system, safe=':/')}|{quote(value)}")

    def add_tagged(self, resource: JSON, system: str, code: str) -> str:
        """For resources without an identifier element (Provenance): a meta.tag does the same job."""
        rtype = resource.pop("resourceType")
        resource = {"resourceType": rtype, "meta": {"tag": [{"system": system, "code": code}]}, **resource}
        return self._entry(resource, f"{system}|{code}", f"_tag={quote(system, safe=':/')}|{quote(code)}")

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
    return _Builder(case, tables or load_tables(), generated_at or datetime.now(UTC)).build()


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
            {"resourceType": "Organization", "name": self.t.claims_administrator_name},
            "organization",
            f"{self.key}/claims-administrator",
        )
        patient = bundle.add(self.patient(), "patient", self.key)
        coverage = bundle.add(self.coverage(patient, claims_admin), "coverage", self.key)
        role = self.reviewer(imr_org)
        conditions = [
            bundle.add(self.condition(text, patient), "condition", f"{self.key}/{n}")
            for n, text in enumerate(case.diagnoses, start=1)
        ]
        for n, fact in enumerate(case.treatment_history, start=1):
            procedure: JSON = {
                "resourceType": "Procedure",
                "extension": [{"url": self.ext.session_count, "valueInteger": fact.count}],
                "status": "completed",
                "code": {"text": fact.therapy},
                "subject": self.ref(patient),
                "note": [{"text": fact.text}],
            }
            bundle.add(procedure, "procedure", f"{self.key}/{n}")
        requests = [
            bundle.add(self.service_request(item, patient, conditions), "service-request", f"{self.key}/{n}")
            for n, item in enumerate(case.items, start=1)
        ]
        claim = bundle.add(self.claim(patient, coverage, claims_admin, conditions, requests), "claim", self.key)
        response = bundle.add(self.claim_response(patient, imr_org, claim, role), "claim-response", self.key)
        if case.source is not None:
            bundle.add(self.document_reference(patient, response), "document-reference", self.key)
        targets = [self.ref(e["fullUrl"]) for e in bundle.entries]
        # A tag code must be a FHIR code (no stray spaces): the key's UUID always is.
        tag = str(uuid.uuid5(UUID_NAMESPACE, f"provenance|{self.key}"))
        bundle.add_tagged(self.provenance(targets), self.t.provenance_tag_system, tag)
        return {"resourceType": "Bundle", "type": "transaction", "entry": bundle.entries}

    # --- resources ---------------------------------------------------------------------------------

    def patient(self) -> JSON:
        patient: JSON = {"resourceType": "Patient"}
        if self.case.patient.age is not None:
            age = {"value": self.case.patient.age, "unit": "a", "system": self.systems["ucum"], "code": "a"}
            patient["extension"] = [{"url": self.ext.patient_age, "valueAge": age}]
        if self.case.patient.gender is not None:
            patient["gender"] = self.case.patient.gender.value
        return patient

    def coverage(self, patient: str, payor: str) -> JSON:
        coverage: JSON = {
            "resourceType": "Coverage",
            "status": "active",
            "type": {
                "coding": [{"system": self.systems["act_code"], "code": "WCBPOL"}],
                "text": "workers' compensation",
            },
            "beneficiary": self.ref(patient),
            "payor": [self.ref(payor)],
        }
        if self.case.case_number:
            coverage["identifier"] = [{"system": self.t.case_number_system, "value": self.case.case_number}]
        return coverage

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
            "code": _concept(self.tables.diagnosis_code(text), text),
            "subject": self.ref(patient),
        }
        if self.case.dates.injury is not None:
            condition["onsetDateTime"] = self.case.dates.injury.isoformat()
        return condition

    def service_request(self, item: DisputedItem, patient: str, conditions: list[str]) -> JSON:
        request: JSON = {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": _concept(self.tables.service_code(item.request), item.request),
            "subject": self.ref(patient),
        }
        if item.quantity is not None:
            request["quantityQuantity"] = {"value": item.quantity}
        repeat: JSON = {}
        if item.frequency_per_week is not None:
            repeat.update(frequency=item.frequency_per_week, period=1, periodUnit="wk")
        if item.duration_weeks is not None:
            ucum = self.systems["ucum"]
            repeat["boundsDuration"] = {"value": item.duration_weeks, "unit": "wk", "system": ucum, "code": "wk"}
        if repeat:
            request["occurrenceTiming"] = {"repeat": repeat}
        if item.body_site is not None:
            request["bodySite"] = [_concept(self.tables.body_site_code(item.body_site), item.body_site)]
        if conditions:
            request["reasonReference"] = [self.ref(c) for c in conditions]
        return request

    def _priority(self) -> JSON:
        if self.case.priority is None:
            return {"extension": [{"url": self.ext.data_absent_reason, "valueCode": "unknown"}]}
        code = getattr(self.t.priorities, self.case.priority.value)
        return {"coding": [{"system": self.systems["process_priority"], "code": code}]}

    def _created(self, *order: date | None) -> str:
        return next((d.isoformat() for d in order if d is not None), self.generated_at.date().isoformat())

    def claim(self, patient: str, coverage: str, claims_admin: str, conditions: list[str], requests: list[str]) -> JSON:
        dates = self.case.dates
        claim: JSON = {
            "resourceType": "Claim",
            "status": "active",
            "type": {"coding": [{"system": self.systems["claim_type"], "code": "professional"}]},
            "use": "preauthorization",
            "patient": self.ref(patient),
            "created": self._created(dates.application_received, dates.ur_denial, dates.assigned, dates.decision),
            "insurer": self.ref(claims_admin),
            "provider": {"display": self.t.requesting_provider_display},
            "priority": self._priority(),
            "insurance": [{"sequence": 1, "focal": True, "coverage": self.ref(coverage)}],
        }
        if conditions:
            claim["diagnosis"] = [
                {"sequence": n, "diagnosisReference": self.ref(c)} for n, c in enumerate(conditions, start=1)
            ]
        if dates.injury is not None:
            claim["accident"] = {"date": dates.injury.isoformat()}
        items = []
        for n, (item, request) in enumerate(zip(self.case.items, requests, strict=True), start=1):
            line: JSON = {
                "extension": [{"url": self.ext.requested_service, "valueReference": self.ref(request)}],
                "sequence": n,
                "productOrService": _concept(self.tables.service_code(item.request), item.request),
            }
            if item.quantity is not None:
                line["quantity"] = {"value": item.quantity}
            items.append(line)
        claim["item"] = items
        return claim

    def _review_action(self, code: str) -> JSON:
        return {
            "category": {"coding": [{"system": self.systems["adjudication"], "code": "submitted"}]},
            "extension": [
                {
                    "url": self.ext.review_action,
                    "extension": [
                        {
                            "url": self.ext.review_action_code,
                            "valueCodeableConcept": {
                                "coding": [{"system": self.systems["review_action"], "code": code}]
                            },
                        }
                    ],
                }
            ],
        }

    def _guideline(self, source: str, text: str | None, cited: list[GuidelineCitation]) -> JSON | None:
        if text is None and not cited:
            return None
        parts: list[JSON] = [{"url": "source", "valueCode": source}]
        if text is not None:
            parts.append({"url": "text", "valueString": text})
        parts += [_citation(c) for c in cited]
        return {"url": self.ext.guideline, "extension": parts}

    def _action(self, item: DisputedItem) -> str:
        if item.decision is Decision.OVERTURNED:
            return self.t.review_actions.overturned
        return self.t.review_actions.modified if item.original_request else self.t.review_actions.upheld

    def claim_response(self, patient: str, imr_org: str, claim: str, role: str) -> JSON:
        case, ext = self.case, self.ext
        extensions: list[JSON] = [
            {"url": ext.letter_layout, "valueCode": case.layout.value},
            {"url": ext.reviewer, "valueReference": self.ref(role)},
        ]
        pas_reviewer: list[JSON] = [{"url": "wasHumanReviewedFlag", "valueBoolean": True}]
        if case.reviewer.specialty:
            pas_reviewer.append(
                {"url": "reviewerSpecialty", "valueCodeableConcept": {"text": case.reviewer.specialty[0]}}
            )
        extensions.append({"url": ext.claim_response_reviewer, "extension": pas_reviewer})
        dates = [{"url": DATE_URLS[k], "valueDate": v.isoformat()} for k, v in case.dates if v is not None]
        if dates:
            extensions.append({"url": ext.case_dates, "extension": dates})
        extensions += [
            {
                "url": ext.parse_warning,
                "extension": [{"url": "field", "valueString": w.field}, {"url": "message", "valueString": w.message}],
            }
            for w in case.warnings
        ]

        items, added, notes = [], [], []
        for n, item in enumerate(case.items, start=1):
            line: JSON = {"itemSequence": n}
            item_ext: list[JSON] = [{"url": ext.guideline_basis, "valueCode": item.guideline_basis.value}]
            for source, text, cited in (
                ("reviewer", item.maximus_guideline, item.citations),
                ("claims-administrator", item.claims_administrator_guideline, item.claims_administrator_citations),
            ):
                guideline = self._guideline(source, text, cited)
                if guideline is not None:
                    item_ext.append(guideline)
            modified = [
                {"url": k, "valueString": v}
                for k, v in (("original", item.original_request), ("authorized", item.authorized))
                if v is not None
            ]
            if modified:
                item_ext.append({"url": ext.modified_request, "extension": modified})
            line["extension"] = item_ext
            if item.rationale is not None:
                notes.append({"number": n, "type": "display", "text": item.rationale})
                line["noteNumber"] = [n]
            action = self._action(item)
            line["adjudication"] = [self._review_action(action)]
            items.append(line)
            if action == self.t.review_actions.modified and item.authorized is not None:
                added.append(
                    {
                        "itemSequence": [n],
                        "productOrService": {"text": item.authorized},
                        "adjudication": [self._review_action(self.t.review_actions.overturned)],
                    }
                )

        upheld = sum(1 for i in case.items if i.decision is Decision.UPHELD)
        response: JSON = {
            "resourceType": "ClaimResponse",
            "extension": extensions,
            "status": "active",
            "type": {"coding": [{"system": self.systems["claim_type"], "code": "professional"}]},
            "use": "preauthorization",
            "patient": self.ref(patient),
            "created": self._created(case.dates.decision, case.dates.assigned, case.dates.application_received),
            "insurer": self.ref(imr_org),
            "request": self.ref(claim),
            "outcome": "complete",
            "disposition": f"IMR Final Determination: {upheld} upheld, {len(case.items) - upheld} overturned",
            "item": items,
        }
        if case.case_number:
            response["identifier"] = [{"system": self.t.case_number_system, "value": case.case_number}]
            response["preAuthRef"] = case.case_number
        if added:
            response["addItem"] = added
        if notes:
            response["processNote"] = notes
        return response

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


#: What an EHR holds about a request: the case Bundle's request side, without any decision.
REQUEST_SIDE = frozenset({"Patient", "Condition", "Procedure", "ServiceRequest"})


def request_bundle(case: IMRCase, summary: str | None, *, tables: Tables | None = None) -> JSON:
    """The request side of a case as an EHR would hold it: Patient, Conditions, prior Procedures, the
    ServiceRequests, and the clinical summary as a text note (a DocumentReference). No decision, no
    guideline line and no rationale."""
    tables = tables or load_tables()
    entries = request_side(case_to_bundle(case, tables=tables))
    patient = next(e["fullUrl"] for e in entries if e["resource"]["resourceType"] == "Patient")
    bundle = _Bundle(tables)
    bundle.entries = entries
    if summary and summary.strip():
        data = summary.strip().encode("utf-8")
        note = {
            "resourceType": "DocumentReference",
            "status": "current",
            "type": {"text": "Clinical note (case summary)"},
            "subject": {"reference": patient},
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain",
                        "data": base64.b64encode(data).decode("ascii"),
                        "size": len(data),
                        "title": "Case summary",
                    }
                }
            ],
        }
        bundle.add(note, "clinical-note", case_key(case))
    return {"resourceType": "Bundle", "type": "transaction", "entry": bundle.entries}


def request_side(bundle: JSON) -> list[JSON]:
    """The entries of an adapter-built Bundle an EHR holds: Patient, Conditions, Procedures, ServiceRequests."""
    return [e for e in bundle["entry"] if e["resource"]["resourceType"] in REQUEST_SIDE]


def pas_bundle(case: IMRCase, *, tables: Tables | None = None) -> JSON:
    """A Da Vinci PAS request Bundle for the case: the Claim first, then its request side."""
    full = case_to_bundle(case, tables=tables)
    claim = next(e for e in full["entry"] if e["resource"]["resourceType"] == "Claim")
    return {"resourceType": "Bundle", "type": "collection", "entry": [claim, *request_side(full)]}
