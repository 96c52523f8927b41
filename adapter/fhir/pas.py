"""Da Vinci PAS 2.2.1 in one place: the review actions (X12 306), the profiles, extensions and X12 code
lists (``mappings/pas.yaml``), and a conformance check of request and response Bundles against the rules
of the IG's FSH sources (HL7/davinci-pas at tag 2.2.1, ``input/fsh``) and the US Core profiles they build
on. Each fault names the rule it breaks and the FSH line it comes from.

The check covers what PAS constrains beyond the base R4 resources (which ``adapter.fhir.inbound`` and the
fhir.resources models check): cardinalities, fixed values, the X12 and ICD-10-CM bindings by code system,
and that every reference inside a Bundle resolves inside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache, wraps
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from adapter.errors import ConformanceError
from adapter.fhir.navigate import Index, closure, concept_text, references
from adapter.fhir.navigate import extensions as _ext

JSON = dict[str, Any]


class ReviewAction(StrEnum):
    """X12 306 (HCR01) review actions, as PAS carries them on ``ClaimResponse.item.adjudication``."""

    CERTIFIED = "A1"
    PARTIAL = "A2"
    NOT_CERTIFIED = "A3"
    PENDED = "A4"
    MODIFIED = "A6"

    @property
    def label(self) -> str:
        """What the action means, in words."""
        return _LABELS[self]

    @property
    def display(self) -> str:
        """The X12 display of the code."""
        return _DISPLAYS[self]

    @property
    def adverse(self) -> bool:
        """Not certified or modified: in California only a physician may decide these (Labor Code 4610)."""
        return self in (ReviewAction.NOT_CERTIFIED, ReviewAction.MODIFIED)

    @property
    def certifies(self) -> bool:
        """Whether the action authorises some care (an authorization number and period go with it)."""
        return self in (ReviewAction.CERTIFIED, ReviewAction.PARTIAL, ReviewAction.MODIFIED)

    @property
    def decision_r5(self) -> str:
        """The R5 claim-decision code (http://terminology.hl7.org/CodeSystem/claim-decision)."""
        return _R5[self]

    @property
    def task_status(self) -> str:
        """The status of the EHR Task that reports it: completed, rejected (not certified), on-hold (pended)."""
        return {"A3": "rejected", "A4": "on-hold"}.get(self.value, "completed")

    @property
    def colour(self) -> str:
        """How reports show it (a hex colour both rich and HTML understand)."""
        return _COLOURS[self]


_LABELS = {
    "A1": "certified",
    "A2": "certified in part",
    "A3": "not certified",
    "A4": "pended for review",
    "A6": "modified",
}
_DISPLAYS = {
    "A1": "Certified in total",
    "A2": "Certified - partial",
    "A3": "Not Certified",
    "A4": "Pended",
    "A6": "Modified",
}
_R5 = {"A1": "approved", "A2": "partial", "A3": "denied", "A4": "pending", "A6": "partial"}
_COLOURS = {"A1": "#1b7f3b", "A2": "#1b7f3b", "A3": "#b3261e", "A4": "#285ea8", "A6": "#a86b00"}


# --- the table -------------------------------------------------------------------------------------------


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Code(_Table):
    code: str
    display: str


class Profiles(_Table):
    request_bundle: str
    response_bundle: str
    inquiry_response_bundle: str
    claim: str
    claim_response: str
    inquiry_response: str
    beneficiary: str
    coverage: str
    insurer: str
    requestor: str
    service_request: str
    medication_request: str
    device_request: str


class Extensions(_Table):
    review_action: str
    review_action_code: str
    claim_response_reviewer: str
    requested_service: str
    request_type: str
    certification_type: str
    item_preauth_period: str


class CodeSystems(_Table):
    review_action: str
    request_type: str
    certification_type: str
    service_type: str
    entity_type: str
    relationship: str
    place_of_service: str
    identifier_type: str
    subscriber_relationship: str
    adjudication: str


RequestResource = Literal["ServiceRequest", "MedicationRequest", "DeviceRequest"]
REQUEST_RESOURCES: tuple[str, ...] = ("ServiceRequest", "MedicationRequest", "DeviceRequest")


class Carrier(_Table):
    """How PAS carries one category of request."""

    resource: RequestResource
    service_type: Code
    place: str


class PASTable(_Table):
    profiles: Profiles
    extensions: Extensions
    code_systems: CodeSystems
    request_type: Code
    certification_type: Code
    insurer_type: Code
    requestor_type: Code
    relationship: Code
    authorization_days: int
    default: Carrier
    categories: dict[str, Carrier]

    def carrier(self, category: str) -> Carrier:
        return self.categories.get(category, self.default)

    def coding(self, system: str, code: Code) -> JSON:
        return {"system": getattr(self.code_systems, system), "code": code.code, "display": code.display}


@lru_cache(maxsize=4)
def load_pas(folder: Path | None = None) -> PASTable:
    """``mappings/pas.yaml``, validated (``MappingTableError`` naming file:line when broken)."""
    from adapter.tables import DEFAULT_MAPPINGS, load_table  # the tables' own model reads ReviewAction

    table: PASTable = load_table((folder or DEFAULT_MAPPINGS) / "pas.yaml", PASTable)
    return table


def ordered(request: JSON) -> JSON | None:
    """What a request orders: ServiceRequest.code, MedicationRequest.medicationCodeableConcept or
    DeviceRequest.codeCodeableConcept."""
    concept = request.get("code") or request.get("medicationCodeableConcept") or request.get("codeCodeableConcept")
    return concept if isinstance(concept, dict) else None


def ordered_text(request: JSON) -> str:
    """The words of what a request orders (its text, else the first display)."""
    return concept_text(ordered(request))


def collection(profile: str, identifier: JSON, timestamp: str, start: list[JSON], pool: list[JSON]) -> JSON:
    """A PAS Bundle: a collection declaring ``profile``, with its identifier and timestamp, holding the entries
    ``start`` and every entry of ``pool`` they refer to, directly or not (so each reference resolves inside)."""
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [profile]},
        "identifier": identifier,
        "type": "collection",
        "timestamp": timestamp,
        "entry": [{"fullUrl": e["fullUrl"], "resource": e["resource"]} for e in closure(pool, start)],
    }


