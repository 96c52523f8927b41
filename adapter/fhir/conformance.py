"""Da Vinci PAS 2.2.1 conformance, rule by rule: request, inquiry and response Bundles checked against the
IG's FSH sources (HL7/davinci-pas at tag 2.2.1, ``input/fsh``; the files the rules cite are copied in
``fixtures/pas-fsh/``), the US Core 7.0.0 parents they name and the SHALLs of ``specification.md``.

Each ``Rule`` names its profile, the element and constraint, and the FSH file and line it comes from (a
test reads that line and finds the rule's words there). A ``Fault`` is one broken rule at one place
(``Bundle.entry[2].resource.status``). The check covers what PAS adds to the base R4 resources (which
``adapter.fhir.inbound`` and the fhir.resources models check): cardinalities, fixed values, required
bindings (by code system, and by code where the value set lists its codes), reference targets and that
every resource of a request is reached from its Claim. The PAS vocabulary itself is ``adapter.fhir.pas``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import wraps
from typing import Any

from adapter.actions import ReviewAction
from adapter.errors import ConformanceError
from adapter.fhir.navigate import Index, path_to, references
from adapter.fhir.navigate import extensions as _ext
from adapter.fhir.pas import (
    CLAIM_TYPES,
    DIAGNOSIS_TYPES,
    OUTCOMES,
    PAS,
    REQUEST_RESOURCES,
    review_action_code,
)
from adapter.npi import NPI_SYSTEM
from adapter.tables import mappings
from adapter.types import JSON


@dataclass(frozen=True)
class Rule:
    """One rule: the profile, the element and its constraint, and where the IG states it (``file:line`` of
    ``input/fsh``, or ``specification.md#spec-N``); ``words`` are on that line (checked by the tests)."""

    profile: str
    element: str
    source: str
    words: str

    def __str__(self) -> str:
        return f"{self.profile} {self.element} ({self.source})"


def _bundle_rules(profile: str, lines: dict[str, int], slice_words: str, only_words: str) -> dict[str, Rule]:
    words = {
        "first": "* obeys ClaimFirst" if "Response" not in profile else "* obeys ClaimResponseFirst",
        "identifier": "* identifier 1..1 MS", "type": "* type = #collection", "timestamp": "* timestamp 1..1 MS",
        "entry": "* entry 1..* MS", "fullUrl": "* entry.fullUrl 1..1 MS", "resource": "* entry.resource 1..1 MS",
        "search": "* entry.search 0..0", "request": "* entry.request 0..0", "response": "* entry.response 0..0",
        "slice": slice_words, "only": only_words,
    }  # fmt: skip
    elements = {
        "first": f"obeys {words['first'].split()[-1]}", "identifier": "identifier 1..1", "type": "type = #collection",
        "timestamp": "timestamp 1..1", "entry": "entry 1..*", "fullUrl": "entry.fullUrl 1..1",
        "resource": "entry.resource 1..1", "search": "entry.search 0..0", "request": "entry.request 0..0",
        "response": "entry.response 0..0", "slice": slice_words.removeprefix("* "),
        "only": only_words.removeprefix("* "),
    }  # fmt: skip
    # entry[...].resource only <profile> is each resource's own rules (Claim, ClaimResponse), cited one by one
    return {k: Rule(profile, elements[k], f"Bundle.fsh:{line}", words[k]) for k, line in lines.items() if k != "only"}


_BUNDLE_LINES = ("first", "identifier", "type", "timestamp", "entry", "fullUrl", "resource", "search", "request",
                 "response", "slice", "only")  # fmt: skip
REQUEST_BUNDLE = _bundle_rules(
    "PASRequestBundle", dict(zip(_BUNDLE_LINES, (6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 21, 22), strict=True)),
    "* entry contains Claim 1..2 MS", "* entry[Claim].resource only PASClaimUpdate or PASClaim",
)  # fmt: skip
INQUIRY_BUNDLE = _bundle_rules(
    "PASInquiryRequestBundle", dict(zip(_BUNDLE_LINES, (29, 30, 32, 33, 34, 35, 36, 37, 38, 39, 44, 46), strict=True)),
    "* entry contains Claim 1..1 MS", "* entry[Claim].resource only PASClaimInquiry",
)  # fmt: skip
RESPONSE_BUNDLE = _bundle_rules(
    "PASResponseBundle", dict(zip(_BUNDLE_LINES, (53, 54, 56, 57, 58, 59, 60, 61, 62, 63, 68, 70), strict=True)),
    "* entry contains ClaimResponse 1..1 MS", "* entry[ClaimResponse].resource only PASClaimResponse",
)  # fmt: skip
INQUIRY_RESPONSE_BUNDLE = _bundle_rules(
    "PASInquiryResponseBundle",
    {k: v for k, v in zip(_BUNDLE_LINES, (77, 0, 78, 79, 80, 81, 82, 83, 84, 85, 90, 92), strict=True) if v},
    "* entry contains ClaimResponse 0..* MS", "* entry[ClaimResponse].resource only PASClaimInquiryResponse",
)  # fmt: skip


_PATIENT_PARENT = "Parent: http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient|7.0.0"
_COVERAGE_PARENT = "Parent: http://hl7.org/fhir/us/core/StructureDefinition/us-core-coverage|7.0.0"
_ORG_PARENT = "Parent: http://hl7.org/fhir/us/core/StructureDefinition/us-core-organization|7.0.0"
_PRACTITIONER_PARENT = "Parent: http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner|7.0.0"
_MEDREQ_PARENT = "Parent: http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationrequest|7.0.0"

#: Every rule the check applies, by key.
RULES: dict[str, Rule] = {
    # spec-13, spec-14, spec-16, spec-20: what a request Bundle holds
    "spec-13": Rule("PAS request", "entries hold every resource the Claim refers to, directly or not",
                     "specification.md#spec-13", "Additional Bundle entries **SHALL** be populated with any resources"),
    "spec-14": Rule("PAS request", "each resource at most once", "specification.md#spec-14",
                     "Each unique resource instance **SHALL** only appear at most once in the Bundle."),
    "spec-16": Rule("PAS request", "entry.fullUrl is the resource's URL or urn:uuid", "specification.md#spec-16",
                     "Bundle.entry.fullUrl values **SHALL** be:"),
    "spec-20": Rule("PAS request", "every resource is reached from the Claim (supportingInfo)",
                     "specification.md#spec-20", "SHALL** be pointed to by the Claim resource"),
    "spec-22": Rule("PAS request", "Claim.supportingInfo.sequence unique", "specification.md#spec-22",
                    "The Claim.supportingInfo.sequence for each entry **SHALL** be unique within the Claim."),
    "condition.category": Rule("US Core Condition Problems and Health Concerns", "category 1..* (spec-19)",
                               "specification.md#spec-19", "SHALL** comply with the relevant US Core profiles"),
    "procedure.performed": Rule("US Core Procedure", "us-core-7: performed[x] when completed or in progress "
                                "(spec-19)", "specification.md#spec-19", "SHALL** comply with the relevant US Core"),
    # PASIdentifier (every identifier of a PAS Claim, ClaimResponse, Organization, Practitioner)
    "identifier.system": Rule("PASIdentifier", "system 1..1", "Identifier.fsh:7", "* system 1..1 MS"),
    "identifier.value": Rule("PASIdentifier", "value 1..1", "Identifier.fsh:8", "* value 1..1 MS"),
    # PASClaimBase (request, update and inquiry)
    "claim.status": Rule("PASClaimBase", "status = #active", "Claim.fsh:22", "* status = #active"),
    "claim.type": Rule("PASClaimBase", "type from ClaimTypes (required)", "Claim.fsh:24", "* type from ClaimTypes"),
    "claim.use": Rule("PASClaimBase", "use = #preauthorization", "Claim.fsh:27", "* use = #preauthorization"),
    "claim.patient": Rule("PASClaimBase", "patient only Reference(PASBeneficiary)", "Claim.fsh:29",
                           "* patient only Reference(PASBeneficiary)"),
    "claim.insurer": Rule("PASClaimBase", "insurer 1..1", "Claim.fsh:30", "* insurer 1..1 MS"),
    "claim.insurer.only": Rule("PASClaimBase", "insurer only Reference(PASInsurer)", "Claim.fsh:31",
                                "* insurer only Reference(PASInsurer)"),
    "claim.provider": Rule("PASClaimBase", "provider only Reference(PASRequestor or PASPractitionerRole)",
                            "Claim.fsh:33", "* provider only Reference(PASRequestor or PASPractitionerRole)"),
    "claim.diagnosis": Rule("PASClaimBase", "diagnosis.diagnosis[x] only CodeableConcept", "Claim.fsh:74",
                             "* diagnosis.diagnosis[x] only CodeableConcept"),
    "claim.diagnosis.code": Rule("PASClaimBase", "diagnosisCodeableConcept from X12278DiagnosisCodes (required)",
                                  "Claim.fsh:75", "* diagnosis.diagnosisCodeableConcept from X12278DiagnosisCodes"),
    "claim.diagnosis.type": Rule("PASClaimBase", "diagnosis.type from X12278DiagnosisType (required)",
                                  "Claim.fsh:77", "* diagnosis.type from X12278DiagnosisType (required)"),
    "claim.insurance.focal": Rule("PASClaimBase", "insurance.focal = true", "Claim.fsh:80",
                                   "* insurance.focal = true"),
    "claim.insurance.coverage": Rule("PASClaimBase", "insurance.coverage only Reference(PASCoverage)",
                                      "Claim.fsh:82", "* insurance.coverage only Reference(PASCoverage)"),
    "claim.accident.date": Rule("PASClaimBase", "accident.date obeys FullDateRule", "Claim.fsh:85",
                                 "* accident.date obeys FullDateRule"),
    "item.category.code": Rule("PASClaimBase", "item.category from X12 1365 (required)", "Claim.fsh:112",
                                "* item.category from https://valueset.x12.org/x217/005010/request/2000F/UM/1/03/00/1365"),
    "item.productOrService": Rule("PASClaimBase", "item.productOrService from X12278RequestedServiceType (required)",
                                   "Claim.fsh:115", "* item.productOrService from X12278RequestedServiceType"),
    "item.modifier": Rule("PASClaimBase", "item.modifier from X12278RequestedServiceModifierType (required)",
                           "Claim.fsh:117", "* item.modifier from X12278RequestedServiceModifierType"),
    "item.servicedDate": Rule("PASClaimBase", "item.servicedDate obeys FullDateRule", "Claim.fsh:121",
                               "* item.servicedDate obeys FullDateRule"),
    "item.location.only": Rule("PASClaimBase", "item.location[x] only CodeableConcept", "Claim.fsh:125",
                                "* item.location[x] only CodeableConcept"),
    "item.location.code": Rule("PASClaimBase", "item.locationCodeableConcept from X12278LocationType (required)",
                                "Claim.fsh:126", "* item.locationCodeableConcept from X12278LocationType"),
    # PASClaim and PASClaimUpdate (CommonClaimElements), PASClaimInquiry
    "claim.related": Rule("PASClaim", "related 0..0", "Claim.fsh:176", "* related 0..0"),
    "info.documentInformation": Rule("PASClaim", "supportingInfo[AdditionalInformation].extension"
                                     "[documentInformation] 1..1", "Claim.fsh:215",
                                     "* supportingInfo[AdditionalInformation].extension contains DocumentInformation"),
    "info.timing": Rule("PASClaim", "supportingInfo[AdditionalInformation].timing[x] 0..0", "Claim.fsh:216",
                        "* supportingInfo[AdditionalInformation].timing[x] 0..0"),
    "info.value": Rule("PASClaim", "supportingInfo[AdditionalInformation].value[x] 1..1", "Claim.fsh:217",
                       "* supportingInfo[AdditionalInformation].value[x] 1..1 MS"),
    "info.reportType": Rule("DocumentInformation", "extension[reportTypeCode] 1..1 from "
                            "pas-pwk01-attachment-report-type-code (X12 755, required)", "Claim.fsh:256",
                            "ValueSet/pas-pwk01-attachment-report-type-code (required)"),
    "item.sequence": Rule("PASClaim", "Claim.item.sequence unique: the tracing identifier of an item",
                          "ClaimResponse.fsh:52",
                          "The item.sequence element SHALL serve as the main tracing identifier of items"),
    "claim.identifier.count": Rule("PASClaim", "identifier 1..2", "Claim.fsh:183", "* identifier 1..2 MS"),
    "claim.item": Rule("PASClaim", "item 1..*", "Claim.fsh:187", "* item 1..* MS"),
    "item.requestType": Rule("PASClaim", "item.extension[requestType] 1..1", "Claim.fsh:194",
                              "* item.extension[requestType] 1..1"),
    "item.certificationType": Rule("PASClaim", "item.extension[certificationType] 1..1", "Claim.fsh:195",
                                    "* item.extension[certificationType] 1..1"),
    "item.category": Rule("PASClaim", "item.category 1..1", "Claim.fsh:205", "* item.category 1..1 MS"),
    "item.location": Rule("PASClaim", "item.location[x] 1..1", "Claim.fsh:208", "* item.location[x] 1..1"),
    "inquiry.identifier": Rule("PASClaimInquiry", "identifier 1..1", "Claim.fsh:282", "* identifier 1..1 MS"),
    "update.related": Rule("PASClaimUpdate", "related 1..1", "Claim-update.fsh:232", "* related 1..1 MS"),
    "update.relationship": Rule("PASClaimUpdate", "related.relationship = #prior", "Claim-update.fsh:234",
                                 "* related.relationship = http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship#prior"),
    "update.claim": Rule("PASClaimUpdate", "related.claim 1..1", "Claim-update.fsh:235", "* related.claim 1..1 MS"),
    # the Claim item extensions
    "ext.requestType": Rule("ServiceItemRequestType", "valueCodeableConcept from X12 1525 (required)",
                             "Claim-update.fsh:108",
                             "* valueCodeableConcept from https://valueset.x12.org/x217/005010/request/2000E/UM/1/01/00/1525"),
    "ext.certificationType": Rule("CertificationType", "valueCodeableConcept from X12 1322 (required)",
                                   "Claim-update.fsh:33",
                                   "* valueCodeableConcept from https://valueset.x12.org/x217/005010/request/2000F/UM/1/02/00/1322"),
    "ext.requestedService": Rule("RequestedService", "value[x] only Reference(PASMedicationRequest or "
                                  "PASServiceRequest or PASDeviceRequest or PASNutritionOrder)", "Claim-update.fsh:182",
                                  "* value[x] only Reference(PASMedicationRequest or PASServiceRequest"),
    # PASQuantity, PASTiming
    "quantity.value": Rule("PASQuantity", "value 1..1", "Quantity.fsh:6", "* value 1..1 MS"),
    "quantity.code": Rule("PASQuantity", "code from X12 673 (required)", "Quantity.fsh:9",
                           "* code from https://valueset.x12.org/x217/005010/request/2000F/HSD/1/01/00/673"),
    "timing.bounds": Rule("PASTiming", "repeat.bounds[x] only Duration", "Request.fsh:80",
                           "* repeat.bounds[x] only Duration"),
    # the requests
    "mr.intent": Rule("PASMedicationRequest", "intent = #order", "Request.fsh:9", "* intent = #order (exactly)"),
    "mr.status": Rule("PASMedicationRequest", "status = #active", "Request.fsh:11", "* status = #active (exactly)"),
    "mr.subject": Rule("PASMedicationRequest", "subject only Reference(PASBeneficiary)", "Request.fsh:13",
                        "* subject only Reference(PASBeneficiary)"),
    "mr.requester": Rule("US Core MedicationRequest", "requester 1..1 (the parent of PASMedicationRequest)",
                          "Request.fsh:2", _MEDREQ_PARENT),
    "mr.medication": Rule("US Core MedicationRequest", "medication[x] from Medication Clinical Drug (RxNorm, "
                          "extensible): coded when its Claim item is (the parent of PASMedicationRequest)",
                          "Request.fsh:2", _MEDREQ_PARENT),
    "sr.intent": Rule("PASServiceRequest", "intent = #order", "Request.fsh:26", "* intent = #order (exactly)"),
    "sr.code": Rule("PASServiceRequest", "code from X12278RequestedServiceType (required)", "Request.fsh:28",
                     "* code from X12278RequestedServiceType (required)"),
    "sr.quantity": Rule("PASServiceRequest", "quantity[x] only PASQuantity", "Request.fsh:30",
                         "* quantity[x] only PASQuantity"),
    "sr.subject": Rule("PASServiceRequest", "subject only Reference(PASBeneficiary)", "Request.fsh:32",
                        "* subject only Reference(PASBeneficiary)"),
    "sr.occurrence": Rule("PASServiceRequest", "occurrence[x] only PASTiming", "Request.fsh:34",
                           "* occurrence[x] only PASTiming"),
    "dr.intent": Rule("PASDeviceRequest", "intent = #order", "Request.fsh:61", "* intent = #order (exactly)"),
    "dr.code.only": Rule("PASDeviceRequest", "code[x] only CodeableConcept", "Request.fsh:63",
                          "* code[x] only CodeableConcept"),
    "dr.code": Rule("PASDeviceRequest", "codeCodeableConcept from X12278RequestedServiceType (required)",
                     "Request.fsh:64", "* codeCodeableConcept from X12278RequestedServiceType (required)"),
    "dr.subject": Rule("PASDeviceRequest", "subject only Reference(PASBeneficiary)", "Request.fsh:66",
                        "* subject only Reference(PASBeneficiary)"),
    "dr.occurrence": Rule("PASDeviceRequest", "occurrence[x] only PASTiming", "Request.fsh:68",
                           "* occurrence[x] only PASTiming"),
    # PASBeneficiary and its US Core parent
    "patient.birthDate": Rule("PASBeneficiary", "birthDate obeys FullDateRule", "Patient.fsh:11",
                               "* birthDate obeys FullDateRule"),
    "patient.identifier": Rule("US Core Patient", "identifier 1..* (system, value 1..1; the parent of PASBeneficiary)",
                                "Patient.fsh:2", _PATIENT_PARENT),
    "patient.name": Rule("US Core Patient", "name 1..* and us-core-6 (the parent of PASBeneficiary)", "Patient.fsh:2",
                          _PATIENT_PARENT),
    "patient.gender": Rule("US Core Patient", "gender 1..1 (the parent of PASBeneficiary)", "Patient.fsh:2",
                            _PATIENT_PARENT),
    # PASCoverage
    "coverage.self": Rule("PASCoverage", "obeys self-beneficiary (not self: subscriber present)", "Coverage.fsh:7",
                           "* obeys self-beneficiary"),
    "coverage.memberid": Rule("PASCoverage", "identifier[memberid] 1..1", "Coverage.fsh:9",
                               "* identifier[memberid] 1..1"),
    "coverage.status": Rule("PASCoverage", "status = #active", "Coverage.fsh:11", "* status = #active"),
    "coverage.subscriber": Rule("PASCoverage", "subscriber only Reference(PASSubscriber)", "Coverage.fsh:13",
                                 "* subscriber only Reference(PASSubscriber)"),
    "coverage.beneficiary": Rule("PASCoverage", "beneficiary only Reference(PASBeneficiary)", "Coverage.fsh:16",
                                  "* beneficiary only Reference(PASBeneficiary)"),
    "coverage.x12.count": Rule("PASCoverage", "relationship.coding[X12Code] 0..1", "Coverage.fsh:22",
                                "* relationship.coding contains X12Code 0..1 MS"),
    "coverage.payor": Rule("PASCoverage", "payor only Reference(PASInsurer)", "Coverage.fsh:26",
                            "* payor only Reference(PASInsurer)"),
    "coverage.relationship": Rule("US Core Coverage", "relationship 1..1 (the parent of PASCoverage)",
                                   "Coverage.fsh:2", _COVERAGE_PARENT),
    # PASInsurer, PASRequestor, PASOrganization, and the US Core parent
    "insurer.type": Rule("PASInsurer", "type from X12 98 (required)", "Organization.fsh:7",
                          "* type from https://valueset.x12.org/x217/005010/request/2010A/NM1/1/01/00/98"),
    "insurer.active": Rule("PASInsurer", "active = true", "Organization.fsh:10", "* active = true"),
    "requestor.type": Rule("PASRequestor", "type from X12 98 (required)", "Organization.fsh:18",
                            "* type from https://valueset.x12.org/x217/005010/response/2010B/NM1/1/01/00/98"),
    "requestor.active": Rule("PASRequestor", "active = true", "Organization.fsh:21", "* active = true"),
    "organization.name": Rule("US Core Organization", "name 1..1 (the parent of PASOrganization)",
                               "Organization.fsh:38", _ORG_PARENT),
    # PASPractitionerRole, PASPractitioner
    "role.practitioner": Rule("PASPractitionerRole", "practitioner 1..1", "Practitioner.fsh:17",
                               "* practitioner 1..1 MS"),
    "role.practitioner.only": Rule("PASPractitionerRole", "practitioner only Reference(PASPractitioner)",
                                    "Practitioner.fsh:18", "* practitioner only Reference(PASPractitioner)"),
    "role.organization": Rule("PASPractitionerRole", "organization only Reference(PASOrganization)",
                               "Practitioner.fsh:20", "* organization only Reference(PASOrganization)"),
    "practitioner.us-core": Rule("US Core Practitioner", "identifier 1..* and name 1..* (the parent of "
                                  "PASPractitioner)", "Practitioner.fsh:2", _PRACTITIONER_PARENT),
    # PASClaimResponseBase
    "response.status": Rule("PASClaimResponseBase", "status = #active", "ClaimResponse.fsh:13", "* status = #active"),
    "response.use": Rule("PASClaimResponseBase", "use = #preauthorization", "ClaimResponse.fsh:14",
                          "* use = #preauthorization"),
    "response.patient": Rule("PASClaimResponseBase", "patient only Reference(PASBeneficiary)", "ClaimResponse.fsh:16",
                              "* patient only Reference(PASBeneficiary)"),
    "response.insurer": Rule("PASClaimResponseBase", "insurer only Reference(PASInsurer)", "ClaimResponse.fsh:19",
                              "* insurer only Reference(PASInsurer)"),
    "response.requestor": Rule("PASClaimResponseBase", "requestor only Reference(PASRequestor or "
                                "PASPractitionerRole)", "ClaimResponse.fsh:21",
                                "* requestor only Reference(PASRequestor or PASPractitionerRole)"),
    "response.request": Rule("PASClaimResponseBase", "request 1..1", "ClaimResponse.fsh:22", "* request 1..1 MS"),
    "response.outcome": Rule("PASClaimResponseBase", "outcome from ClaimResponseOutcome (required)",
                              "ClaimResponse.fsh:26", "* outcome from ClaimResponseOutcome (required)"),
    "response.sequence": Rule("PASClaimResponseBase", "item.itemSequence echoes the Claim item's sequence",
                               "ClaimResponse.fsh:52", "SHALL echo the same item sequence number"),
    "response.reviewAction": Rule("PASClaimResponseBase", "item.adjudication.extension[reviewAction] MS (the "
                                   "adapter sends one per item)", "ClaimResponse.fsh:54",
                                   "* item.adjudication.extension contains ReviewAction named reviewAction"),
    "response.item.category": Rule("PASClaimResponseBase", "item.adjudication.category = #submitted",
                                    "ClaimResponse.fsh:56",
                                    "* item.adjudication.category = http://terminology.hl7.org/CodeSystem/adjudication#submitted"),
    "response.preAuth": Rule("PASClaimResponseBase", "preAuthPeriod MS (the adapter sends preAuthRef and "
                              "preAuthPeriod with certified care)", "ClaimResponse.fsh:28", "* preAuthPeriod MS"),
    "addItem.itemSequence": Rule("PASClaimResponseBase", "addItem.itemSequence 1..1", "ClaimResponse.fsh:76",
                                  "* itemSequence 1..1 MS"),
    "addItem.productOrService": Rule("PASClaimResponseBase", "addItem.productOrService from "
                                      "X12278RequestedServiceType (required)", "ClaimResponse.fsh:81",
                                      "* productOrService from X12278RequestedServiceType (required)"),
    "addItem.category": Rule("PASClaimResponseBase", "addItem.adjudication.category = #submitted",
                              "ClaimResponse.fsh:92",
                              "* adjudication.category = http://terminology.hl7.org/CodeSystem/adjudication#submitted"),
    "processNote.number": Rule("PASClaimResponseBase", "processNote.number 1..1", "ClaimResponse.fsh:101",
                                "* processNote.number 1..1 MS"),
    "reviewAction.number": Rule("ReviewAction", "extension[number].value[x] only string (the item's review "
                                 "number, sent with certified care)", "ClaimResponse.fsh:134",
                                 "* extension[number].value[x] only string"),
    "reviewAction.code": Rule("ReviewActionCode", "valueCodeableConcept from X12 306 (required)",
                               "ClaimResponse.fsh:153",
                               "* valueCodeableConcept from https://valueset.x12.org/x217/005010/response/2000F/HCR/1/01/00/306"),
    "reviewer.flag": Rule("ClaimResponseReviewer", "extension[wasHumanReviewedFlag] 1..1", "ClaimResponse.fsh:310",
                           "* extension contains wasHumanReviewedFlag 1..1"),
    "response.communicationRequest": Rule("PASClaimResponse", "communicationRequest only "
                                          "Reference(PASCommunicationRequest)", "ClaimResponse.fsh:126",
                                          "* communicationRequest only Reference(PASCommunicationRequest)"),
    # PASCommunicationRequest (a documentation request; CommunicationRequest.fsh)
    "cr.identifier": Rule("PASCommunicationRequest", "obeys IdentifierUnlessVO (an identifier unless medium is VO)",
                          "CommunicationRequest.fsh:7", "* obeys IdentifierUnlessVO"),
    "cr.status": Rule("PASCommunicationRequest", "status = #active", "CommunicationRequest.fsh:11",
                      "* status = #active (exactly)"),
    "cr.category": Rule("PASCommunicationRequest", "category 0..1 from X12 755 (required)",
                        "CommunicationRequest.fsh:13",
                        "* category from https://valueset.x12.org/x217/005010/response/2000D/PWK/1/01/00/755"),
    "cr.medium": Rule("PASCommunicationRequest", "medium 0..1", "CommunicationRequest.fsh:15", "* medium 0..1 MS"),
    "cr.payload": Rule("PASCommunicationRequest", "payload 0..1, content[x] only string",
                       "CommunicationRequest.fsh:20", "* payload.content[x] only string"),
    "cr.loinc": Rule("PASCommunicationRequest", "payload.contentString from the LOINC attachment codes (required)",
                     "CommunicationRequest.fsh:21",
                     "* payload.contentString from http://loinc.org/vs/valid-hl7-attachment-requests (required)"),
    "cr.requester": Rule("PASCommunicationRequest", "requester only Reference(PASInsurer)",
                         "CommunicationRequest.fsh:23", "* requester only Reference(PASInsurer)"),
    "cr.recipient": Rule("PASCommunicationRequest", "recipient only Reference(PASPractitioner or PASOrganization)",
                         "CommunicationRequest.fsh:25",
                         "* recipient only Reference(PASPractitioner or PASOrganization)"),
    "cr.sender": Rule("PASCommunicationRequest", "sender only Reference(PASRequestor)", "CommunicationRequest.fsh:27",
                      "* sender only Reference(PASRequestor)"),
    "cr.line": Rule("ServiceLineNumber", "value[x] only positiveInt (an item of the Claim)",
                    "CommunicationRequest.fsh:57", "* value[x] only positiveInt"),
    # the inquiry (specification.md, Prior Authorization Inquiries)
    "inquiry.member": Rule("PAS inquiry", "the patient is identified by a member identifier (type MB)",
                            "specification.md#FHIR-49019", "The patient will be identified by their member identifier"),
    "inquiry.provider": Rule("PAS inquiry", "a match on the member id plus the provider's NPI",
                              "specification.md#spec-53", "plus the ordering and/or rendering provider identifier"),
}  # fmt: skip

_NOT_CODED = "productOrService needs a coding from X12 1365, CPT, HCPCS, ICD or NDC, not text only"
_LOINC = re.compile(r"\d{1,7}-\d")


@dataclass(frozen=True)
class Fault:
    """One broken rule: where (a FHIRPath location), which rule, and why."""

    location: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message} [{self.rule}]"


