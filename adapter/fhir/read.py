"""FHIR -> IMRCase: the way back, from a Bundle the adapter wrote or from the same resources read off a
server (references as ``urn:uuid:...`` or ``Type/id``, in any entry order; R4 or R5)."""

from __future__ import annotations

import base64

from pydantic import ValidationError

from adapter.errors import MappingError
from adapter.fhir.extensions import (
    age_of,
    body_sites_of,
    by_id,
    case_dates_of,
    citation_of,
    guidelines_of,
    modified_request_of,
    parse_warnings_of,
    part,
    values,
)
from adapter.fhir.inbound import check_inbound, check_resource
from adapter.fhir.navigate import Index
from adapter.fhir.navigate import extensions as _ext
from adapter.fhir.pas import PAS, ordered, review_action_code
from adapter.fhir.r5 import is_r5, r5_to_r4
from adapter.model import (
    Decision,
    DisputedItem,
    GuidelineBasis,
    IMRCase,
    Layout,
    LetterSource,
    Patient,
    Priority,
    Reviewer,
    TreatmentFact,
)
from adapter.tables import Tables, mappings
from adapter.types import JSON


class _Resources(Index):
    """The resources of one case; a reference that does not resolve is a ``MappingError``."""

    def resolve(self, reference: JSON | None, where: str) -> JSON:
        if not (reference or {}).get("reference"):
            raise MappingError("missing reference", location=where)
        resource = self.find(reference)
        if resource is None:
            raise MappingError(f"reference {(reference or {})['reference']} is not in the bundle", location=where)
        return resource


def _resources(data: JSON | list[JSON]) -> _Resources:
    if isinstance(data, list):
        return _Resources((None, r) for r in data)
    if data.get("resourceType") != "Bundle":
        raise MappingError("expected a Bundle or a list of resources", location="resourceType")
    return _Resources((e.get("fullUrl"), e["resource"]) for e in data.get("entry", []) if "resource" in e)


def bundle_to_case(data: JSON | list[JSON], *, tables: Tables | None = None) -> IMRCase:
    """Read one IMR case back from a Bundle (transaction, searchset, collection) or a list of resources."""
    if isinstance(data, list):
        for n, resource in enumerate(data):
            check_resource(resource, f"[{n}]")
    else:
        data = check_inbound(data, version="R5" if is_r5(data) else "R4")
    if isinstance(data, dict) and is_r5(data):
        data = r5_to_r4(data)
    try:
        return _Reader(_resources(data), tables or mappings().tables).case()
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            error = exc.errors()[0]
            raise MappingError(
                f"not a valid case: {error['msg']}", location=".".join(str(p) for p in error["loc"])
            ) from exc
        if isinstance(exc, MappingError):
            raise
        raise MappingError(f"unexpected FHIR content: {type(exc).__name__}: {exc}") from exc