def review_action_code(adjudications: list[JSON]) -> str | None:
    """The PAS review action code (A1, A3, ...) carried by an item's adjudications, if any."""
    ext = load_pas().extensions
    for adjudication in adjudications:
        for action in adjudication.get("extension", []):
            if action.get("url") != ext.review_action:
                continue
            for sub in action.get("extension", []):
                codings = sub.get("valueCodeableConcept", {}).get("coding", [])
                if sub.get("url") in (ext.review_action_code, "code") and codings:
                    return str(codings[0].get("code"))
    return None


def review_action(code: str, *, number: str | None = None) -> JSON:
    """An adjudication carrying a PAS reviewAction: the X12 306 code and, for certified care, its number."""
    pas = load_pas()
    coding = {"system": pas.code_systems.review_action, "code": code, "display": ReviewAction(code).display}
    parts: list[JSON] = [{"url": pas.extensions.review_action_code, "valueCodeableConcept": {"coding": [coding]}}]
    if number is not None:
        parts.append({"url": "number", "valueString": number})
    return {
        "extension": [{"url": pas.extensions.review_action, "extension": parts}],
        "category": {"coding": [{"system": pas.code_systems.adjudication, "code": "submitted"}]},
    }


# --- conformance ------------------------------------------------------------------------------------------

#: Code systems of the X12 278 requested-service value set (Terminology.fsh, X12278RequestedServiceType).
SERVICE_SYSTEMS = frozenset(
    {
        "https://codesystem.x12.org/005010/1365",
        "http://www.ama-assn.org/go/cpt",
        "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
        "http://terminology.hl7.org/CodeSystem/icd9cm",
        "http://www.cms.gov/Medicare/Coding/ICD10",
        "http://hl7.org/fhir/sid/ndc",
    }
)
#: X12278DiagnosisCodes (ICD-10-CM and ICD-9-CM; DRG systems left out: no IMR item is a DRG).
DIAGNOSIS_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10-cm", "http://terminology.hl7.org/CodeSystem/icd9cm"})
#: X12278LocationType.
LOCATION_SYSTEMS = frozenset(
    {
        "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set",
        "https://www.nubc.org/CodeSystem/TypeOfBill",
    }
)
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"