def _codings(concept: Any) -> list[JSON]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding", []) if isinstance(c, dict) and c.get("code")]


def _systems(concept: Any) -> set[str]:
    return {str(c.get("system")) for c in _codings(concept)}


def _full_date(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 10


def _coded(concept: Any, value_set: frozenset[str]) -> bool:
    """A CodeableConcept with a coding from one of these systems (a required binding by code system)."""
    return bool(_systems(concept) & value_set)


def _member(identifier: Any) -> bool:
    """A member identifier (type v2-0203 MB), with its value."""
    return (
        isinstance(identifier, dict)
        and bool(identifier.get("value"))
        and "MB" in {c.get("code") for c in _codings(identifier.get("type"))}
    )


def member_ids(index: Index, patient_ref: JSON | None) -> set[str]:
    """The member identifiers (``system|value``, type MB) of a Bundle's patient (``index``: the Bundle's): on
    the Patient (the slice PAS's inquiry reads) and on Coverages whose beneficiary the Patient is."""
    patient = index.find(patient_ref)
    if patient is None or patient.get("resourceType") != "Patient":
        return set()
    holders = [patient] + [c for c in index.of_type("Coverage") if index.find(c.get("beneficiary")) is patient]
    return {f"{i.get('system')}|{i['value']}" for holder in holders for i in holder.get("identifier", []) if _member(i)}


def npis(index: Index, reference: JSON | None) -> set[str]:
    """The NPIs of the provider a reference names (``index``: the Bundle's): an Organization's or
    Practitioner's own, or for a PractitionerRole its practitioner's and organization's."""
    provider = index.find(reference)
    if provider is None:
        return set()
    found = [provider]
    if provider.get("resourceType") == "PractitionerRole":
        found += [r for r in (index.find(provider.get("practitioner")), index.find(provider.get("organization"))) if r]
    return {
        str(i["value"])
        for r in found
        for i in r.get("identifier", [])
        if isinstance(i, dict) and i.get("system") == NPI_SYSTEM and i.get("value")
    }


def claim_npis(index: Index, claim: JSON) -> set[str]:
    """The NPIs of the providers a Claim names (``index``: its Bundle's): its provider, its care team, and the
    ordering (requester) and rendering (performer) providers of the services it requests."""
    refs: list[Any] = [claim.get("provider")] + [t.get("provider") for t in claim.get("careTeam", [])]
    for item in claim.get("item", []):
        for requested in _ext(item, mappings()[PAS].extensions.requested_service):
            request = index.find(requested.get("valueReference")) or {}
            performers = request.get("performer", [])
            refs += [request.get("requester"), *(performers if isinstance(performers, list) else [performers])]
    return {npi for ref in refs if isinstance(ref, dict) for npi in npis(index, ref)}


class _Checker:
    def __init__(self, bundle: JSON, index: Index | None = None) -> None:
        self.bundle = bundle
        self.index = index or Index.of_bundle(bundle)
        self.entries = [e for e in bundle.get("entry", []) if isinstance(e, dict)]
        self.paths = {
            id(e["resource"]): f"Bundle.entry[{n}].resource"
            for n, e in enumerate(self.entries)
            if isinstance(e.get("resource"), dict)
        }
        self.faults: list[Fault] = []
        self.seen: set[tuple[int, str]] = set()
        self.pas = mappings()[PAS]
        self.systems = mappings().tables.fhir.code_systems
        self.extensions = mappings().tables.fhir.extensions

    def service_coded(self, concept: Any) -> bool:
        """From X12278RequestedServiceType: a code of its systems, or data-absent-reason#not-applicable."""
        pairs = {(str(c.get("system")), str(c.get("code"))) for c in _codings(concept)}
        return (
            _coded(concept, self.pas.value_sets.requested_service)
            or (self.systems.data_absent_reason, "not-applicable") in pairs
        )

    def fault(self, location: str, rule: str, message: str) -> None:
        self.faults.append(Fault(location, str(RULES.get(rule, rule)), message))

    def once(self, resource: JSON, profile: str) -> bool:
        """True the first time ``resource`` is checked against ``profile`` (a Patient is named many times)."""
        key = (id(resource), profile)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def target(self, reference: Any, where: str, rtypes: tuple[str, ...], rule: str, what: str) -> JSON | None:
        """The resource a reference names when it is in the Bundle and of one of ``rtypes`` (else a fault)."""
        found = self.index.find(reference) if isinstance(reference, dict) else None
        if found is None or found.get("resourceType") not in rtypes:
            self.fault(where, rule, f"{what} must be a {' or '.join(rtypes)} in the Bundle")
            return None
        return found

    def at(self, resource: JSON) -> str:
        return self.paths.get(id(resource), str(resource.get("resourceType")))

    # --- Bundle ----------------------------------------------------------------------------------------

    def bundle_rules(self, rules: dict[str, Rule], first_type: str, *, request: bool) -> list[JSON]:
        """The Bundle-level rules; the resources of the profile's slice (Claims or ClaimResponses)."""
        bundle = self.bundle

        def broken(key: str, where: str, message: str) -> None:
            if key in rules:
                self.faults.append(Fault(where, str(rules[key]), message))

        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "collection":
            broken("type", "Bundle.type", f"the Bundle is a collection, not {bundle.get('type')!r}")
        identifier = bundle.get("identifier")
        if not (isinstance(identifier, dict) and identifier.get("value")):
            broken("identifier", "Bundle.identifier", "the Bundle has no identifier")
        if not bundle.get("timestamp"):
            broken("timestamp", "Bundle.timestamp", "the Bundle has no timestamp")
        if not self.entries:
            broken("entry", "Bundle.entry", "the Bundle has no entry")
        first = (self.entries[0].get("resource") or {}) if self.entries else {}
        if first.get("resourceType") != first_type:
            broken("first", "Bundle.entry[0]", f"the first entry must be the {first_type}")
        urls: dict[str, int] = {}
        for n, entry in enumerate(self.entries):
            where = f"Bundle.entry[{n}]"
            full_url = entry.get("fullUrl")
            if not full_url:
                broken("fullUrl", f"{where}.fullUrl", "every entry needs a fullUrl")
            elif request:
                if full_url in urls:
                    self.fault(f"{where}.fullUrl", "spec-14", f"{full_url} is also entry {urls[full_url]}")
                urls.setdefault(full_url, n)
                if not (str(full_url).startswith(("urn:uuid:", "http://", "https://"))):
                    self.fault(f"{where}.fullUrl", "spec-16", "a fullUrl is the resource's URL or urn:uuid:<guid>")
            for element in ("request", "response", "search"):
                if element in entry:
                    broken(element, f"{where}.{element}", f"a collection Bundle's entries carry no {element}")
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                broken("resource", f"{where}.resource", "every entry needs a resource")
                continue
            for cited in references(resource):
                # an answer may name what the server serves by its URL; a request holds all it names (spec-13)
                ref = cited["reference"]
                if not request and ref.startswith(("http://", "https://")):
                    continue
                if self.index.find(cited) is None:
                    location = path_to(resource, cited, f"{where}.resource")
                    self.fault(location, "spec-13", f"{ref} is not in the Bundle")
        sliced = [r for r in self.index.all if r.get("resourceType") == first_type]
        low, high = {"PASRequestBundle": (1, 2), "PASInquiryRequestBundle": (1, 1), "PASResponseBundle": (1, 1)}.get(
            rules["slice"].profile, (0, 1_000_000)
        )
        if not low <= len(sliced) <= high:
            broken("slice", "Bundle.entry", f"the Bundle holds {len(sliced)} {first_type} resources")
        if request and first.get("resourceType") == first_type:
            self.reached(first)
        return sliced

    def reached(self, start: JSON) -> None:
        """spec-13/spec-20: every resource of a request is the Claim or reached from it by references."""
        reached, queue = {id(start)}, [start]
        while queue:
            for element in references(queue.pop()):
                found = self.index.find(element)
                if found is not None and id(found) not in reached:
                    reached.add(id(found))
                    queue.append(found)
        for resource in self.index.all:
            if id(resource) not in reached and resource.get("resourceType") != "Claim":
                self.fault(
                    self.at(resource),
                    "spec-20",
                    f"this {resource.get('resourceType')} is not reached from the Claim (refer to it from "
                    "Claim.supportingInfo)",
                )

    # --- data types ------------------------------------------------------------------------------------

    def identifiers(self, resource: JSON, where: str, profile: str) -> None:
        """PASIdentifier (``identifier only PASIdentifier`` on ``profile``): a system and a value each."""
        for n, identifier in enumerate(resource.get("identifier", [])):
            for element in ("system", "value"):
                if not identifier.get(element):
                    self.fault(f"{where}.identifier[{n}].{element}", f"identifier.{element}",
                               f"a {profile} identifier is a PASIdentifier: it needs a {element}")  # fmt: skip

    def quantity(self, quantity: Any, where: str) -> None:
        """PASQuantity (the Claim's and added items' quantities, a ServiceRequest's): a value; a code, when
        given, from X12 673."""
        if quantity is None:
            return
        if not isinstance(quantity, dict) or quantity.get("value") is None:
            self.fault(where, "quantity.value", "a PAS quantity needs its value")
        elif quantity.get("code") is not None and quantity.get("system") != self.pas.code_systems.quantity_qualifier:
            self.fault(f"{where}.code", "quantity.code", "a PAS quantity's unit code is an X12 673 code")

    def timing(self, timing: Any, where: str) -> None:
        repeat = timing.get("repeat") if isinstance(timing, dict) else None
        if isinstance(repeat, dict) and any(k in repeat for k in ("boundsPeriod", "boundsRange")):
            self.fault(f"{where}.repeat", "timing.bounds", "the number of periods is a Duration (boundsDuration)")

    # --- parties -------------------------------------------------------------------------------------

    def patient(self, reference: Any, where: str, rule: str) -> None:
        patient = self.target(reference, where, ("Patient",), rule, "the patient")
        if patient is None or not self.once(patient, "PASBeneficiary"):
            return
        at = self.at(patient)
        names = [n for n in patient.get("name", []) if isinstance(n, dict)]
        if not any(n.get("family") or n.get("given") or _ext(n, self.extensions.data_absent_reason) for n in names):
            self.fault(f"{at}.name", "patient.name", "the Patient needs a name, or a data-absent-reason (masked)")
        if not patient.get("identifier"):
            self.fault(f"{at}.identifier", "patient.identifier", "the Patient needs an identifier")
        self.identifiers(patient, at, "US Core Patient")
        if not patient.get("gender"):
            self.fault(f"{at}.gender", "patient.gender", "the Patient needs a gender ('unknown' when not known)")
        if "birthDate" in patient and not _full_date(patient["birthDate"]):
            self.fault(f"{at}.birthDate", "patient.birthDate", "a birth date is a full date, YYYY-MM-DD")

    def organization(self, reference: Any, where: str, profile: str, rule: str) -> None:
        """A PASInsurer or PASRequestor."""
        org = self.target(reference, where, ("Organization",), rule, "it")
        if org is None or not self.once(org, profile):
            return
        at, key = self.at(org), profile.removeprefix("PAS").lower()
        if org.get("active") is not True:
            self.fault(f"{at}.active", f"{key}.active", f"a {profile} is active")
        for n, kind in enumerate(org.get("type", [])):
            if self.pas.code_systems.entity_type not in _systems(kind):
                self.fault(f"{at}.type[{n}]", f"{key}.type", "an organization type is an X12 98 entity code")
        if self.once(org, "PASOrganization"):
            if not org.get("name"):
                self.fault(f"{at}.name", "organization.name", "the Organization needs a name")
            self.identifiers(org, at, "PASOrganization")

    def provider(self, reference: Any, where: str, rule: str, requestor_rule: str) -> None:
        """A requestor: a PASRequestor Organization or a PASPractitionerRole."""
        found = self.target(reference, where, ("Organization", "PractitionerRole"), rule, "the provider")
        if found is None:
            return
        if found.get("resourceType") == "Organization":
            self.organization(reference, where, "PASRequestor", requestor_rule)
            return
        if not self.once(found, "PASPractitionerRole"):
            return
        at = self.at(found)
        if not found.get("practitioner"):
            self.fault(f"{at}.practitioner", "role.practitioner", "a PractitionerRole names its practitioner")
        else:
            practitioner = self.target(found["practitioner"], f"{at}.practitioner", ("Practitioner",),
                                       "role.practitioner.only", "the practitioner")  # fmt: skip
            if practitioner is not None and self.once(practitioner, "PASPractitioner"):
                here = self.at(practitioner)
                if not practitioner.get("identifier") or not practitioner.get("name"):
                    self.fault(here, "practitioner.us-core", "a Practitioner needs an identifier and a name")
                self.identifiers(practitioner, here, "PASPractitioner")
        if found.get("organization"):
            org = self.target(found["organization"], f"{at}.organization", ("Organization",), "role.organization",
                              "the organization")  # fmt: skip
            if org is not None and self.once(org, "PASOrganization"):
                if not org.get("name"):
                    self.fault(f"{self.at(org)}.name", "organization.name", "the Organization needs a name")
                self.identifiers(org, self.at(org), "PASOrganization")

    def coverage(self, reference: Any, where: str) -> None:
        coverage = self.target(reference, where, ("Coverage",), "claim.insurance.coverage", "the insurance")
        if coverage is None or not self.once(coverage, "PASCoverage"):
            return
        at = self.at(coverage)
        members = [i for i in coverage.get("identifier", []) if _member(i)]
        if len(members) != 1 or not members[0].get("value"):
            self.fault(f"{at}.identifier", "coverage.memberid", "the Coverage needs one member identifier (type MB)")
        if coverage.get("status") != "active":
            self.fault(f"{at}.status", "coverage.status", f"a PAS Coverage is active, not {coverage.get('status')!r}")
        relationship = coverage.get("relationship")
        if not _codings(relationship):
            self.fault(f"{at}.relationship", "coverage.relationship", "the Coverage needs the relationship")
        x12 = [c for c in _codings(relationship) if c.get("system") == self.pas.code_systems.relationship]
        if len(x12) > 1:
            self.fault(f"{at}.relationship", "coverage.x12.count", "at most one X12 relationship code")
        self_codes = {c.get("code") for c in _codings(relationship)}
        if "18" not in self_codes and not coverage.get("subscriber"):
            self.fault(f"{at}.subscriber", "coverage.self", "a beneficiary who is not the subscriber needs one")
        if coverage.get("subscriber"):
            self.target(coverage["subscriber"], f"{at}.subscriber", ("Patient",), "coverage.subscriber",
                        "the subscriber")  # fmt: skip
        self.patient(coverage.get("beneficiary"), f"{at}.beneficiary", "coverage.beneficiary")
        for n, payor in enumerate(coverage.get("payor", [])):
            self.organization(payor, f"{at}.payor[{n}]", "PASInsurer", "coverage.payor")

    # --- the requests ----------------------------------------------------------------------------------

    def requested(self, reference: Any, where: str) -> None:
        request = self.target(reference, where, REQUEST_RESOURCES, "ext.requestedService", "the requested service")
        if request is None or not self.once(request, "request"):
            return
        rtype, at = str(request["resourceType"]), self.at(request)
        prefix = {"ServiceRequest": "sr", "MedicationRequest": "mr", "DeviceRequest": "dr"}[rtype]
        if request.get("intent") != "order":
            self.fault(f"{at}.intent", f"{prefix}.intent", "intent must be order")
        self.patient(request.get("subject"), f"{at}.subject", f"{prefix}.subject")
        if rtype == "MedicationRequest":
            if request.get("status") != "active":
                self.fault(f"{at}.status", "mr.status", "a PAS MedicationRequest is active")
            if not request.get("requester"):
                self.fault(f"{at}.requester", "mr.requester", "a MedicationRequest names its requester")
            for n, dosage in enumerate(request.get("dosageInstruction", [])):
                self.timing(dosage.get("timing"), f"{at}.dosageInstruction[{n}].timing")
            return
        for name in ("occurrenceDateTime", "occurrencePeriod"):
            if name in request:
                self.fault(f"{at}.{name}", f"{prefix}.occurrence", "the occurrence is a Timing (occurrenceTiming)")
        self.timing(request.get("occurrenceTiming"), f"{at}.occurrenceTiming")
        if rtype == "ServiceRequest":
            if not self.service_coded(request.get("code")):
                self.fault(f"{at}.code", "sr.code", "the code needs a coding from X12 1365, CPT, HCPCS, ICD or NDC")
            for name in ("quantityRatio", "quantityRange"):
                if name in request:
                    self.fault(f"{at}.{name}", "sr.quantity", "the quantity is a PAS quantity (quantityQuantity)")
            self.quantity(request.get("quantityQuantity"), f"{at}.quantityQuantity")
            return
        if "codeReference" in request:
            self.fault(f"{at}.codeReference", "dr.code.only", "the device is a CodeableConcept (codeCodeableConcept)")
        elif not self.service_coded(request.get("codeCodeableConcept")):
            self.fault(f"{at}.codeCodeableConcept", "dr.code",
                       "the code needs a coding from X12 1365, CPT, HCPCS, ICD or NDC")  # fmt: skip

    # --- Claim -----------------------------------------------------------------------------------------

    def claim_base(self, claim: JSON, where: str) -> None:
        """PASClaimBase: what a request, an update and an inquiry share."""
        if claim.get("status") != "active":
            self.fault(f"{where}.status", "claim.status", f"a PAS Claim is active, not {claim.get('status')!r}")
        if claim.get("use") != "preauthorization":
            self.fault(f"{where}.use", "claim.use", f"a PAS Claim is a preauthorization, not {claim.get('use')!r}")
        system = self.systems.claim_type
        if not any(c.get("system") == system and c.get("code") in CLAIM_TYPES for c in _codings(claim.get("type"))):
            self.fault(f"{where}.type", "claim.type", "the Claim type is institutional or professional (claim-type)")
        self.identifiers(claim, where, "PASClaim")
        self.patient(claim.get("patient"), f"{where}.patient", "claim.patient")
        if not claim.get("insurer"):
            self.fault(f"{where}.insurer", "claim.insurer", "the Claim names its insurer")
        else:
            self.organization(claim["insurer"], f"{where}.insurer", "PASInsurer", "claim.insurer.only")
        if claim.get("provider"):
            self.provider(claim["provider"], f"{where}.provider", "claim.provider", "claim.provider")
        for n, diagnosis in enumerate(claim.get("diagnosis", [])):
            at = f"{where}.diagnosis[{n}]"
            if "diagnosisReference" in diagnosis:
                self.fault(at, "claim.diagnosis", "a diagnosis is a CodeableConcept, not a reference")
            elif not _coded(diagnosis.get("diagnosisCodeableConcept"), self.pas.value_sets.diagnosis):
                self.fault(f"{at}.diagnosisCodeableConcept", "claim.diagnosis.code", "a diagnosis is an ICD-10-CM code")
            for kind in diagnosis.get("type", []):
                if not any(c.get("system") == self.pas.code_systems.temp_codes and c.get("code") in DIAGNOSIS_TYPES
                           for c in _codings(kind)):  # fmt: skip
                    self.fault(f"{at}.type", "claim.diagnosis.type", "a diagnosis type is admitting, principal or "
                               "patientreasonforvisit (PASTempCodes)")  # fmt: skip
        for n, insurance in enumerate(claim.get("insurance", [])):
            if insurance.get("focal") is not True:
                self.fault(f"{where}.insurance[{n}].focal", "claim.insurance.focal", "a PAS insurance is focal")
            self.coverage(insurance.get("coverage"), f"{where}.insurance[{n}].coverage")
        accident = claim.get("accident") or {}
        if "date" in accident and not _full_date(accident["date"]):
            self.fault(f"{where}.accident.date", "claim.accident.date", "the accident date is a full date")
        for n, item in enumerate(claim.get("item", [])):
            at = f"{where}.item[{n}]"
            if "category" in item and self.pas.code_systems.service_type not in _systems(item["category"]):
                self.fault(f"{at}.category", "item.category.code", "the category is an X12 1365 service type")
            if not self.service_coded(item.get("productOrService")):
                self.fault(f"{at}.productOrService", "item.productOrService",
                           _NOT_CODED)  # fmt: skip
            for m, modifier in enumerate(item.get("modifier", [])):
                if not _coded(modifier, self.pas.value_sets.service_modifier):
                    self.fault(f"{at}.modifier[{m}]", "item.modifier", "a modifier is a CPT or HCPCS code")
            if "servicedDate" in item and not _full_date(item["servicedDate"]):
                self.fault(f"{at}.servicedDate", "item.servicedDate", "the service date is a full date")
            for name in ("locationAddress", "locationReference"):
                if name in item:
                    self.fault(f"{at}.{name}", "item.location.only", "the place of service is a CodeableConcept")
            if "locationCodeableConcept" in item and not _coded(
                item["locationCodeableConcept"], self.pas.value_sets.location
            ):
                self.fault(f"{at}.locationCodeableConcept", "item.location.code",
                           "the place of service is a CMS place-of-service or NUBC type-of-bill code")  # fmt: skip
            self.quantity(item.get("quantity"), f"{at}.quantity")

    def claim(self, claim: JSON) -> None:
        """PASClaim, or PASClaimUpdate (a Claim declaring that profile, or with ``related``)."""
        where = self.at(claim)
        profiles = (claim.get("meta") or {}).get("profile", [])
        update = any(str(p).split("|")[0].endswith("profile-claim-update") for p in profiles) or (
            "related" in claim and not profiles
        )
        self.claim_base(claim, where)
        if not 1 <= len(claim.get("identifier", [])) <= 2:
            self.fault(f"{where}.identifier", "claim.identifier.count", "the Claim needs one or two identifiers")
        if update:
            self.update(claim, where)
        elif "related" in claim:
            self.fault(f"{where}.related", "claim.related", "a PAS Claim (not an update) relates to no other")
        self.supporting(claim, where)
        items = claim.get("item", [])
        if not items:
            self.fault(f"{where}.item", "claim.item", "the Claim has no item")
        ext, systems = self.pas.extensions, self.pas.code_systems
        sequences: set[Any] = set()
        for n, item in enumerate(items):
            at = f"{where}.item[{n}]"
            if item.get("sequence") in sequences:  # answers, review Tasks and decisions find an item by it
                self.fault(f"{at}.sequence", "item.sequence", f"item sequence {item.get('sequence')} is used twice")
            sequences.add(item.get("sequence"))
            for url, name, system in (
                (ext.request_type, "requestType", systems.request_type),
                (ext.certification_type, "certificationType", systems.certification_type),
            ):
                found = _ext(item, url)
                if len(found) != 1:
                    self.fault(f"{at}.extension", f"item.{name}", f"each item carries one {name} extension")
                elif system not in _systems(found[0].get("valueCodeableConcept")):
                    self.fault(f"{at}.extension", f"ext.{name}", f"the {name} is a code of {system}")
            if "category" not in item:
                self.fault(f"{at}.category", "item.category", "each item needs an X12 service type category")
            if not any(k.startswith("location") for k in item):
                self.fault(f"{at}.location", "item.location", "each item needs a place of service")
            for request in _ext(item, ext.requested_service):
                self.requested(request.get("valueReference"), f"{at}.extension(requestedService)")
                self.drug_coded(item, request.get("valueReference"))

    def supporting(self, claim: JSON, where: str) -> None:
        """Claim.supportingInfo: unique sequences (spec-22); the AdditionalInformation slice's rules."""
        sequences: set[Any] = set()
        temp, report = self.pas.code_systems.temp_codes, self.pas.code_systems.report_type
        for n, info in enumerate(claim.get("supportingInfo", [])):
            at = f"{where}.supportingInfo[{n}]"
            if info.get("sequence") in sequences:
                self.fault(f"{at}.sequence", "spec-22", f"sequence {info.get('sequence')} is used twice")
            sequences.add(info.get("sequence"))
            codes = {(c.get("system"), c.get("code")) for c in _codings(info.get("category"))}
            if (temp, "additionalInformation") not in codes:
                continue
            documents = _ext(info, self.pas.extensions.document_information)
            kinds = [t.get("valueCodeableConcept") for d in documents[:1] for t in _ext(d, "reportTypeCode")]
            if len(documents) != 1:
                self.fault(f"{at}.extension", "info.documentInformation", "additional information says what it is")
            elif not any(report in _systems(kind) for kind in kinds):
                self.fault(f"{at}.extension", "info.reportType", "the report type is an X12 755 code")
            if any(k.startswith("timing") for k in info):
                self.fault(f"{at}.timing", "info.timing", "additional information has no timing")
            if not any(k.startswith("value") for k in info):
                self.fault(f"{at}.value", "info.value", "additional information carries its value")

    def us_core(self) -> None:
        """spec-19: the US Core rules of the supporting resources the adapter sends (Condition, Procedure)."""
        for resource in self.index.all:
            at, rtype = self.at(resource), resource.get("resourceType")
            if rtype == "Condition" and not resource.get("category"):
                self.fault(f"{at}.category", "condition.category", "a Condition needs its category")
            performed = any(k.startswith(("performed", "_performed")) for k in resource)
            if rtype == "Procedure" and resource.get("status") in ("completed", "in-progress") and not performed:
                self.fault(f"{at}.performed", "procedure.performed", "a completed Procedure says when (or why not)")

    def drug_coded(self, item: JSON, reference: Any) -> None:
        """A drug whose Claim item has its RxNorm code is ordered with an RxNorm code too (extensible binding:
        a code that applies is sent)."""
        request = self.index.find(reference) if isinstance(reference, dict) else None
        if not request or request.get("resourceType") != "MedicationRequest":
            return
        rxnorm = self.systems.rxnorm
        if rxnorm in _systems(item.get("productOrService")) and rxnorm not in _systems(
            request.get("medicationCodeableConcept")
        ):
            where = f"{self.at(request)}.medicationCodeableConcept"
            self.fault(where, "mr.medication", "the Claim item has the drug's RxNorm code; the order has text only")

    def update(self, claim: JSON, where: str) -> None:
        related = claim.get("related", [])
        if len(related) != 1:
            self.fault(f"{where}.related", "update.related", "a Claim update relates to one earlier Claim")
            return
        kinds = _codings(related[0].get("relationship"))
        if not any(c.get("system") == self.systems.related_claim and c.get("code") == "prior" for c in kinds):
            self.fault(f"{where}.related[0].relationship", "update.relationship", "the relationship is prior")
        if not related[0].get("claim"):
            self.fault(f"{where}.related[0].claim", "update.claim", "an update names the Claim it updates")

    def inquiry(self, claim: JSON) -> None:
        """PASClaimInquiry, and what the specification requires of an inquiry: a member id and an NPI."""
        where = self.at(claim)
        self.claim_base(claim, where)
        if len(claim.get("identifier", [])) != 1:
            self.fault(f"{where}.identifier", "inquiry.identifier", "an inquiry carries its own one identifier")
        if not member_ids(self.index, claim.get("patient")):
            self.fault(f"{where}.patient", "inquiry.member", "the inquiry's Patient carries no member identifier "
                       "(identifier.type MB)")  # fmt: skip
        if not npis(self.index, claim.get("provider")):
            self.fault(f"{where}.provider", "inquiry.provider", "the inquiry's provider carries no NPI "
                       f"({NPI_SYSTEM})")  # fmt: skip

    # --- ClaimResponse ---------------------------------------------------------------------------------

    def claim_response(self, response: JSON, claim: JSON | None) -> None:
        where = self.at(response)
        if response.get("status") != "active":
            self.fault(f"{where}.status", "response.status", "a PAS ClaimResponse is active")
        if response.get("use") != "preauthorization":
            self.fault(f"{where}.use", "response.use", "a PAS ClaimResponse answers a preauthorization")
        self.identifiers(response, where, "PASClaimResponse")
        self.patient(response.get("patient"), f"{where}.patient", "response.patient")
        self.organization(response.get("insurer"), f"{where}.insurer", "PASInsurer", "response.insurer")
        if not response.get("requestor"):
            self.fault(f"{where}.requestor", "response.requestor", "the ClaimResponse names the requestor it answers")
        else:
            self.provider(response["requestor"], f"{where}.requestor", "response.requestor", "response.requestor")
        if not response.get("request"):
            self.fault(f"{where}.request", "response.request", "the ClaimResponse names the Claim it answers")
        if response.get("outcome") not in OUTCOMES:
            self.fault(f"{where}.outcome", "response.outcome", "the outcome is complete, error or partial")
        sequences = {item.get("sequence") for item in (claim or {}).get("item", [])}
        certified = False
        for n, item in enumerate(response.get("item", [])):
            at = f"{where}.item[{n}]"
            if claim is not None and item.get("itemSequence") not in sequences:
                self.fault(f"{at}.itemSequence", "response.sequence",
                           f"item sequence {item.get('itemSequence')} is not on the Claim")  # fmt: skip
            self.adjudications(item.get("adjudication", []), f"{at}.adjudication", "response.item.category")
            code = review_action_code(item.get("adjudication", []))
            if code not in set(ReviewAction):
                self.fault(f"{at}.adjudication", "response.reviewAction", "each item carries an X12 306 reviewAction")
                continue
            if ReviewAction(code).certifies:
                certified = True
                if not self.review_numbers(item.get("adjudication", [])):
                    self.fault(f"{at}.adjudication", "reviewAction.number", "certified care carries its review number")
        for n, added in enumerate(response.get("addItem", [])):
            at = f"{where}.addItem[{n}]"
            if len(added.get("itemSequence", [])) != 1:
                self.fault(f"{at}.itemSequence", "addItem.itemSequence", "an added item names one item sequence")
            if not self.service_coded(added.get("productOrService")):
                self.fault(f"{at}.productOrService", "addItem.productOrService",
                           _NOT_CODED)  # fmt: skip
            self.quantity(added.get("quantity"), f"{at}.quantity")
            self.adjudications(added.get("adjudication", []), f"{at}.adjudication", "addItem.category")
        for n, note in enumerate(response.get("processNote", [])):
            if note.get("number") is None:
                self.fault(f"{where}.processNote[{n}].number", "processNote.number", "a process note is numbered")
        for reviewer in _ext(response, self.pas.extensions.claim_response_reviewer):
            if len(_ext(reviewer, "wasHumanReviewedFlag")) != 1:
                self.fault(f"{where}.extension", "reviewer.flag", "the reviewer extension says whether a human did")
        contained = {c.get("id"): c for c in response.get("contained", []) if isinstance(c, dict)}
        for n, asked in enumerate(response.get("communicationRequest", [])):
            ref = str(asked.get("reference", "")) if isinstance(asked, dict) else ""
            found = contained.get(ref[1:]) if ref.startswith("#") else self.index.find(asked)
            if not isinstance(found, dict) or found.get("resourceType") != "CommunicationRequest":
                self.fault(f"{where}.communicationRequest[{n}]", "response.communicationRequest",
                           "communicationRequest names a CommunicationRequest, contained or in the Bundle")  # fmt: skip
                continue
            self.communication_request(found, f"{where}.communicationRequest[{n}]", sequences if claim else None)
        if certified and not (response.get("preAuthRef") and response.get("preAuthPeriod")):
            self.fault(f"{where}.preAuthRef", "response.preAuth", "certified care carries the authorization number "
                       "and period")  # fmt: skip

    def communication_request(self, request: JSON, where: str, sequences: set[Any] | None) -> None:
        """A PASCommunicationRequest: what the payer asks the provider to send."""
        if request.get("status") != "active":
            self.fault(f"{where}.status", "cr.status", "a PAS CommunicationRequest is active")
        vo = any(c.get("code") == "VO" for m in request.get("medium", []) for c in _codings(m))
        if not vo and not request.get("identifier"):
            self.fault(f"{where}.identifier", "cr.identifier", "a CommunicationRequest not by voice has an identifier")
        self.identifiers(request, where, "PASCommunicationRequest")
        for element, rule in (("category", "cr.category"), ("medium", "cr.medium"), ("payload", "cr.payload")):
            if len(request.get(element, [])) > 1:
                self.fault(f"{where}.{element}", rule, f"a PAS CommunicationRequest has at most one {element}")
        for n, category in enumerate(request.get("category", [])):
            if self.pas.code_systems.report_type not in _systems(category):
                self.fault(f"{where}.category[{n}]", "cr.category", "the category is an X12 755 report type")
        for n, payload in enumerate(request.get("payload", [])):
            content = payload.get("contentString") if isinstance(payload, dict) else None
            if not isinstance(content, str):
                self.fault(f"{where}.payload[{n}]", "cr.payload", "the payload is a string (a LOINC code)")
            elif not _LOINC.fullmatch(content):
                self.fault(f"{where}.payload[{n}]", "cr.loinc", "the payload is a LOINC attachment code")
        for n, line in enumerate(_ext(request, self.pas.extensions.service_line_number)):
            value = line.get("valuePositiveInt")
            if not isinstance(value, int) or value < 1 or (sequences is not None and value not in sequences):
                self.fault(f"{where}.extension[{n}]", "cr.line", "the service line number is an item of the Claim")
        if "requester" in request:
            self.organization(request["requester"], f"{where}.requester", "PASInsurer", "cr.requester")
        for n, recipient in enumerate(request.get("recipient", [])):
            self.target(recipient, f"{where}.recipient[{n}]", ("Practitioner", "Organization"), "cr.recipient",
                        "the recipient")  # fmt: skip
        if "sender" in request:
            self.organization(request["sender"], f"{where}.sender", "PASRequestor", "cr.sender")

    def adjudications(self, adjudications: list[JSON], where: str, rule: str) -> None:
        for n, adjudication in enumerate(adjudications):
            codes = {(c.get("system"), c.get("code")) for c in _codings(adjudication.get("category"))}
            if (self.pas.code_systems.adjudication, "submitted") not in codes:
                self.fault(f"{where}[{n}].category", rule, "an adjudication's category is adjudication#submitted")
            for action in _ext(adjudication, self.pas.extensions.review_action):
                for code in _ext(action, self.pas.extensions.review_action_code) + _ext(action, "code"):
                    if self.pas.code_systems.review_action not in _systems(code.get("valueCodeableConcept")):
                        self.fault(f"{where}[{n}].extension", "reviewAction.code", "the review action is X12 306")

    def review_numbers(self, adjudications: list[JSON]) -> list[str]:
        return [
            str(s["valueString"])
            for a in adjudications
            for e in _ext(a, self.pas.extensions.review_action)
            for s in _ext(e, "number")
            if s.get("valueString")
        ]


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
def request_faults(bundle: JSON, index: Index | None = None) -> list[Fault]:
    """What keeps ``bundle`` from being a PAS 2.2.1 request Bundle (empty: none found; ``index``: the Bundle's,
    when made already)."""
    checker = _Checker(bundle, index)
    for claim in checker.bundle_rules(REQUEST_BUNDLE, "Claim", request=True):
        checker.claim(claim)
    checker.us_core()
    return checker.faults


@_shaped
def inquiry_faults(bundle: JSON, index: Index | None = None) -> list[Fault]:
    """What keeps ``bundle`` from being a PAS 2.2.1 inquiry request Bundle a payer can answer."""
    checker = _Checker(bundle, index)
    claims = checker.bundle_rules(INQUIRY_BUNDLE, "Claim", request=True)
    if claims:
        checker.inquiry(claims[0])
    return checker.faults


@_shaped
def response_faults(bundle: JSON, claim: JSON | None = None, *, inquiry: bool = False) -> list[Fault]:
    """What keeps ``bundle`` from being a PAS 2.2.1 response Bundle (``inquiry``: an inquiry response Bundle);
    with the ``claim`` it answers, also whether every item echoes that Claim's item sequence."""
    checker = _Checker(bundle)
    rules = INQUIRY_RESPONSE_BUNDLE if inquiry else RESPONSE_BUNDLE
    for response in checker.bundle_rules(rules, "ClaimResponse", request=False):
        checker.claim_response(response, claim)
    return checker.faults


def _refuse(kind: str, faults: list[Fault]) -> None:
    if faults:
        raise ConformanceError(
            f"not a Da Vinci PAS 2.2.1 {kind}: {faults[0].message} [{faults[0].rule}]"
            + (f" (and {len(faults) - 1} more)" if len(faults) > 1 else ""),
            faults=[(f.location, f.rule, f.message) for f in faults],
        )


def check_request(bundle: JSON, index: Index | None = None) -> None:
    """Refuse (``ConformanceError``, every fault listed) a Bundle that is not a PAS request Bundle."""
    _refuse("request Bundle", request_faults(bundle, index))


def check_inquiry(bundle: JSON, index: Index | None = None) -> None:
    """Refuse (``ConformanceError``, every fault listed) a Bundle that is not a PAS inquiry Bundle."""
    _refuse("inquiry Bundle", inquiry_faults(bundle, index))


def rules_cited() -> Iterator[Rule]:
    """Every rule, the Bundle profiles' included (for the test that reads each cited line)."""
    yield from RULES.values()
    for rules in (REQUEST_BUNDLE, INQUIRY_BUNDLE, RESPONSE_BUNDLE, INQUIRY_RESPONSE_BUNDLE):
        yield from rules.values()
