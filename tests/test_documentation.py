"""What a request not yet decided is asked for (adapter/determination/documentation.py): for a pended item the
criteria the guideline names for the kind of service come first, in its order; a criterion of diagnoses is asked
for when no diagnosis it names is documented, a quantity when none is stated; what the records state met is not
asked for again, what they state unmet is. An adverse recommendation, pended for a physician, names the criteria
its rules rest on, then what else the guideline asks of the service, and nothing when no documentation could
change it; a third criterion only when it would decide; a decided item names nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter import MappingTableError
from adapter.determination import RULES as RULE_TABLE
from adapter.determination import AdversePolicy, Context, Determination, RequestFacts, Text, build_facts, determine
from adapter.determination.documentation import DOCUMENTATION, MOST, lacking, missing, unmet
from adapter.determination.engine import PEND
from adapter.tables import mappings
from tests.conftest import replace_once

RULES = mappings()[RULE_TABLE]


def _asked(request: str, note: str) -> list[str]:
    answer = determine(build_facts(request, Context(texts=[Text("note", note)])), RULES)
    assert answer.recommendation == "A4"
    assert len(answer.documentation) <= MOST
    return [need.criterion for need in answer.documentation]


def test_a_spine_mri_asks_first_for_the_neurologic_examination() -> None:
    """ACOEM Special Studies: objective findings of nerve compromise first, then red flags."""
    asked = _asked("MRI of the lumbar spine", "Low back pain for two months.")
    assert asked[:2] == ["neurologic-deficit", "red-flags"]


def test_an_indication_is_asked_for_when_no_diagnosis_names_one() -> None:
    """A topical analgesic is for neuropathic pain: with no such diagnosis it is the first thing asked; with one
    documented, it is not asked again."""
    table = mappings()[DOCUMENTATION]
    bare = build_facts("Lidocaine 5% patch #30", Context(texts=[Text("note", "Low back pain.")]))
    assert lacking(bare, table.criteria["diagnosis-indication"])
    documented = build_facts("Lidocaine 5% patch #30",
                             Context(texts=[Text("note", "Diagnosis: lumbar radiculopathy.")]))  # fmt: skip
    assert not lacking(documented, table.criteria["diagnosis-indication"])


def test_transportation_asks_whether_the_patient_can_travel() -> None:
    assert _asked("Transportation to and from all medical appointments", "Neck pain.") == ["homebound"]


#: A note on therapy that has not helped.
NO_BETTER = "Twelve sessions of physical therapy for the low back so far. Therapy has not helped; no improvement."


def _answer(request: str, note: str, *, adverse: AdversePolicy = PEND) -> Determination:
    return determine(build_facts(request, Context(texts=[Text("note", note)])), RULES, adverse=adverse)


def test_more_therapy_that_has_not_helped_names_functional_improvement_for_the_physician() -> None:
    """MTUS physical medicine and 8 CCR 9792.20(f): more of a therapy rests on functional improvement from the visits
    had. Recommended not certified, it goes to a physician (Labor Code 4610), who may ask for it first (8 CCR
    9792.9.1): the item names the criterion the unmet rule rests on, then what else the guideline asks of more
    therapy (why a home exercise program will not do)."""
    note = NO_BETTER
    answer = _answer("Additional physical therapy 2 times a week for 4 weeks for the low back", note)
    assert (answer.recommendation, answer.action) == ("A3", "A4")
    assert [need.criterion for need in answer.documentation] == ["functional-improvement", "home-exercise-rationale"]


def test_an_adverse_recommendation_decided_where_lawful_asks_for_nothing() -> None:
    """Under adverse = "decide" an A3 is final: a decided item names no criterion."""
    note = NO_BETTER
    answer = _answer(
        "Additional physical therapy 2 times a week for 4 weeks for the low back", note, adverse=AdversePolicy("decide")
    )
    assert (answer.action, answer.documentation) == ("A3", [])


def test_a_certified_item_names_nothing() -> None:
    """Red flags (a progressive deficit, new incontinence) indicate spine imaging: A1 goes out, nothing asked."""
    answer = _answer("MRI of the lumbar spine", "Progressive left foot drop and new urinary incontinence.")
    assert (answer.action, answer.documentation) == ("A1", [])


def test_a_spine_mri_with_a_normal_neurologic_exam_names_what_the_guideline_indicates_it_for() -> None:
    """ACOEM Special Studies: objective findings of nerve compromise, or red flags; the exam stated normal and no red
    flag documented, those are what the recommendation rests on, the examination first."""
    note = "Low back pain for six months. Neurologic examination is normal: strength 5/5, sensation intact."
    answer = _answer("MRI of the lumbar spine", note)
    assert answer.recommendation == "A3"
    assert [need.criterion for need in answer.documentation] == ["neurologic-deficit", "red-flags"]


def test_lower_extremity_nerve_conduction_for_radicular_pain_names_the_indication() -> None:
    """ODG: nerve conduction studies establish a peripheral neuropathy or an entrapment, not a radiculopathy; what
    would support them is a neuropathy suspected. Stopping the rule is not yet certifying: then the conservative care
    that has failed, which ACOEM asks before electrodiagnostics."""
    note = "Low back pain radiating to both legs for four months. Diagnosis: lumbar radiculopathy."
    answer = _answer("NCV of the bilateral lower extremities", note)
    assert answer.recommendation == "A3"
    assert [need.criterion for need in answer.documentation] == ["diagnosis-indication", "failed-conservative-care"]


def test_a_repeat_epidural_after_no_relief_names_the_response_to_the_first_not_a_drug_s_efficacy() -> None:
    """MTUS Epidural steroid injections: a repeat block rests on the relief and function the first one brought; pain
    relief after an injection is the response to a treatment given, not a medication's efficacy; the functional
    improvement a repeat block also rests on follows."""
    note = ("Lumbar radiculopathy with decreased sensation in the L5 dermatome; MRI shows an L5-S1 disc protrusion. "
            "Status post lumbar epidural steroid injection in March with no relief.")  # fmt: skip
    answer = _answer("Repeat lumbar epidural steroid injection at L5-S1", note)
    assert answer.recommendation == "A3"
    assert [need.criterion for need in answer.documentation] == ["prior-treatment-response", "functional-improvement"]


def test_a_rule_that_rests_on_no_documentation_names_nothing() -> None:
    """A compound holding a drug not recommended for topical use (MTUS Topical analgesics) is not recommended
    whatever the records say: nothing the provider could send would change it, so nothing is asked."""
    answer = _answer("Compounded cream: flurbiprofen 20%, baclofen 5%, lidocaine 4%, 180 g", "Chronic low back pain.")
    assert (answer.recommendation, answer.documentation) == ("A3", [])


def test_passive_modalities_name_what_they_already_did_and_the_active_program() -> None:
    """MTUS Physical medicine: passive care is used sparingly, early, as an adjunct to active therapy; what the
    physician weighs is the response to the passive care already given and the active program it serves
    (documentation.yaml: those criteria answer the rule)."""
    answer = _answer("Infrared heat therapy to the low back 2 times a week for 6 weeks", "Chronic low back pain.")
    assert (answer.recommendation, answer.action) == ("A3", "A4")
    assert [need.criterion for need in answer.documentation] == ["prior-treatment-response", "treatment-plan"]


def test_a_post_operative_exception_is_no_question_about_a_surgery_s_indication() -> None:
    """TENS before three months of pain (MTUS TENS) stands aside after surgery; that is no criterion to ask for, and
    never a question about what indicates a surgery."""
    facts = RequestFacts(request="TENS unit", category="tens", weeks_since_injury=6.0, surgery_related=False)
    answer = determine(facts, RULES)
    assert answer.recommendation == "A3"
    assert answer.documentation == []


def test_shockwave_asks_for_its_indication() -> None:
    """ODG shock wave therapy: calcific tendinitis of the shoulder or plantar fasciitis, after conservative care."""
    assert _asked(
        "Extracorporeal shockwave therapy to the right shoulder, 3 sessions", "Right shoulder pain for a year."
    ) == ["diagnosis-indication", "failed-conservative-care"]


def test_what_would_only_trade_one_adverse_answer_for_another_is_not_named() -> None:
    """A chronic course cut to 10 visits (MTUS physical medicine) stands aside when an earlier course is documented;
    asked for, that earlier course is named, unless the records state the patient has not improved, where an
    earlier course would deny the request altogether (no functional improvement): then it is not what to ask."""
    course = {"request": "Physical therapy 12 visits", "category": "physical-therapy", "requested_count": 12,
              "weeks_since_injury": 30.0, "surgery_related": False, "crps_diagnosis": False}  # fmt: skip
    cut = determine(RequestFacts(**course), RULES)
    assert cut.recommendation == "A6"
    assert [need.criterion for need in cut.documentation] == ["prior-treatment-response", "functional-improvement"]
    no_better = determine(RequestFacts(**course, functional_improvement="absent"), RULES)
    assert no_better.recommendation == "A6"
    assert "prior-treatment-response" not in [need.criterion for need in no_better.documentation]


def test_a_chronic_course_already_given_names_a_flare() -> None:
    """MTUS physical medicine: a chronic course already given is not repeated, except for a flare-up (and then on the
    functional improvement the course brought)."""
    facts = RequestFacts(request="Physical therapy 6 visits", category="physical-therapy", requested_count=6,
                         prior_sessions=12, weeks_since_injury=30.0, surgery_related=False,
                         crps_diagnosis=False)  # fmt: skip
    answer = determine(facts, RULES)
    assert answer.recommendation == "A3"
    assert [need.criterion for need in answer.documentation] == ["acute-flare", "functional-improvement"]


def test_an_opioid_refill_asks_for_the_four_a_s_and_function_not_what_comes_before_starting() -> None:
    """MTUS Opioids 2016: on-going management rests on the four A's and improved function; a trial of non-opioid
    analgesics is what comes before starting one, so it is asked for a new opioid, not a refill."""
    refill = _asked(
        "Norco 10/325 mg #90", "Chronic low back pain since 2019. Medications: Norco 10/325 three times a day."
    )
    assert refill == ["medication-efficacy", "functional-improvement"]
    new = _asked("Norco 10/325 mg #90", "Chronic low back pain since 2019. Medications: naproxen 500 mg twice a day.")
    assert "failed-conservative-care" in new


def test_what_continuation_rests_on_names_known_criteria(mappings_copy: Path) -> None:
    replace_once(mappings_copy / "documentation.yaml", "  opioid: [request-specified, medication-efficacy, functional-",
                 "  opioid: [request-specified, medication-efficacy, four-as, functional-")  # fmt: skip
    with pytest.raises(MappingTableError, match="unknown criteria"):
        mappings(mappings_copy)[DOCUMENTATION]


#: The rule for a course requested with no quantity: it reads the request's wording, not a fact.
NO_QUANTITY = "physical-medicine-without-a-stated-quantity"


def test_a_course_requested_with_no_quantity_names_the_request_specified_in_full() -> None:
    """8 CCR 9792.6.1(t): a request for authorization states what is requested; MTUS physical medicine supports a
    limited course. A course with no quantity is recommended not certified and goes to the physician, who may ask
    for the request in full first: the item names request-specified (documentation.yaml: it answers the rule), then
    what acupuncture rests on (8 CCR 9792.24.1: pain medication reduced or not tolerated)."""
    answer = _answer("Acupuncture, unspecified quantity", "Chronic low back pain.")
    assert (answer.recommendation, answer.action, answer.rules) == ("A3", "A4", [NO_QUANTITY])
    assert [need.criterion for need in answer.documentation] == ["request-specified", "medication-efficacy"]
    assert answer.documentation[0].loinc == ["52070-0"]
    decided = _answer("Acupuncture, unspecified quantity", "Chronic low back pain.", adverse=AdversePolicy("decide"))
    assert (decided.action, decided.documentation) == ("A3", [])


def test_which_criterion_answers_a_rule_on_the_request_s_wording_is_data(mappings_copy: Path) -> None:
    """The link is the table's, not the code's: without it the item names nothing; a rule it names must exist."""
    facts = build_facts(
        "Chiropractic care, number of visits not specified", Context(texts=[Text("note", "Neck pain.")])
    )
    fired = [rule for rule in RULES.rules if rule.id == NO_QUANTITY]
    assert [need.criterion for need in unmet(facts, RULES, fired)][0] == "request-specified"
    replace_once(mappings_copy / "documentation.yaml", f"    answers: [{NO_QUANTITY}]\n", "")
    assert unmet(facts, RULES, fired, mappings(mappings_copy)[DOCUMENTATION]) == []


def test_a_criterion_answers_only_rules_that_exist(mappings_copy: Path) -> None:
    replace_once(mappings_copy / "documentation.yaml", f"    answers: [{NO_QUANTITY}]",
                 "    answers: [physical-medicine-without-a-quantity]")  # fmt: skip
    with pytest.raises(MappingTableError, match="rules.yaml does not have"):
        mappings(mappings_copy)[DOCUMENTATION]


def test_what_the_records_state_unmet_is_still_asked_for() -> None:
    """A neurologic examination stated normal leaves a spine MRI's first criterion unmet (ACOEM Special Studies): it
    is still what the request lacks, named first; a deficit stated present is not asked for again."""
    normal = determine(RequestFacts(request="MRI of the cervical spine", category="mri-spine",
                                    neurologic_deficit="absent", red_flags="unknown"), RULES)  # fmt: skip
    assert [need.criterion for need in normal.documentation][:1] == ["neurologic-deficit"]
    deficit = determine(RequestFacts(request="MRI of the cervical spine", category="mri-spine",
                                     neurologic_deficit="present"), RULES)  # fmt: skip
    assert deficit.recommendation == "A4"
    assert "neurologic-deficit" not in [need.criterion for need in deficit.documentation]


def test_a_fact_stated_absent_answers_a_criterion_that_asks_whether_there_is_one() -> None:
    """No gastrointestinal risk factor stated is an answer to the NSAID's question about them, not a gap."""
    assert _asked("Naproxen 550 mg #60", "Low back pain. No history of ulcer or GI bleeding.") == [
        "medication-efficacy"
    ]