@dataclass(frozen=True)
class Fault:
    """One broken rule: where (a FHIRPath-like location), which rule (profile, element, FSH line), and why."""

    location: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message} [{self.rule}]"


def _systems(concept: JSON | None) -> set[str]:
    return {str(c.get("system")) for c in (concept or {}).get("coding", []) if c.get("code")}


@dataclass(frozen=True)
class _BundleProfile:
    """A PAS Bundle profile: its name, the resource that comes first, and the Bundle.fsh line of each rule."""

    name: str
    first: str
    first_rule: str
    lines: dict[str, int]


_REQUEST_BUNDLE = _BundleProfile(
    "PASRequestBundle", "Claim", "PASRequestBundle obeys ClaimFirst (Bundle.fsh:6,94)",
    {"identifier": 7, "type": 9, "timestamp": 10, "fullUrl": 12, "resource": 13, "search": 14, "request": 15,
     "response": 16},
)  # fmt: skip
_RESPONSE_BUNDLE = _BundleProfile(
    "PASResponseBundle", "ClaimResponse", "PASResponseBundle obeys ClaimResponseFirst (Bundle.fsh:49,99)",
    {"identifier": 54, "type": 56, "timestamp": 57, "fullUrl": 59, "resource": 60, "search": 61, "request": 62,
     "response": 63},
)  # fmt: skip
#: Organization.fsh lines of the two Organization profiles: (profile, type binding, active = true).
_ORGANIZATIONS = {"PASInsurer": (1, 7, 10), "PASRequestor": (12, 18, 21)}