class _Reader:
    def __init__(self, resources: _Resources, tables: Tables) -> None:
        self.r = resources
        self.tables = tables
        self.ext = tables.fhir.extensions

    def case(self) -> IMRCase:
        responses = self.r.of_type("ClaimResponse")
        if len(responses) != 1:
            raise MappingError(f"expected one ClaimResponse, found {len(responses)}", location="ClaimResponse")
        response = responses[0]
        layout = values(response, self.ext.letter_layout)
        if not layout:
            raise MappingError("no letter layout: not an IMR case written by this adapter", location="ClaimResponse")
        claim = self.r.resolve(response.get("request"), "ClaimResponse.request")
        patient = self.r.resolve(response.get("patient"), "ClaimResponse.patient")
        return IMRCase(
            case_number=response.get("preAuthRef"),
            layout=Layout(layout[0]),
            dates=case_dates_of(response, self.ext.case_dates),
            priority=self.priority(claim),
            patient=self.patient(patient),
            reviewer=self.reviewer(response),
            diagnoses=self.diagnoses(claim),
            treatment_history=self.treatment_history(claim),
            items=self.items(claim, response),
            warnings=parse_warnings_of(response, self.ext.parse_warning),
            source=self.source(response),
        )

    def priority(self, claim: JSON) -> Priority | None:
        codes = [c.get("code") for c in claim.get("priority", {}).get("coding", [])]
        for priority in Priority:
            if getattr(self.tables.fhir.priorities, priority.value) in codes:
                return priority
        return None

    def patient(self, patient: JSON) -> Patient:
        gender = patient.get("gender")
        return Patient(age=age_of(patient, self.ext.patient_age), gender=None if gender == "unknown" else gender)

    def _numbered(self, rtype: str, kind: str, claim: JSON) -> list[JSON]:
        """The adapter's resources of one kind about the Claim's patient, in the order of their identifiers."""
        system = self.tables.identifier_system(kind)
        patient = self.r.resolve(claim.get("patient"), "Claim.patient")
        found: list[tuple[int, JSON]] = []
        for resource in self.r.of_type(rtype):
            ours = [i["value"] for i in resource.get("identifier", []) if i.get("system") == system]
            subject = self.r.by_ref.get(resource.get("subject", {}).get("reference", ""))
            if ours and subject is patient:
                found.append((int(ours[0].rsplit("/", 1)[-1]), resource))
        return [r for _, r in sorted(found, key=lambda f: f[0])]

    def diagnoses(self, claim: JSON) -> list[str]:
        """Every diagnosis of the case (the Conditions: the Claim carries only the ICD-10-CM coded ones)."""
        return [str(c["code"]["text"]) for c in self._numbered("Condition", "condition", claim)]

    def reviewer(self, response: JSON) -> Reviewer:
        pointer = values(response, self.ext.reviewer)
        if not pointer:
            return Reviewer()
        role = self.r.resolve(pointer[0], "ClaimResponse.extension(reviewer)")
        practitioner = self.r.resolve(role.get("practitioner"), "PractitionerRole.practitioner")
        return Reviewer(
            licensure=[q["issuer"]["display"] for q in practitioner.get("qualification", [])],
            specialty=[s["text"] for s in role.get("specialty", [])],
        )

    def treatment_history(self, claim: JSON) -> list[TreatmentFact]:
        return [
            TreatmentFact(
                therapy=procedure["code"]["text"],
                count=by_id(procedure, self.ext.session_count, "valueInteger"),
                text=procedure["note"][0]["text"],
            )
            for procedure in self._numbered("Procedure", "procedure", claim)
        ]

    def items(self, claim: JSON, response: JSON) -> list[DisputedItem]:
        lines = {line["itemSequence"]: line for line in response.get("item", [])}
        notes = {note["number"]: note["text"] for note in response.get("processNote", [])}
        items = []
        for line in sorted(claim.get("item", []), key=lambda i: i["sequence"]):
            n = line["sequence"]
            where = f"Claim.item[{n}]"
            requested = values(line, mappings()[PAS].extensions.requested_service)
            request = self.r.resolve(requested[0] if requested else None, where)
            decided = lines.get(n)
            if decided is None:
                raise MappingError(f"no ClaimResponse.item for Claim item {n}", location=where)
            items.append(self.item(request, line, decided, notes, f"ClaimResponse.item[{n}]"))
        return items

    def decision(self, line: JSON, where: str) -> Decision:
        actions = self.tables.fhir.review_actions
        value = review_action_code(line.get("adjudication", []))
        if value is None:
            raise MappingError("no review action", location=where)
        if value == actions.overturned:
            return Decision.OVERTURNED
        if value in (actions.upheld, actions.modified):
            return Decision.UPHELD
        raise MappingError(f"review action {value} is not an IMR decision", location=where)

    def item(self, request: JSON, claimed: JSON, line: JSON, notes: dict[int, str], where: str) -> DisputedItem:
        guidelines = guidelines_of(line, self.ext.guideline)
        reviewer, claims = guidelines.get("reviewer", {}), guidelines.get("claims-administrator", {})
        modified = modified_request_of(line, self.ext.modified_request)
        statement = modified.get("statement")
        what = ordered(request) or {}
        dosage = (request.get("dosageInstruction") or [{}])[0]
        timing = (request.get("occurrenceTiming") or dosage.get("timing") or {}).get("repeat", {})
        quantity = claimed.get("quantity", {}).get("value")
        weeks = timing.get("boundsDuration", {}).get("value")
        sites = request.get("bodySite") or body_sites_of(request, self.ext.body_site)
        note = [notes[n] for n in line.get("noteNumber", []) if n in notes]
        return DisputedItem(
            request=statement or what["text"],
            disputed=what["text"] if statement else None,
            decision=self.decision(line, where),
            guideline_basis=GuidelineBasis(values(line, self.ext.guideline_basis)[0]),
            maximus_guideline=part(reviewer, "text", "valueString"),
            citations=[citation_of(c) for c in _ext(reviewer, "citation")],
            claims_administrator_guideline=part(claims, "text", "valueString"),
            claims_administrator_citations=[citation_of(c) for c in _ext(claims, "citation")],
            rationale=note[0] if note else None,
            original_request=modified.get("original"),
            authorized=modified.get("authorized"),
            quantity=int(quantity) if quantity is not None else None,
            frequency_per_week=timing.get("frequency"),
            duration_weeks=int(weeks) if weeks is not None else None,
            body_site=sites[0]["text"] if sites else None,
        )

    def source(self, response: JSON) -> LetterSource | None:
        for document in self.r.of_type("DocumentReference"):
            related = document.get("context", {}).get("related", [])
            if related and not any(self.r.by_ref.get(r.get("reference", "")) is response for r in related):
                continue
            attachments = [c["attachment"] for c in document.get("content", [])]
            if not attachments:
                continue
            first = attachments[0]
            data = base64.b64decode(first["data"])
            if first["contentType"] == "application/pdf":
                texts = [a for a in attachments[1:] if a["contentType"] == "text/plain"]
                text = base64.b64decode(texts[0]["data"]).decode("utf-8") if texts else ""
                return LetterSource(media_type="application/pdf", text=text, pdf=data)
            return LetterSource(media_type=first["contentType"], text=data.decode("utf-8"))
        return None
