"""Guideline rules: every rule fires when it should and not when it must not, never on missing facts; the
engine's combinations; the rule table checked at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter import MappingTableError
from adapter.determination import RULES as RULE_TABLE
from adapter.determination import (
    AdversePolicy,
    Finding,
    RequestFacts,
    determine,
    determine_all,
)
from adapter.determination.facts import STATUS_FACTS
from adapter.determination.rules import fires
from adapter.tables import mappings
from tests.conftest import BY_ID, RULES, facts, replace_once

A, P, U = "absent", "present", "unknown"


#: rule id -> (facts it fires on, facts it must not fire on)
CASES: dict[str, tuple[RequestFacts, RequestFacts]] = {
    "inpatient-rehabilitation-needs-review": (facts("inpatient-rehabilitation"), facts("consultation")),
    "carpal-tunnel-release-without-electrodiagnostic-confirmation": (
        facts("surgery", request="Right carpal tunnel release", entrapment_confirmed=A),
        facts("surgery", request="Right carpal tunnel release", entrapment_confirmed=U),
    ),
    "carpal-tunnel-release-with-confirmed-diagnosis": (
        facts("surgery", request="Right carpal tunnel release", entrapment_confirmed=P, neurologic_deficit=P),
        facts("surgery", request="Right carpal tunnel release", entrapment_confirmed=P, neurologic_deficit=U),
    ),
    "shoulder-decompression-before-three-months": (
        facts("surgery", request="Left shoulder arthroscopic subacromial decompression", weeks_since_injury=8.0,
              rotator_cuff_tear_diagnosis=False),
        facts("surgery", request="Left shoulder arthroscopic subacromial decompression and rotator cuff repair",
              weeks_since_injury=8.0, rotator_cuff_tear_diagnosis=False),
    ),
    "lumbar-fusion-without-instability": (
        facts("surgery", request="L4-5 posterior lumbar fusion", spinal_instability_diagnosis=False),
        facts("surgery", request="L4-5 posterior lumbar fusion", spinal_instability_diagnosis=True),
    ),
    "associated-with-surgery": (facts("surgery-associated"), facts("physical-therapy")),
    "topical-compound-not-recommended": (
        facts("topical-compound", compound_has_not_recommended=True, topical_ingredients=["gabapentin"]),
        facts("topical-compound", compound_has_not_recommended=False, topical_ingredients=["menthol"]),
    ),
    "topical-lidocaine-not-patch": (
        facts("topical", topical_ingredients=["lidocaine"], topical_form="ointment"),
        facts("topical", topical_ingredients=["lidocaine"], topical_form="patch"),
    ),
    "topical-nsaid-spine-hip-shoulder": (
        facts("topical", drug_class="nsaid", body_region="lumbar"),
        facts("topical", drug_class="nsaid", body_region="elbow"),
    ),
    "topical-nsaid-for-osteoarthritis-or-tendinitis": (
        facts("topical", drug_class="nsaid", body_region="elbow", osteoarthritis_diagnosis=False,
              tendinitis_diagnosis=True),
        facts("topical", drug_class="nsaid", body_region="elbow", osteoarthritis_diagnosis=False,
              tendinitis_diagnosis=False),
    ),
    "muscle-relaxant-not-added-to-current": (
        facts("muscle-relaxant", same_drug_class_in_use=P),
        facts("muscle-relaxant", same_drug_class_in_use=U),
    ),
    "muscle-relaxant-beyond-three-weeks": (
        facts("muscle-relaxant", supply_days=30.0, doses_per_day=2.0),
        facts("muscle-relaxant", supply_days=10.0, doses_per_day=2.0),
    ),
    "muscle-relaxant-short-course-for-a-flare": (
        facts("muscle-relaxant", supply_days=7.0, acute_flare=P),
        facts("muscle-relaxant", supply_days=7.0, acute_flare=U),
    ),
    "carisoprodol-not-recommended": (
        facts("muscle-relaxant", request="Soma 350 mg #60"),
        facts("muscle-relaxant", request="Cyclobenzaprine 7.5 mg #20"),
    ),
    "benzodiazepine-long-term": (
        facts("other-drug", drug_class="benzodiazepine", same_drug_class_in_use=P),
        facts("other-drug", drug_class="benzodiazepine", same_drug_class_in_use=U),
    ),
    "benzodiazepine-beyond-four-weeks": (
        facts("other-drug", drug_class="benzodiazepine", supply_days=60.0, doses_per_day=1.0),
        facts("other-drug", drug_class="benzodiazepine", supply_days=14.0, doses_per_day=1.0),
    ),
    "proton-pump-inhibitor-with-gi-risk": (
        facts("other-drug", drug_class="proton-pump-inhibitor", gi_risk=P, nsaid_in_use=P),
        facts("other-drug", drug_class="proton-pump-inhibitor", gi_risk=U, nsaid_in_use=P),
    ),
    "proton-pump-inhibitor-over-65": (
        facts("other-drug", drug_class="proton-pump-inhibitor", nsaid_in_use=P, age=70),
        facts("other-drug", drug_class="proton-pump-inhibitor", nsaid_in_use=P, age=50),
    ),
    "proton-pump-inhibitor-without-an-nsaid": (
        facts("other-drug", drug_class="proton-pump-inhibitor", nsaid_in_use=A),
        facts("other-drug", drug_class="proton-pump-inhibitor", nsaid_in_use=A, nsaid_planned=P),
    ),
    "sleep-aid-long-term": (
        facts("other-drug", drug_class="sleep-aid", same_drug_class_in_use=P),
        facts("other-drug", drug_class="sleep-aid", same_drug_class_in_use=A),
    ),
    "lidocaine-patch-after-first-line-therapy": (
        facts("topical", topical_ingredients=["lidocaine"], topical_form="patch", first_line_neuropathic_in_use=P,
              radicular_diagnosis=True, neuropathy_diagnosis=False),
        facts("topical", topical_ingredients=["lidocaine"], topical_form="patch", first_line_neuropathic_in_use=A,
              radicular_diagnosis=True, neuropathy_diagnosis=False),
    ),
    "anticonvulsant-for-neuropathic-pain": (
        facts("other-drug", request="Gabapentin 300 mg #90", drug_class="anticonvulsant", radicular_diagnosis=True,
              neuropathy_diagnosis=False, same_drug_class_in_use=A),
        facts("other-drug", request="Gabapentin 300 mg #90", drug_class="anticonvulsant", radicular_diagnosis=True,
              neuropathy_diagnosis=False, same_drug_class_in_use=U),
    ),
    "cox-2-inhibitor-for-gi-risk": (
        facts("nsaid", request="Celebrex 200 mg #30", gi_risk=P),
        facts("nsaid", request="Celebrex 200 mg #30", gi_risk=U),
    ),
    "nsaid-for-osteoarthritis": (
        facts("nsaid", osteoarthritis_diagnosis=True),
        facts("nsaid", osteoarthritis_diagnosis=True, gi_risk=P),
    ),
    "opioid-chronic-without-functional-improvement": (
        facts("opioid", same_drug_class_in_use=P, functional_improvement=A, weeks_since_injury=30.0),
        facts("opioid", same_drug_class_in_use=P, functional_improvement=U, weeks_since_injury=30.0),
    ),
    "opioid-continued-with-documented-benefit": (
        facts("opioid", same_drug_class_in_use=P, functional_improvement=P, pain_relief=P, side_effects_assessed=P,
              drug_monitoring=P),
        facts("opioid", same_drug_class_in_use=P, functional_improvement=P, pain_relief=P, side_effects_assessed=U,
              drug_monitoring=P),
    ),
    "nsaid-in-the-acute-phase": (
        facts("nsaid", weeks_since_injury=3.0, gi_risk=U),
        facts("nsaid", weeks_since_injury=3.0, gi_risk=P),
    ),
    "medication-continued-without-functional-improvement": (
        facts("nsaid", same_drug_class_in_use=P, functional_improvement=A, weeks_since_injury=20.0),
        facts("nsaid", same_drug_class_in_use=P, functional_improvement=U, weeks_since_injury=20.0),
    ),
    "spine-imaging-without-nerve-compromise": (
        facts("mri-spine", red_flags=U, neurologic_deficit=A),
        facts("mri-spine", red_flags=P, neurologic_deficit=A),
    ),
    "joint-imaging-in-the-first-month": (
        facts("mri-joint", weeks_since_injury=2.0),
        facts("mri-joint", weeks_since_injury=2.0, acute_trauma=P),
    ),
    "spine-mri-with-nerve-compromise": (
        facts("mri-spine", neurologic_deficit=P, prior_imaging=A, conservative_care_failed=P, weeks_since_injury=10.0),
        facts("mri-spine", neurologic_deficit=P, prior_imaging=A, conservative_care_failed=U, weeks_since_injury=10.0),
    ),
    "imaging-for-red-flags": (facts("mri-spine", red_flags=P), facts("mri-spine", red_flags=U)),
    "joint-imaging-without-findings": (
        facts("mri-joint", red_flags=A, objective_joint_findings=A, neurologic_deficit=A),
        facts("mri-joint", red_flags=A, objective_joint_findings=U, neurologic_deficit=A),
    ),
    "joint-mri-with-objective-findings": (
        facts("mri-joint", objective_joint_findings=P, prior_imaging=A, weeks_since_injury=8.0),
        facts("mri-joint", objective_joint_findings=P, prior_imaging=P, weeks_since_injury=8.0),
    ),
    "xray-after-acute-trauma": (
        facts("xray-other", acute_trauma=P, fracture_signs=P, weeks_since_injury=1.0),
        facts("xray-other", acute_trauma=P, fracture_signs=U, weeks_since_injury=1.0),
    ),
    "other-imaging-without-red-flags": (
        facts("imaging-other", red_flags=A, neurologic_deficit=A),
        facts("imaging-other", red_flags=U, neurologic_deficit=A),
    ),
    "spine-imaging-in-the-first-month": (
        facts("mri-spine", weeks_since_injury=2.0, red_flags=U),
        facts("mri-spine", weeks_since_injury=2.0, red_flags=P),
    ),
    "lower-extremity-nerve-conduction-without-neuropathy": (
        facts("electrodiagnostic", lower_extremity_nerve_study=True, radicular_diagnosis=False,
              neuropathy_suspected=False),
        facts("electrodiagnostic", lower_extremity_nerve_study=True, radicular_diagnosis=False,
              neuropathy_suspected=True),
    ),
    "electrodiagnostics-without-neurologic-findings": (
        facts("electrodiagnostic", lower_extremity_nerve_study=False, neurologic_deficit=A),
        facts("electrodiagnostic", lower_extremity_nerve_study=False, neurologic_deficit=U),
    ),
    "electrodiagnostics-for-neurologic-findings": (
        facts("electrodiagnostic", lower_extremity_nerve_study=False, neurologic_deficit=P, prior_electrodiagnostics=A,
              weeks_since_injury=8.0),
        facts("electrodiagnostic", lower_extremity_nerve_study=False, neurologic_deficit=P, prior_electrodiagnostics=U,
              weeks_since_injury=8.0),
    ),
    "lumbar-facet-injection": (
        facts("facet-injection", body_region="lumbar"),
        facts("facet-injection", body_region="cervical"),
    ),
    "medial-branch-block-with-radicular-findings": (
        facts("medial-branch-block", neurologic_deficit=P),
        facts("medial-branch-block", neurologic_deficit=U),
    ),
    "diagnostic-medial-branch-block": (
        facts("medial-branch-block", neurologic_deficit=A, weeks_since_injury=20.0),
        facts("medial-branch-block", neurologic_deficit=U, weeks_since_injury=20.0),
    ),
    "epidural-without-radiculopathy": (
        facts("epidural-injection", neurologic_deficit=A),
        facts("epidural-injection", neurologic_deficit=U),
    ),
    "epidural-with-corroborated-radiculopathy": (
        facts("epidural-injection", neurologic_deficit=P, imaging_corroboration=P, conservative_care_failed=P),
        facts("epidural-injection", neurologic_deficit=P, imaging_corroboration=P, conservative_care_failed=U),
    ),
    "passive-modalities": (facts("passive-modality"), facts("physical-therapy")),
    "positional-mri": (
        facts("mri-spine", request="Upright positional MRI of the lumbar spine"),
        facts("mri-spine", request="MRI of the lumbar spine"),
    ),
    "platelet-rich-plasma": (
        facts("injection-other", request="Platelet-rich plasma injection to the right elbow"),
        facts("injection-other", request="Corticosteroid injection to the right shoulder"),
    ),
    "physical-medicine-without-a-stated-quantity": (
        facts("acupuncture", request="Acupuncture, unspecified quantity"),
        facts("acupuncture", request="Acupuncture 6 sessions"),
    ),
    "bathroom-equipment-for-convenience": (
        facts("durable-medical-equipment", request="Shower chair purchase", confined=U),
        facts("durable-medical-equipment", request="Shower chair purchase", confined=P),
    ),
    "cold-therapy-after-surgery": (
        facts("cold-therapy", surgery_documented=P, supply_days=7.0),
        facts("cold-therapy", surgery_documented=U, supply_days=7.0),
    ),
    "cold-therapy-beyond-seven-days": (
        facts("cold-therapy", surgery_documented=P, supply_days=30.0),
        facts("cold-therapy", surgery_documented=P, supply_days=5.0),
    ),
    "cold-therapy-without-surgery": (
        facts("cold-therapy", surgery_documented=A),
        facts("cold-therapy", surgery_documented=U),
    ),
    "tens-one-month-trial": (
        facts("tens", request="TENS unit 30-day trial rental", weeks_since_injury=30.0, conservative_care_failed=P),
        facts("tens", request="TENS unit 30-day trial rental", weeks_since_injury=30.0, conservative_care_failed=U),
    ),
    "tens-purchase-without-trial": (
        facts("tens", request="TENS unit purchase", tens_trial_documented=A),
        facts("tens", request="TENS unit purchase", tens_trial_documented=U),
    ),
    "therapy-continued-without-functional-improvement": (
        facts("acupuncture", prior_same_therapy=P, functional_improvement=A),
        facts("acupuncture", prior_same_therapy=P, functional_improvement=U),
    ),
    "visit-cap-24": (
        facts("chiropractic", prior_sessions=24, surgery_documented=U),
        facts("chiropractic", prior_sessions=24, surgery_documented=P),
    ),
    "manual-therapy-trial": (
        facts("chiropractic", prior_same_therapy=A, requested_count=8),
        facts("chiropractic", prior_same_therapy=U, requested_count=8),
    ),
    "manual-therapy-trial-within-limits": (
        facts("chiropractic", prior_same_therapy=A, requested_count=6, body_region="lumbar"),
        facts("chiropractic", prior_same_therapy=U, requested_count=6, body_region="lumbar"),
    ),
    "acupuncture-trial": (
        facts("acupuncture", prior_same_therapy=A, requested_count=12),
        facts("acupuncture", prior_same_therapy=U, requested_count=12),
    ),
    "acupuncture-trial-within-limits": (
        facts("acupuncture", prior_same_therapy=A, requested_count=6, acupuncture_indication=P),
        facts("acupuncture", prior_same_therapy=A, requested_count=6, acupuncture_indication=U),
    ),
    "physical-therapy-beyond-chronic-course": (
        facts("physical-therapy", requested_count=12, weeks_since_injury=20.0, crps_diagnosis=False,
              surgery_documented=U),
        facts("physical-therapy", requested_count=12, weeks_since_injury=20.0, crps_diagnosis=False,
              prior_same_therapy=P),
    ),
    "first-physical-therapy-course": (
        facts("physical-therapy", prior_same_therapy=A, requested_count=8),
        facts("physical-therapy", prior_same_therapy=U, requested_count=8),
    ),
    "acute-therapy-with-functional-improvement": (
        facts("physical-therapy", weeks_since_injury=6.0, functional_improvement=P, prior_same_therapy=P,
              requested_count=6, prior_sessions=6),
        facts("physical-therapy", weeks_since_injury=26.0, functional_improvement=P, prior_same_therapy=P,
              requested_count=6, prior_sessions=6),
    ),
    "postsurgical-initial-course": (
        facts("physical-therapy", surgery_related=True, surgery_documented=P, body_region="shoulder",
              surgery_name="arthroscopic shoulder surgery", postsurgical_course=24, postsurgical_initial_course=12,
              requested_count=12),
        facts("physical-therapy", surgery_related=True, surgery_documented=P, body_region="shoulder",
              surgery_name="arthroscopic shoulder surgery", postsurgical_course=24, postsurgical_initial_course=12,
              requested_count=18),
    ),
    "postsurgical-beyond-initial-course": (
        facts("physical-therapy", surgery_related=True, surgery_documented=P, body_region="hand",
              surgery_name="metacarpal fracture", postsurgical_course=16, postsurgical_initial_course=8,
              requested_count=12, prior_sessions=10),
        facts("physical-therapy", surgery_related=True, surgery_documented=P, body_region="hand",
              surgery_name="metacarpal fracture", postsurgical_course=16, postsurgical_initial_course=8,
              requested_count=6, prior_sessions=10),
    ),
    "physical-medicine-frequency": (
        facts("physical-therapy", frequency_per_week=5, duration_weeks=2, requested_count=10),
        facts("physical-therapy", frequency_per_week=3, duration_weeks=2, requested_count=6),
    ),
    "home-health-without-surgery-or-hospitalization": (
        facts("home-health", surgery_documented=A, hospitalization_documented=A),
        facts("home-health", surgery_documented=A, hospitalization_documented=U),
    ),
    "functional-capacity-evaluation-routine": (
        facts("functional-capacity-evaluation", return_to_work_attempts=A),
        facts("functional-capacity-evaluation", return_to_work_attempts=U),
    ),
    "opioid-dose-above-wean-threshold": (
        facts("opioid", mme_per_day=120.0, units_after_taper_step=108, same_drug_class_in_use=P,
              weeks_since_injury=40.0),
        facts("opioid", mme_per_day=60.0, units_after_taper_step=108, same_drug_class_in_use=P,
              weeks_since_injury=40.0),
    ),
    "massage-beyond-six-visits": (
        facts("physical-therapy", request="Massage therapy 2 times a week for 6 weeks", requested_count=12),
        facts("physical-therapy", request="Massage therapy 2 times a week for 3 weeks", requested_count=6),
    ),
    "physical-therapy-for-crps": (
        facts("physical-therapy", crps_diagnosis=True, prior_same_therapy=A, requested_count=12),
        facts("physical-therapy", crps_diagnosis=True, prior_same_therapy=U, requested_count=12),
    ),
    "physical-therapy-for-crps-beyond-course": (
        facts("physical-therapy", crps_diagnosis=True, prior_same_therapy=A, requested_count=36),
        facts("physical-therapy", crps_diagnosis=False, prior_same_therapy=A, requested_count=36),
    ),
    "routine-examination-components": (facts("testing", request="Jamar grip test"), facts("testing", request="CBC")),
    "home-health-after-surgery-or-hospitalization": (
        facts("home-health", request="Home health RN visits for wound care", surgery_documented=P, duration_weeks=2),
        facts("home-health", request="Home health RN visits for wound care", surgery_documented=P, duration_weeks=12),
    ),
    "surgical-consultation-with-nerve-compromise": (
        facts("consultation", request="Spine surgery consultation", neurologic_deficit=P, prior_imaging=P,
              weeks_since_injury=10.0),
        facts("consultation", request="Spine surgery consultation", neurologic_deficit=U, prior_imaging=P,
              weeks_since_injury=10.0),
    ),
    "follow-up-visit-for-opioid-monitoring": (
        facts("consultation", request="Follow-up visit with pain management", opioid_in_use=P),
        facts("consultation", request="Follow-up visit with pain management", opioid_in_use=A),
    ),
    "physical-therapy-chronic-course-given": (
        facts("physical-therapy", prior_sessions=12, weeks_since_injury=30.0, crps_diagnosis=False),
        facts("physical-therapy", prior_sessions=12, weeks_since_injury=30.0, crps_diagnosis=False, acute_flare=P),
    ),
    "manipulation-beyond-eighteen-visits": (
        facts("chiropractic", prior_sessions=20),
        facts("chiropractic", prior_sessions=12),
    ),
    "antidepressant-for-neuropathic-pain": (
        facts("other-drug", drug_class="antidepressant", radicular_diagnosis=False, neuropathy_diagnosis=True,
              same_drug_class_in_use=P, pain_relief=P),
        facts("other-drug", drug_class="antidepressant", radicular_diagnosis=False, neuropathy_diagnosis=False),
    ),
    "barbiturate-containing-analgesic": (
        facts("other-drug", drug_class="barbiturate-analgesic"),
        facts("other-drug", drug_class="nsaid"),
    ),
    "ondansetron-for-opioid-nausea": (
        facts("other-drug", drug_class="antiemetic", opioid_in_use=P),
        facts("other-drug", drug_class="antiemetic", opioid_in_use=P, surgery_documented=P),
    ),
    "medical-food": (
        facts("other-drug", request="Theramine #120"),
        facts("other-drug", request="Tramadol 50 mg #60"),
    ),
    "glucosamine-for-osteoarthritis": (
        facts("other-drug", request="Glucosamine sulfate 500 mg #90", osteoarthritis_diagnosis=True),
        facts("other-drug", request="Glucosamine sulfate 500 mg #90", osteoarthritis_diagnosis=False),
    ),
    "ketorolac-for-chronic-pain": (
        facts("nsaid", request="Toradol 60 mg IM injection", weeks_since_injury=40.0),
        facts("nsaid", request="Toradol 60 mg IM injection", weeks_since_injury=40.0, acute_flare=P),
    ),
    "lumbar-support-beyond-the-acute-phase": (
        facts("durable-medical-equipment", request="LSO back brace", weeks_since_injury=30.0,
              spinal_instability_diagnosis=False),
        facts("durable-medical-equipment", request="LSO back brace", weeks_since_injury=30.0,
              spinal_instability_diagnosis=True),
    ),
    "psychological-evaluation-for-chronic-pain": (
        facts("consultation", request="Psychological evaluation", weeks_since_injury=20.0),
        facts("consultation", request="Psychological evaluation", weeks_since_injury=6.0),
    ),
    "psychotherapy-initial-trial": (
        facts("psychological", prior_same_therapy=A, requested_count=4, weeks_since_injury=20.0),
        facts("psychological", prior_same_therapy=A, requested_count=12, weeks_since_injury=20.0),
    ),
    "lumbar-xray-without-red-flags": (
        facts("xray-spine", body_region="lumbar", red_flags=A),
        facts("xray-spine", body_region="lumbar", red_flags=U),
    ),
    "electrodiagnostics-in-the-first-month": (
        facts("electrodiagnostic", weeks_since_injury=2.0),
        facts("electrodiagnostic", weeks_since_injury=6.0),
    ),
    "trigger-point-injection-with-radiculopathy": (
        facts("trigger-point-injection", neurologic_deficit=U, radicular_diagnosis=True),
        facts("trigger-point-injection", neurologic_deficit=U, radicular_diagnosis=False),
    ),
    "trigger-point-injection-before-three-months": (
        facts("trigger-point-injection", weeks_since_injury=6.0),
        facts("trigger-point-injection", weeks_since_injury=20.0),
    ),
    "subacromial-injection-for-impingement": (
        facts("injection-other", request="Right shoulder subacromial cortisone injection", body_region="shoulder",
              shoulder_impingement_diagnosis=True, tendinitis_diagnosis=False),
        facts("injection-other", request="Right shoulder subacromial cortisone injection", body_region="shoulder",
              shoulder_impingement_diagnosis=False, tendinitis_diagnosis=False),
    ),
    "h-wave-trial-after-tens": (
        facts("h-wave", request="H-wave unit 30-day home trial", tens_trial_documented=P, weeks_since_injury=30.0),
        facts("h-wave", request="H-wave unit 30-day home trial", tens_trial_documented=U, weeks_since_injury=30.0),
    ),
    "h-wave-without-tens": (
        facts("h-wave", tens_trial_documented=A),
        facts("h-wave", tens_trial_documented=U),
    ),
    "manipulation-continued-with-functional-improvement": (
        facts("chiropractic", prior_same_therapy=P, prior_sessions=6, functional_improvement=P, requested_count=6,
              body_region="lumbar"),
        facts("chiropractic", prior_same_therapy=P, prior_sessions=16, functional_improvement=P, requested_count=6,
              body_region="lumbar"),
    ),
    "acupuncture-extended-with-functional-improvement": (
        facts("acupuncture", prior_same_therapy=P, functional_improvement=P, requested_count=6),
        facts("acupuncture", prior_same_therapy=P, functional_improvement=U, requested_count=6),
    ),
    "work-hardening-beyond-two-years": (
        facts("work-hardening", request="Work hardening program 10 sessions", weeks_since_injury=150.0),
        facts("work-hardening", request="Work hardening program 10 sessions", weeks_since_injury=60.0),
    ),
    "tens-before-three-months": (
        facts("tens", weeks_since_injury=6.0),
        facts("tens", weeks_since_injury=6.0, surgery_documented=P),
    ),
    "manipulation-for-the-extremities": (
        facts("chiropractic", request="Chiropractic manipulation of the right wrist", body_region="wrist"),
        facts("chiropractic", request="Chiropractic manipulation of the low back", body_region="lumbar"),
    ),
    "anticonvulsant-continued-without-relief": (
        facts("other-drug", drug_class="anticonvulsant", same_drug_class_in_use=P, pain_relief=A),
        facts("other-drug", drug_class="anticonvulsant", same_drug_class_in_use=P, pain_relief=U),
    ),
    "epidural-repeat-without-relief": (
        facts("epidural-injection", prior_same_therapy=P, pain_relief=A),
        facts("epidural-injection", prior_same_therapy=P, pain_relief=U),
    ),
    "nsaid-added-to-another-nsaid": (
        facts("nsaid", same_drug_class_in_use=P, other_same_class_in_use=P, medications=["meloxicam"]),
        facts("nsaid", same_drug_class_in_use=P, other_same_class_in_use=A, medications=["naproxen"]),
    ),
    "somatosensory-evoked-potentials": (
        facts("electrodiagnostic", request="SSEP of the lower extremities"),
        facts("electrodiagnostic", request="Intraoperative SSEP monitoring"),
    ),
    "wrist-splint-for-carpal-tunnel": (
        facts("durable-medical-equipment", request="Right wrist splint", carpal_tunnel_diagnosis=True),
        facts("durable-medical-equipment", request="Right wrist splint", carpal_tunnel_diagnosis=False),
    ),
    "foot-orthotics-for-plantar-fasciitis": (
        facts("durable-medical-equipment", request="Custom foot orthotics", plantar_fasciitis_diagnosis=True),
        facts("durable-medical-equipment", request="Custom foot orthotics", plantar_fasciitis_diagnosis=False),
    ),
    "gym-membership": (
        facts("other", request="Gym membership for 6 months"),
        facts("other", request="Gym membership for 6 months", home_exercise_failed=P),
    ),
    "home-health-homemaker-services": (
        facts("home-health", request="Home health aide for housekeeping and shopping 4 hours a week"),
        facts("home-health", request="Home health RN visits for wound care and housekeeping"),
    ),
    "maintenance-manipulation": (
        facts("chiropractic", request="Chiropractic maintenance care once a month"),
        facts("chiropractic", request="Chiropractic care 6 visits"),
    ),
    "shockwave-for-the-spine": (
        facts("shockwave", body_region="lumbar"),
        facts("shockwave", body_region="foot"),
    ),
    "shockwave-for-calcific-shoulder-tendinitis": (
        facts("shockwave", body_region="shoulder", calcific_tendinitis_diagnosis=True),
        facts("shockwave", body_region="shoulder", calcific_tendinitis_diagnosis=False),
    ),
    "urine-drug-test-without-opioids": (
        facts("testing", request="Urine drug screen", opioid_in_use=A),
        facts("testing", request="Urine drug screen", opioid_in_use=A, opioid_planned=P),
    ),
    "urine-drug-test-with-opioids": (
        facts("testing", request="Urine drug screen", opioid_planned=P),
        facts("testing", request="Urine drug screen", opioid_in_use=U),
    ),
}  # fmt: skip


def test_every_rule_has_cases() -> None:
    assert set(CASES) == set(BY_ID)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires_and_must_not(rule_id: str) -> None:
    fire, hold = CASES[rule_id]
    rule = BY_ID[rule_id]
    assert fires(rule, fire), f"{rule_id} should fire"
    assert not fires(rule, hold), f"{rule_id} must not fire"
    answer = determine(fire, RULES)
    assert rule_id in answer.rules
    if answer.action != "A4" or len(answer.rules) == 1:
        assert any(c.rule == rule_id and c.guideline for c in answer.citations)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_cannot_fire_on_missing_facts(rule_id: str) -> None:
    rule = BY_ID[rule_id]
    fire, _ = CASES[rule_id]
    for need in rule.needs:
        if need not in STATUS_FACTS and getattr(fire, need) is not None and need != "request":
            if isinstance(getattr(fire, need), list):
                continue
            assert not fires(rule, fire.model_copy(update={need: None})), f"{rule_id} fired without {need}"


class TestEngine:
    def test_no_rule_pends(self) -> None:
        answer = determine(facts("other"), RULES)
        assert (answer.recommendation, answer.action) == ("A4", "A4")
        assert not answer.rules and "human" in answer.rationale

    def test_disagreeing_rules_pend(self) -> None:
        both = facts("physical-therapy", weeks_since_injury=6.0, functional_improvement=P, prior_same_therapy=P,
                     requested_count=6, prior_sessions=6, frequency_per_week=4, duration_weeks=1)  # fmt: skip
        answer = determine(both, RULES)
        assert answer.recommendation == "A4"
        assert set(answer.rules) == {"acute-therapy-with-functional-improvement", "physical-medicine-frequency"}
        assert "disagree" in answer.rationale

    def test_modified_certifies_part_and_goes_to_a_physician(self) -> None:
        request = facts("acupuncture", frequency_per_week=5, duration_weeks=2, requested_count=10)
        answer = determine(request, RULES)
        assert (answer.recommendation, answer.certified_quantity, answer.action) == ("A6", 6.0, "A4")
        assert "6 visits (3 a week for 2 weeks) are supported" in answer.rationale
        assert answer.rationale.startswith("Recommended modified; only a physician reviewer may deny or modify")
        decided = determine(request, RULES, adverse=AdversePolicy("decide"))
        assert (decided.recommendation, decided.action) == ("A6", "A6") and "physician" not in decided.rationale

    def test_a_pended_rationale_opens_with_the_jurisdiction_s_words(self) -> None:
        words = AdversePolicy(pended="Sent to a Sagebrush physician ({label}, Rev. Stat. 2).")
        answer = determine(facts("passive-modality"), RULES, adverse=words)
        assert answer.action == "A4" and answer.rationale.startswith("Sent to a Sagebrush physician (not certified, ")
        decided = determine(facts("passive-modality"), RULES, adverse=AdversePolicy("decide"))
        assert words.reasons(answer.rationale) == decided.rationale  # the recommendation's own reasons

    def test_a_denial_always_cites_and_is_never_sent_by_default(self) -> None:
        answer = determine(facts("passive-modality"), RULES)
        assert (answer.recommendation, answer.action) == ("A3", "A4")
        assert answer.citations[0].guideline.startswith("MTUS ACOEM") and answer.citations[0].section
        assert "(MTUS ACOEM Low Back Complaints 2004" in answer.rationale
        assert determine(facts("passive-modality"), RULES, adverse=AdversePolicy("decide")).action == "A3"

    def test_a_rule_that_supports_nothing_more_outweighs_a_partial_one(self) -> None:
        capped = facts("physical-therapy", prior_sessions=30, requested_count=12, weeks_since_injury=40.0,
                       crps_diagnosis=False)  # fmt: skip
        answer = determine(capped, RULES)
        assert fires(BY_ID["physical-therapy-beyond-chronic-course"], capped)  # an A6 of 10 visits
        assert answer.recommendation == "A3" and answer.certified_quantity is None
        assert answer.rules == ["visit-cap-24", "physical-therapy-chronic-course-given"]

    def test_a_certification_goes_out_at_once(self) -> None:
        answer = determine(facts("physical-therapy", prior_same_therapy=A, requested_count=8), RULES)
        assert (answer.recommendation, answer.action) == ("A1", "A1")

    def test_what_is_supported_covering_the_request_certifies(self) -> None:
        answer = determine(facts("physical-therapy", frequency_per_week=4, duration_weeks=2, requested_count=6), RULES)
        assert answer.recommendation == "A1" and answer.certified_quantity is None

    def test_evidence_of_the_fired_rules_is_returned(self) -> None:
        quote = Finding(fact="neurologic_deficit", status="absent", quote="Neurologically intact.", source="note")
        request = facts("epidural-injection", neurologic_deficit=A, evidence={"neurologic_deficit": quote})
        answer = determine(request, RULES)
        assert answer.recommendation == "A3" and answer.evidence == [quote]

    @pytest.mark.parametrize("status", [U, P])
    def test_silence_never_denies(self, status: str) -> None:
        """With every documentation fact unknown, no category gets an adverse recommendation from a rule that
        reads the documentation."""
        for category in {c for r in RULES.rules for c in r.applies_to}:
            answer = determine(facts(category, requested_count=4), RULES)
            reading = [r for r in answer.rules if set(BY_ID[r].needs) & STATUS_FACTS]
            assert not (answer.recommendation in ("A3", "A6") and reading), (category, answer.rules)
        assert status in (U, P)

    def test_associated_services_follow_their_surgery(self) -> None:
        denied = facts("surgery", request="Right carpal tunnel release", entrapment_confirmed=A)
        certified = facts("surgery", request="Right carpal tunnel release", entrapment_confirmed=P,
                          neurologic_deficit=P)  # fmt: skip
        assistant = facts("surgery-associated", request="Associated surgical service: assistant surgeon")
        therapy = facts("physical-therapy", prior_same_therapy=A, requested_count=8)

        surgery, follows, own = determine_all([denied, assistant, therapy], RULES)
        assert follows.recommendation == "A3" and follows.action == "A4"  # adverse: to a physician
        assert follows.rules[0] == "associated-with-surgery" and follows.rules[1:] == surgery.rules
        assert "Right carpal tunnel release" in follows.rationale
        assert own == determine(therapy, RULES)

        assert determine_all([certified, assistant], RULES)[1].action == "A1"
        assert determine_all([assistant], RULES)[0].recommendation == "A4"  # no surgery in the request
        undecided = facts("surgery", request="Right knee arthroscopy")
        assert determine_all([undecided, assistant], RULES)[1].recommendation == "A4"
        assert determine_all([denied, certified, assistant], RULES)[2].recommendation == "A4"  # which one?

    def test_deterministic(self) -> None:
        f = facts("mri-spine", red_flags=A, neurologic_deficit=A)
        assert determine(f, RULES) == determine(f, RULES)


class TestRuleTable:
    @pytest.mark.parametrize(
        ("old", "new", "message"),
        [
            ("needs: [return_to_work_attempts]", "needs: [return_to_work_written]", "unknown facts"),
            (
                "when: {fact: return_to_work_attempts, eq: absent}",
                "when: {fact: return_to_work_attempts, above: 1}",
                "exactly one of",
            ),
            (
                "    action: A3\n    rationale: A functional capacity",
                "    action: A6\n    rationale: A functional capacity",
                "certify goes with action A6",
            ),
            (
                "when: {fact: return_to_work_attempts, eq: absent}",
                "when: {fact: red_flags, eq: absent}",
                "not listed in needs",
            ),
            (
                "when: {fact: return_to_work_attempts, eq: absent}",
                "when: {fact: return_to_work_attempts, eq: unknown}",
                "an unknown fact must never deny",
            ),
            (
                "when: {fact: return_to_work_attempts, eq: absent}",
                "when: {not: {fact: return_to_work_attempts, eq: present}}",
                "an unknown fact must never deny",
            ),
            ("rationale: A functional capacity", "rationale: The {nonsense} functional capacity", "unknown fields"),
        ],
    )
    def test_broken_rules_fail_at_load(self, mappings_copy: Path, old: str, new: str, message: str) -> None:
        replace_once(mappings_copy / "rules.yaml", old, new)
        with pytest.raises(MappingTableError) as raised:
            mappings(mappings_copy)[RULE_TABLE]
        assert message in raised.value.message
        assert (raised.value.location or "").startswith(f"{mappings_copy / 'rules.yaml'}:")