class _Checker:
    def __init__(self, bundle: JSON) -> None:
        self.bundle = bundle
        self.index = Index.of_bundle(bundle)
        self.entries = [e for e in bundle.get("entry", []) if isinstance(e, dict)]
        self.faults: list[Fault] = []
        self.pas = load_pas()

    def fault(self, location: str, rule: str, message: str) -> None:
        self.faults.append(Fault(location, rule, message))

    def bundle_rules(self, profile: _BundleProfile) -> JSON | None:
        """The Bundle-level rules; the first resource when it is the one the profile puts first."""
        bundle, name, lines = self.bundle, profile.name, profile.lines
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "collection":
            self.fault(
                "Bundle.type",
                f"{name} type = #collection (Bundle.fsh:{lines['type']})",
                f"a {name} is a collection Bundle, not {bundle.get('type')!r}",
            )
        if not (bundle.get("identifier") or {}).get("value"):
            self.fault(
                "Bundle.identifier",
                f"{name} identifier 1..1 (Bundle.fsh:{lines['identifier']})",
                "the Bundle has no identifier",
            )
        if not bundle.get("timestamp"):
            self.fault(
                "Bundle.timestamp",
                f"{name} timestamp 1..1 (Bundle.fsh:{lines['timestamp']})",
                "the Bundle has no timestamp",
            )
        first = (self.entries[0].get("resource") or {}) if self.entries else {}
        if first.get("resourceType") != profile.first:
            self.fault("Bundle.entry[0]", profile.first_rule, f"the first entry must be the {profile.first}")
        for n, entry in enumerate(self.entries):
            where = f"Bundle.entry[{n}]"
            if not entry.get("fullUrl"):
                self.fault(
                    f"{where}.fullUrl",
                    f"{name} entry.fullUrl 1..1 (Bundle.fsh:{lines['fullUrl']})",
                    "every entry needs a fullUrl",
                )
            for element in ("request", "response", "search"):
                if element in entry:
                    self.fault(
                        f"{where}.{element}",
                        f"{name} entry.{element} 0..0 (Bundle.fsh:{lines[element]}; R4 bdl-3)",
                        f"a collection Bundle's entries carry no {element}",
                    )
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                self.fault(
                    f"{where}.resource",
                    f"{name} entry.resource 1..1 (Bundle.fsh:{lines['resource']})",
                    "every entry needs a resource",
                )
                continue
            for location, ref in references(resource, f"{where}.resource"):
                if self.index.find({"reference": ref}) is None:
                    self.fault(
                        location,
                        "R4 Bundle: references resolve inside the Bundle (bundle.html#references)",
                        f"{ref} is not in the Bundle",
                    )
        return first if first.get("resourceType") == profile.first else None

    def preauthorization(self, resource: JSON, where: str, rule: str) -> None:
        if resource.get("use") != "preauthorization" or resource.get("status") != "active":
            self.fault(where, rule, f"a PAS {resource.get('resourceType')} is an active preauthorization")

    def patient(self, reference: JSON | None, where: str) -> None:
        patient = self.index.find(reference)
        if patient is None or patient.get("resourceType") != "Patient":
            self.fault(where, "PASBeneficiary (Patient.fsh:1)", "the patient must be a Patient in the Bundle")
            return
        names = patient.get("name") or []
        named = any(n.get("family") or n.get("given") or _ext(n, DATA_ABSENT_REASON) for n in names)
        if not named:
            self.fault(
                f"{where}.name",
                "US Core Patient name 1..* and us-core-6 (PASBeneficiary, Patient.fsh:2)",
                "the Patient needs a name, or a data-absent-reason (masked) in its place",
            )
        if not patient.get("identifier"):
            self.fault(
                f"{where}.identifier",
                "US Core Patient identifier 1..* (PASBeneficiary, Patient.fsh:2)",
                "the Patient needs an identifier",
            )
        if not patient.get("gender"):
            self.fault(
                f"{where}.gender",
                "US Core Patient gender 1..1 (PASBeneficiary, Patient.fsh:2)",
                "the Patient needs a gender ('unknown' when the source does not say)",
            )

    def organization(self, reference: JSON | None, where: str, profile: str) -> None:
        line, type_line, active_line = _ORGANIZATIONS[profile]
        org = self.index.find(reference)
        if org is None or org.get("resourceType") != "Organization":
            self.fault(where, f"{profile} (Organization.fsh:{line})", "must be an Organization in the Bundle")
            return
        if org.get("active") is not True:
            self.fault(
                f"{where}.active",
                f"{profile} active = true (Organization.fsh:{active_line})",
                "the Organization must be active",
            )
        if self.pas.code_systems.entity_type not in set().union(*(_systems(t) for t in org.get("type", [{}]))):
            self.fault(
                f"{where}.type",
                f"{profile} type from X12 98 (Organization.fsh:{type_line})",
                "the Organization needs an X12 entity type (98)",
            )

    def coverage(self, reference: JSON | None, where: str) -> None:
        coverage = self.index.find(reference)
        if coverage is None or coverage.get("resourceType") != "Coverage":
            self.fault(
                where,
                "PASClaim insurance.coverage only PASCoverage (Claim.fsh:82)",
                "the insurance must reference a Coverage in the Bundle",
            )
            return
        member = [
            i
            for i in coverage.get("identifier", [])
            if "MB" in {c.get("code") for c in (i.get("type") or {}).get("coding", [])}
        ]
        if len(member) != 1 or not member[0].get("value"):
            self.fault(
                f"{where}.identifier",
                "PASCoverage identifier[memberid] 1..1 (Coverage.fsh:9)",
                "the Coverage needs one member identifier (type MB)",
            )
        if not (coverage.get("relationship") or {}).get("coding"):
            self.fault(
                f"{where}.relationship",
                "US Core Coverage relationship 1..1 (PASCoverage, Coverage.fsh:17)",
                "the Coverage needs the beneficiary's relationship to the subscriber",
            )
        for n, payor in enumerate(coverage.get("payor", [])):
            self.organization(payor, f"{where}.payor[{n}]", "PASInsurer")

    def requested(self, reference: JSON | None, where: str) -> None:
        request = self.index.find(reference)
        rtype = (request or {}).get("resourceType")
        if request is None or rtype not in REQUEST_RESOURCES:
            self.fault(
                where,
                "RequestedService value only Reference(PASServiceRequest | PASMedicationRequest | "
                "PASDeviceRequest) (Claim-update.fsh:198)",
                "the requested service must be in the Bundle",
            )
            return
        line = {"ServiceRequest": 26, "MedicationRequest": 9, "DeviceRequest": 61}[str(rtype)]
        if request.get("intent") != "order":
            self.fault(f"{where}.intent", f"PAS{rtype} intent = #order (Request.fsh:{line})", "intent must be order")
        if rtype == "MedicationRequest":
            if request.get("status") != "active":
                self.fault(
                    f"{where}.status", "PASMedicationRequest status = #active (Request.fsh:11)", "status must be active"
                )
            if not request.get("requester"):
                self.fault(
                    f"{where}.requester",
                    "US Core MedicationRequest requester 1..1 (Request.fsh:2)",
                    "a MedicationRequest needs its requester",
                )
            return
        concept = request.get("code") if rtype == "ServiceRequest" else request.get("codeCodeableConcept")
        if not _systems(concept) & SERVICE_SYSTEMS:
            line = 28 if rtype == "ServiceRequest" else 64
            self.fault(
                f"{where}.code",
                f"PAS{rtype} code from X12278RequestedServiceType (Request.fsh:{line})",
                "the code needs a coding from X12 1365, CPT, HCPCS, ICD or NDC",
            )

    def claim(self, claim: JSON) -> None:
        where = "Claim"
        self.preauthorization(claim, where, "PASClaimBase use = #preauthorization, status = #active (Claim.fsh:22,27)")
        if not 1 <= len(claim.get("identifier", [])) <= 2:
            self.fault(
                f"{where}.identifier", "PASClaim identifier 1..2 (Claim.fsh:183)", "the Claim needs an identifier"
            )
        self.patient(claim.get("patient"), f"{where}.patient")
        self.organization(claim.get("insurer"), f"{where}.insurer", "PASInsurer")
        if claim.get("provider"):
            self.organization(claim.get("provider"), f"{where}.provider", "PASRequestor")
        for n, diagnosis in enumerate(claim.get("diagnosis", [])):
            concept = diagnosis.get("diagnosisCodeableConcept")
            if concept is None or not _systems(concept) & DIAGNOSIS_SYSTEMS:
                self.fault(
                    f"{where}.diagnosis[{n}]",
                    "PASClaimBase diagnosis[x] only CodeableConcept from X12278DiagnosisCodes (Claim.fsh:74-75)",
                    "a diagnosis is an ICD-10-CM CodeableConcept, not a reference or text",
                )
        for n, insurance in enumerate(claim.get("insurance", [])):
            self.coverage(insurance.get("coverage"), f"{where}.insurance[{n}].coverage")
        items = claim.get("item", [])
        if not items:
            self.fault(f"{where}.item", "PASClaim item 1..* (Claim.fsh:187)", "the Claim has no item")
        ext, systems = self.pas.extensions, self.pas.code_systems
        sequences: set[Any] = set()
        for n, item in enumerate(items):
            at = f"{where}.item[{n}]"
            if item.get("sequence") in sequences:  # answers, review Tasks and decisions find an item by it
                self.fault(
                    f"{at}.sequence",
                    "Claim.item.sequence uniquely identifies an item (claim-definitions.html#Claim.item.sequence)",
                    f"item sequence {item.get('sequence')} is used twice",
                )
            sequences.add(item.get("sequence"))
            for url, name, line in (
                (ext.request_type, "requestType", 194),
                (ext.certification_type, "certificationType", 195),
            ):
                if len(_ext(item, url)) != 1:
                    self.fault(
                        f"{at}.extension",
                        f"PASClaim item.extension[{name}] 1..1 (Claim.fsh:{line})",
                        f"each item carries one {name} extension",
                    )
            if systems.service_type not in _systems(item.get("category")):
                self.fault(
                    f"{at}.category",
                    "PASClaim item.category 1..1 from X12 1365 (Claim.fsh:205)",
                    "each item needs an X12 service type category",
                )
            if not _systems(item.get("productOrService")) & SERVICE_SYSTEMS:
                self.fault(
                    f"{at}.productOrService",
                    "PASClaimBase item.productOrService from X12278RequestedServiceType (Claim.fsh:115)",
                    "productOrService needs a coding from X12 1365, CPT, HCPCS, ICD or NDC, not text only",
                )
            if not _systems(item.get("locationCodeableConcept")) & LOCATION_SYSTEMS:
                self.fault(
                    f"{at}.location",
                    "PASClaim item.location[x] 1..1 CodeableConcept (Claim.fsh:125,208)",
                    "each item needs a place of service",
                )
            for request in _ext(item, ext.requested_service):
                self.requested(request.get("valueReference"), f"{at}.extension(requestedService)")

    def claim_response(self, response: JSON, claim: JSON | None) -> None:
        where = "ClaimResponse"
        self.preauthorization(
            response, where, "PASClaimResponseBase status = #active, use = #preauthorization (ClaimResponse.fsh:13-14)"
        )
        if not response.get("request"):
            self.fault(
                f"{where}.request",
                "PASClaimResponseBase request 1..1 (ClaimResponse.fsh:22)",
                "the ClaimResponse must point at the Claim it answers",
            )
        self.patient(response.get("patient"), f"{where}.patient")
        self.organization(response.get("insurer"), f"{where}.insurer", "PASInsurer")
        if not response.get("requestor"):
            self.fault(
                f"{where}.requestor",
                "PASClaimResponseBase requestor MS (ClaimResponse.fsh:20)",
                "the ClaimResponse names the requestor it answers",
            )
        sequences = {item.get("sequence") for item in (claim or {}).get("item", [])}
        certified = False
        for n, item in enumerate(response.get("item", [])):
            at = f"{where}.item[{n}]"
            if claim is not None and item.get("itemSequence") not in sequences:
                self.fault(
                    f"{at}.itemSequence",
                    "PASClaimResponseBase item.itemSequence echoes Claim.item.sequence (ClaimResponse.fsh:50-52)",
                    f"item sequence {item.get('itemSequence')} is not on the Claim",
                )
            code = review_action_code(item.get("adjudication", []))
            if code not in set(ReviewAction):
                self.fault(
                    f"{at}.adjudication",
                    "PASClaimResponseBase item.adjudication.extension[reviewAction] (ClaimResponse.fsh:54-56)",
                    "each item carries a reviewAction code from X12 306",
                )
                continue
            if ReviewAction(code).certifies:
                certified = True
                numbered = [
                    s
                    for a in item.get("adjudication", [])
                    for e in _ext(a, self.pas.extensions.review_action)
                    for s in _ext(e, "number")
                    if s.get("valueString")
                ]
                if not numbered:
                    self.fault(
                        f"{at}.adjudication",
                        "ReviewAction extension[number] (ClaimResponse.fsh:132-135)",
                        "certified care carries its item review number",
                    )
        if certified and not (response.get("preAuthRef") and response.get("preAuthPeriod")):
            self.fault(
                f"{where}.preAuthRef",
                "PASClaimResponseBase preAuthRef, preAuthPeriod MS (ClaimResponse.fsh:27-28)",
                "a response that certifies care carries the authorization number and period",
            )