def test_a_drug_requested_with_no_quantity_asks_for_it_first() -> None:
    """8 CCR 9792.6.1(t): a request for authorization states the quantity; a drug requested without one is asked for
    it before anything else, and one with a quantity is not."""
    assert _asked("Ondansetron 8 mg", "Nausea after shoulder surgery on 3/2.")[0] == "request-specified"
    assert "request-specified" not in _asked("Ondansetron 8 mg #10", "Nausea after shoulder surgery on 3/2.")


def test_a_course_requested_with_no_count_asks_for_it_first() -> None:
    """8 CCR 9792.6.1(t), MTUS Physical medicine: a course is measured against a number of visits; one requested
    with none stated is asked for it before what the course rests on."""
    assert _asked("Physical therapy for the neck", "Neck pain for four months.")[0] == "request-specified"


def test_a_missing_count_is_decisive_only_where_a_count_would_decide() -> None:
    """A count stated (1 or 1000) lets the massage limit (MTUS Massage therapy, 4-6 visits) decide a massage request,
    so its count is what to ask; no rule of physical therapy weighs the count of other therapy by itself."""
    known = {"prior_same_therapy": "absent", "functional_improvement": "present", "home_exercise_failed": "present"}
    table = mappings()[DOCUMENTATION].model_copy(update={"services": {}})  # the guideline's lists aside
    massage = RequestFacts(request="Massage therapy for the neck", category="physical-therapy", **known)
    assert [need.criterion for need in missing(massage, RULES, table)] == ["request-specified"]
    other = RequestFacts(request="Physical therapy for the neck", category="physical-therapy", **known)
    assert missing(other, RULES, table) == []


