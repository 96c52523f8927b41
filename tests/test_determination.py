"""Determination: every rule fires when it should and not when it must not; the engine's combinations;
rules validated at load; facts only from the request side; FHIR in and ClaimResponse out; the corpus."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from adapter import MappingTableError, parse_letter
from adapter.cli import main
from adapter.determination import RequestFacts, determine, facts_from_letter, load_rules
from adapter.determination.facts import letter_summary
from adapter.determination.fhir_facts import requested_services
from adapter.determination.rules import fires
from adapter.fhir import case_to_bundle, validate_bundle
from adapter.fhir.response import claim_response
from tests.conftest import CORPUS, LETTERS, ROOT, corpus_truth, needs_corpus

RULES = load_rules()
BY_ID = {r.id: r for r in RULES.rules}
CLINICAL = dict(red_flags=False, neurologic_deficit=False, objective_joint_findings=False, functional_improvement=False,
                surgery_documented=False, hospitalization_documented=False, return_to_work_attempts=False,
                tens_trial_documented=False, surgery_related=False)  # fmt: skip


def facts(category: str, request: str = "a request", **values: Any) -> RequestFacts:
    return RequestFacts(request=request, category=category, **{**CLINICAL, **values})


#: rule id -> (facts it fires on, facts it must not fire on)
CASES: dict[str, tuple[RequestFacts, RequestFacts]] = {
    "surgery-needs-review": (facts("surgery"), facts("consultation")),
    "associated-with-surgery": (facts("surgery-associated"), facts("physical-therapy")),
    "topical-compound-not-recommended": (
        facts("topical-compound", compound_has_not_recommended=True, topical_ingredients=["gabapentin"]),
        facts("topical-compound", compound_has_not_recommended=False, topical_ingredients=["menthol"]),
    ),
    "topical-lidocaine-not-patch": (
        facts("topical", topical_ingredients=["lidocaine"], topical_form="ointment"),
        facts("topical", topical_ingredients=["lidocaine"], topical_form="patch"),
    ),
    "topical-nsaid-without-osteoarthritis": (
        facts("topical", drug_class="nsaid", osteoarthritis_diagnosis=False),
        facts("topical", drug_class="nsaid", osteoarthritis_diagnosis=True),
    ),
    "muscle-relaxant-not-added-to-current": (
        facts("muscle-relaxant", same_drug_class_in_use=True),
        facts("muscle-relaxant", same_drug_class_in_use=False),
    ),
    "muscle-relaxant-beyond-three-weeks": (
        facts("muscle-relaxant", supply_days=30.0),
        facts("muscle-relaxant", supply_days=10.0),
    ),
    "opioid-chronic-without-functional-improvement": (
        facts("opioid", same_drug_class_in_use=True, weeks_since_injury=30.0),
        facts("opioid", same_drug_class_in_use=True, weeks_since_injury=30.0, functional_improvement=True),
    ),
    "spine-imaging-without-nerve-compromise": (facts("mri-spine"), facts("mri-spine", neurologic_deficit=True)),
    "joint-imaging-without-findings": (facts("mri-joint"), facts("mri-joint", objective_joint_findings=True)),
    "other-imaging-without-red-flags": (facts("imaging-other"), facts("imaging-other", red_flags=True)),
    "lower-extremity-nerve-conduction": (
        facts("electrodiagnostic", lower_extremity_nerve_study=True, neurologic_deficit=True),
        facts("electrodiagnostic", lower_extremity_nerve_study=False, neurologic_deficit=True),
    ),
    "electrodiagnostics-without-neurologic-findings": (
        facts("electrodiagnostic", lower_extremity_nerve_study=False),
        facts("electrodiagnostic", lower_extremity_nerve_study=False, neurologic_deficit=True),
    ),
    "lumbar-facet-injection": (
        facts("facet-injection", body_region="lumbar"),
        facts("facet-injection", body_region="cervical"),
    ),
    "epidural-without-radiculopathy": (
        facts("epidural-injection"),
        facts("epidural-injection", neurologic_deficit=True),
    ),
    "passive-modalities": (facts("passive-modality"), facts("physical-therapy")),
    "tens-without-trial": (facts("tens"), facts("tens", tens_trial_documented=True)),
    "therapy-continued-without-functional-improvement": (
        facts("acupuncture", prior_same_therapy=True),
        facts("acupuncture", prior_same_therapy=True, functional_improvement=True),
    ),
    "visit-cap-24": (facts("chiropractic", prior_sessions=24), facts("chiropractic", prior_sessions=23)),
    "manual-therapy-beyond-trial": (
        facts("chiropractic", prior_same_therapy=False, requested_count=8),
        facts("chiropractic", prior_same_therapy=False, requested_count=6),
    ),
    "acupuncture-beyond-trial": (
        facts("acupuncture", prior_same_therapy=False, requested_count=12),
        facts("acupuncture", prior_same_therapy=False, requested_count=6),
    ),
    "physical-therapy-beyond-chronic-course": (
        facts("physical-therapy", requested_count=12, weeks_since_injury=20.0, crps_diagnosis=False),
        facts("physical-therapy", requested_count=12, weeks_since_injury=20.0, crps_diagnosis=True),
    ),
    "acute-therapy-with-functional-improvement": (
        facts(
            "physical-therapy",
            weeks_since_injury=6.0,
            functional_improvement=True,
            prior_same_therapy=True,
            requested_count=8,
        ),
        facts(
            "physical-therapy",
            weeks_since_injury=26.0,
            functional_improvement=True,
            prior_same_therapy=True,
            requested_count=8,
        ),
    ),
    "physical-medicine-frequency": (
        facts("physical-therapy", frequency_per_week=5, duration_weeks=2, requested_count=10),
        facts("physical-therapy", frequency_per_week=3, duration_weeks=2, requested_count=6),
    ),
    "home-health-without-surgery-or-hospitalization": (
        facts("home-health"),
        facts("home-health", surgery_documented=True),
    ),
    "functional-capacity-evaluation-routine": (
        facts("functional-capacity-evaluation"),
        facts("functional-capacity-evaluation", return_to_work_attempts=True),
    ),
    "medication-continued-without-functional-improvement": (
        facts("nsaid", same_drug_class_in_use=True),
        facts("nsaid", same_drug_class_in_use=False),
    ),
    "spine-imaging-in-the-first-month": (
        facts("mri-spine", weeks_since_injury=2.0, neurologic_deficit=True),
        facts("mri-spine", weeks_since_injury=6.0, neurologic_deficit=True),
    ),
    "joint-imaging-in-the-first-month": (
        facts("mri-joint", weeks_since_injury=2.0, objective_joint_findings=True),
        facts("mri-joint", weeks_since_injury=2.0, objective_joint_findings=True, red_flags=True),
    ),
    "routine-examination-components": (facts("testing", request="Jamar grip test"), facts("testing", request="CBC")),
    "urine-drug-test-without-opioids": (
        facts("testing", request="Urine drug screen", opioid_in_use=False),
        facts("testing", request="Urine drug screen", opioid_in_use=True),
    ),
}


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
        if (
            RequestFacts.model_fields[need].annotation is not None
            and getattr(fire, need) is not None
            and need != "request"
        ):
            if isinstance(getattr(fire, need), list):
                continue
            assert not fires(rule, fire.model_copy(update={need: None})), f"{rule_id} fired without {need}"


class TestEngine:
    def test_no_rule_pends(self) -> None:
        answer = determine(facts("other"), RULES)
        assert answer.action == "A4" and not answer.rules and "human" in answer.rationale

    def test_disagreeing_rules_pend(self) -> None:
        both = facts("physical-therapy", weeks_since_injury=6.0, functional_improvement=True, prior_same_therapy=True,
                     requested_count=8, frequency_per_week=4, duration_weeks=2)  # fmt: skip
        answer = determine(both, RULES)
        assert answer.action == "A4"
        assert set(answer.rules) == {"acute-therapy-with-functional-improvement", "physical-medicine-frequency"}
        assert "disagree" in answer.rationale

    def test_modified_certifies_part(self) -> None:
        answer = determine(facts("acupuncture", frequency_per_week=5, duration_weeks=2, requested_count=10), RULES)
        assert (answer.action, answer.certified_quantity) == ("A6", 6.0)
        assert "6 visits (3 a week for 2 weeks) are certified" in answer.rationale

    def test_a_denial_always_cites(self) -> None:
        answer = determine(facts("passive-modality"), RULES)
        assert answer.action == "A3"
        assert answer.citations[0].guideline.startswith("MTUS ACOEM") and answer.citations[0].section
        assert "(MTUS ACOEM Low Back Complaints 2004" in answer.rationale

    def test_deterministic(self) -> None:
        f = facts("mri-spine")
        assert determine(f, RULES) == determine(f, RULES)


class TestRuleTable:
    @pytest.mark.parametrize(
        ("old", "new", "message"),
        [
            ("needs: [tens_trial_documented]", "needs: [tens_trial_written]", "unknown facts"),
            (
                "when: {fact: tens_trial_documented, is: false}",
                "when: {fact: tens_trial_documented, above: 1}",
                "exactly one of",
            ),
            (
                "    action: A3\n    rationale: TENS",
                "    action: A6\n    rationale: TENS",
                "certify goes with action A6",
            ),
            (
                "when: {fact: tens_trial_documented, is: false}",
                "when: {fact: red_flags, is: false}",
                "not listed in needs",
            ),
            ("rationale: TENS is not", "rationale: The {nonsense} TENS is not", "unknown fields"),
        ],
    )
    def test_broken_rules_fail_at_load(self, tmp_path: Path, old: str, new: str, message: str) -> None:
        folder = tmp_path / "mappings"
        shutil.copytree(ROOT / "mappings", folder)
        text = (folder / "rules.yaml").read_text()
        assert old in text
        (folder / "rules.yaml").write_text(text.replace(old, new, 1))
        with pytest.raises(MappingTableError) as raised:
            load_rules(folder)
        assert message in raised.value.message
        assert raised.value.location == str(folder / "rules.yaml")


def _letter_answers(text: str) -> list[tuple[str, list[str], str]]:
    case = parse_letter(text)
    summary = letter_summary(case)
    return [
        (a.action, a.rules, a.rationale)
        for a in (determine(facts_from_letter(case, i, summary), RULES) for i in case.items)
    ]


def _scramble(text: str) -> str:
    """Flip every decision, rewrite every guideline line and rationale: the request side stays as it was."""
    text = re.sub(r"\bUpheld\b", "__X__", text)
    text = re.sub(r"\bOverturned\b", "Upheld", text).replace("__X__", "Overturned")
    text = re.sub(r"(guideline: )[^\n]*", r"\1Decision based on Non-MTUS Citation Something Else 1999.", text)
    return re.sub(r"(Decision rationale: )[^\n]*", r"\1The request is medically necessary and recommended.", text)


@pytest.mark.parametrize("path", sorted(LETTERS.glob("case-number-*.txt")), ids=lambda p: p.name)
def test_decisions_guidelines_and_rationales_do_not_change_the_answer(path: Path) -> None:
    text = path.read_text()
    assert _scramble(text) != text
    assert _letter_answers(_scramble(text)) == _letter_answers(text)


@needs_corpus
def test_corpus_answers_ignore_the_decision_side() -> None:
    for path in sorted((CORPUS / "text").glob("*.txt"))[::4]:
        text = path.read_text()
        assert _letter_answers(_scramble(text)) == _letter_answers(text), path.name


@needs_corpus
def test_corpus_figures() -> None:
    truths = {t["case_number"]: t for t in corpus_truth()}
    pairs = []
    for path in sorted((CORPUS / "text").glob("*.txt")):
        case = parse_letter(path.read_text())
        summary = letter_summary(case)
        for item, truth in zip(case.items, truths[case.case_number]["items"], strict=True):
            pairs.append((determine(facts_from_letter(case, item, summary), RULES).action, truth["decision"]))
    decided = [(a, t) for a, t in pairs if a != "A4"]
    overturned = [a for a, t in pairs if t == "overturned"]
    assert len(decided) / len(pairs) >= 0.50
    assert sum((a == "A3") == (t == "upheld") for a, t in decided) / len(decided) >= 0.95
    assert sum(a == "A3" for a in overturned) / len(overturned) <= 0.10


class TestFHIR:
    @pytest.fixture
    def bundle(self) -> dict[str, Any]:
        return case_to_bundle(parse_letter((LETTERS / "case-number-multi.txt").read_bytes()))

    def test_context_bundle(self, bundle: dict[str, Any]) -> None:
        found = requested_services(bundle)
        assert [r.facts.category for r in found] == [
            "mri-spine",
            "physical-therapy",
            "surgery-associated",
            "muscle-relaxant",
        ]
        therapy = found[1].facts
        assert therapy.prior_sessions == 12 and therapy.prior_same_therapy is True
        assert (therapy.requested_count, therapy.frequency_per_week, therapy.duration_weeks) == (8, 2, 4)
        assert found[0].facts.diagnoses[0] == "lumbar radiculopathy"
        assert found[0].facts.age == 51 and found[0].facts.weeks_since_injury is not None

    def test_service_request_alone_and_medications(self) -> None:
        request = {"resourceType": "ServiceRequest", "id": "sr1", "status": "active", "intent": "order",
                   "subject": {"reference": "Patient/p1"}, "code": {"text": "Cyclobenzaprine 10mg #60"},
                   "note": [{"text": "Current medications include Flexeril and Motrin."}]}  # fmt: skip
        (found,) = requested_services(request)
        assert found.facts.category == "muscle-relaxant" and found.facts.same_drug_class_in_use is True
        answer = determine(found.facts, RULES)
        assert answer.action == "A3" and answer.rules == ["muscle-relaxant-not-added-to-current"]
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": request},
            {"resource": {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                          "medicationCodeableConcept": {"text": "tizanidine 4mg"},
                          "subject": {"reference": "Patient/p1"}}},
        ]}  # fmt: skip
        request["note"] = []
        (found,) = requested_services(bundle)
        assert found.facts.same_drug_class_in_use is True

    def test_pas_claim_bundle_to_claim_response(self, bundle: dict[str, Any], tmp_path: Path) -> None:
        claim = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim")
        pas = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [claim] + [e for e in bundle["entry"] if e is not claim],
        }
        found = requested_services(pas)
        assert len(found) == 4
        answers = [(r.reference, r.resource, determine(r.facts, RULES)) for r in found]
        response = claim_response(answers, patient={"reference": "Patient/p1"}, claim_ref=claim["fullUrl"])
        assert response["outcome"] == "partial"  # two items are pended
        codes = [i["adjudication"][0]["extension"][0]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
                 for i in response["item"]]  # fmt: skip
        assert codes == [a.action for _, _, a in answers]
        notes = {n["number"]: n["text"] for n in response["processNote"]}
        assert all(notes[i["noteNumber"][0]] for i in response["item"])
        validate_bundle({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": response}]})
        schema_file = ROOT.parent / "shared" / "schemas" / "fhir-r4.schema.json"
        if schema_file.exists():
            schema = json.loads(schema_file.read_text())
            assert not list(jsonschema.validators.validator_for(schema)(schema).iter_errors(response))

    def test_modified_answer_has_add_item(self) -> None:
        request = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                   "subject": {"reference": "Patient/p1"}, "code": {"text": "Acupuncture"},
                   "quantityQuantity": {"value": 10},
                   "occurrenceTiming": {"repeat": {"frequency": 5, "period": 1, "periodUnit": "wk",
                                                   "boundsDuration": {"value": 2, "unit": "wk"}}}}  # fmt: skip
        (found,) = requested_services(request)
        answer = determine(found.facts, RULES)
        assert answer.action == "A6"
        response = claim_response([(found.reference, request, answer)], patient=None)
        assert response["addItem"][0]["quantity"] == {"value": 6.0}
        assert response["outcome"] == "complete"

    @pytest.mark.parametrize(
        "bad", [{"resourceType": "Patient"}, {"resourceType": "Bundle", "type": "collection", "entry": []}]
    )
    def test_bad_input(self, bad: dict[str, Any]) -> None:
        from adapter import MappingError

        with pytest.raises(MappingError):
            requested_services(bad)


def test_cli_determine_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                                   "subject": {"reference": "Patient/p1"},
                                   "code": {"text": "Infrared heat to the low back"}}))  # fmt: skip
    broken = tmp_path / "broken.json"
    broken.write_text("{oops")
    code = main(["determine", "--json", str(LETTERS / "case-number-multi.txt"), str(request), str(broken)])
    out, err = capsys.readouterr()
    assert code == 1 and "[input] not JSON" in err
    letter, fhir = (json.loads(line) for line in out.splitlines())
    assert letter["case_number"] == "CM17-0100001" and len(letter["items"]) == 4
    for item in letter["items"] + fhir["items"]:
        assert {"request", "action", "rules", "rationale", "citations"} <= item.keys()
        assert item["action"] in {"A1", "A2", "A3", "A4", "A6"}
    assert fhir["items"][0]["action"] == "A3" and fhir["items"][0]["rules"] == ["passive-modalities"]
    assert main(["determine", str(LETTERS / "maximus-notice.txt")]) == 0
    assert "Determinations" in capsys.readouterr().out