def _shaped(check: Callable[..., list[Fault]]) -> Callable[..., list[Fault]]:
    """The checks read FHIR JSON as the R4 models shape it; anything else is one fault, never a crash."""

    @wraps(check)
    def guarded(*args: Any, **kwargs: Any) -> list[Fault]:
        try:
            return check(*args, **kwargs)
        except (AttributeError, TypeError, KeyError, IndexError) as exc:
            return [Fault("Bundle", "FHIR R4 JSON (json.html)", f"not shaped as FHIR R4 JSON ({type(exc).__name__})")]

    return guarded


@_shaped
def request_faults(bundle: JSON) -> list[Fault]:
    """What keeps ``bundle`` from being a PAS 2.2.1 request Bundle (empty: none found)."""
    checker = _Checker(bundle)
    claim = checker.bundle_rules(_REQUEST_BUNDLE)
    if claim is not None:
        checker.claim(claim)
    return checker.faults


def check_request(bundle: JSON) -> None:
    """Refuse (``ConformanceError``, every fault listed) a Bundle that is not a PAS request Bundle."""
    faults = request_faults(bundle)
    if faults:
        raise ConformanceError(
            f"not a Da Vinci PAS 2.2.1 request Bundle: {faults[0].message} [{faults[0].rule}]"
            + (f" (and {len(faults) - 1} more)" if len(faults) > 1 else ""),
            faults=[(f.location, f.rule, f.message) for f in faults],
        )


@_shaped
def response_faults(bundle: JSON, claim: JSON | None = None) -> list[Fault]:
    """What keeps ``bundle`` from being a PAS 2.2.1 response Bundle; with the ``claim`` it answers, also
    whether every item echoes that Claim's item sequence."""
    checker = _Checker(bundle)
    response = checker.bundle_rules(_RESPONSE_BUNDLE)
    if response is not None:
        checker.claim_response(response, claim)
    return checker.faults