def test_a_course_with_its_visits_stated_is_not_asked_to_specify_them() -> None:
    """A count stated answers request-specified: a chiropractic course of 12 visits is asked what the guideline asks
    of it (MTUS Manual therapy), not its quantity again."""
    assert _asked("Chiropractic care 12 visits for the low back", "Low back pain for four months.") == [
        "functional-improvement",
        "prior-treatment-response",
    ]


def test_a_muscle_relaxant_added_to_one_in_use_names_what_that_one_does() -> None:
    """MTUS Muscle relaxants: no benefit from adding one to another; the physician weighs what the relaxant in use does
    (documentation.yaml: medication-efficacy answers the rule), then whether there is an acute flare."""
    answer = _answer(
        "Orphenadrine ER 100 mg #60", "Chronic low back pain. Medications: cyclobenzaprine 10 mg at night."
    )
    assert answer.rules == ["muscle-relaxant-not-added-to-current"]
    assert [need.criterion for need in answer.documentation] == ["medication-efficacy", "acute-flare"]


def test_platelet_rich_plasma_names_the_indication() -> None:
    """ODG Platelet-rich plasma: under study, an option only for named indications; the diagnosis comes first."""
    answer = _answer("Platelet-rich plasma injection to the right knee", "Right knee pain.")
    assert answer.rules == ["platelet-rich-plasma"]
    assert [need.criterion for need in answer.documentation][:1] == ["diagnosis-indication"]


def test_a_third_criterion_is_named_only_when_it_would_decide() -> None:
    """An EMG with the examination stated normal: the deficit that would stop the rule, then the conservative care
    ACOEM asks first; the suspected diagnosis, the guideline's third, decides nothing and is not named."""
    answer = _answer(
        "EMG of the bilateral upper extremities", "Neck pain for three months. Neurologic examination is normal."
    )
    assert answer.rules == ["electrodiagnostics-without-neurologic-findings"]
    assert [need.criterion for need in answer.documentation] == ["neurologic-deficit", "failed-conservative-care"]


def test_a_proton_pump_inhibitor_asks_for_the_gastrointestinal_risk_its_class_rests_on() -> None:
    """MTUS NSAIDs, GI symptoms & cardiovascular risk: a PPI is for a patient on an NSAID at gastrointestinal risk;
    the risk comes first, then the dyspepsia it would treat, not what the guideline asks of drugs in general."""
    note = "Chronic low back pain. Medications: naproxen 550 mg twice a day."
    assert _asked("Omeprazole 20 mg #30", note) == ["gi-risk", "diagnosis-indication"]


def test_more_acupuncture_asks_for_the_functional_improvement_it_may_be_extended_on() -> None:
    """8 CCR 9792.24.1(c)(1): acupuncture may be extended if functional improvement is documented; a first course is
    asked what it is for (pain medication reduced or not tolerated) and the plan it serves."""
    given = "Chronic low back pain. She has completed 6 acupuncture sessions."
    assert _asked("Acupuncture 6 visits for the low back", given) == ["functional-improvement"]
    assert _asked("Acupuncture 6 visits for the low back", "Chronic low back pain.") == [
        "medication-efficacy",
        "treatment-plan",
    ]


def test_imaging_of_the_head_asks_first_for_red_flags() -> None:
    """ACOEM Special Studies: imaging is for red flags first, then to confirm a suspected diagnosis."""
    assert _asked("CT scan of the head", "Headaches since the fall at work.")[0] == "red-flags"


def test_imaging_done_with_no_result_stated_asks_for_its_report() -> None:
    """MTUS Epidural steroid injections: radiculopathy corroborated by imaging. An MRI said to be done, its result not
    stated, is what to send; its result stated, it is not asked for again."""
    exam = "Low back pain radiating to the left leg with decreased sensation in the L5 dermatome."
    done = _asked("Lumbar epidural steroid injection at L5-S1", f"{exam} An MRI of the lumbar spine was done in March.")
    assert done[0] == "imaging-results"
    read = (
        f"{exam} An MRI of the lumbar spine in March shows an L5-S1 disc herniation compressing the left L5 nerve root."
    )
    assert "imaging-results" not in _asked("Lumbar epidural steroid injection at L5-S1", read)


def test_services_are_request_categories_or_drug_classes(mappings_copy: Path) -> None:
    """A misspelt kind of service would never be asked for: refused at load."""
    replace_once(mappings_copy / "documentation.yaml", "  sleep-aid: [", "  sleeping-pill: [")
    with pytest.raises(MappingTableError, match="neither request categories nor drug classes"):
        mappings(mappings_copy)[DOCUMENTATION]


def test_a_drug_for_short_term_use_already_in_use_names_what_it_has_done() -> None:
    """MTUS Benzodiazepines: not for long-term use; going on is weighed on the quantified relief and function the
    drug has brought (documentation.yaml: medication-efficacy answers the rule), then the function it serves."""
    note = "Chronic low back pain and anxiety. Medications: lorazepam 1 mg at night since last year."
    answer = _answer("Lorazepam 1 mg #30", note)
    assert answer.rules == ["benzodiazepine-long-term"]
    assert [need.criterion for need in answer.documentation] == ["medication-efficacy", "functional-improvement"]
