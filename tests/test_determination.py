"""Determination end to end: facts only from the request side, the letters and the corpus answered alike
through the CLI and through PAS, time counted to the request, a request without a record, modified requests,
and the documentation a pended item names. The rules themselves: test_rules.py; opioids: test_mme.py;
postsurgical courses: test_postsurgical.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from adapter import MappingTableError, parse_letter
from adapter.cli import main
from adapter.determination import (
    AdversePolicy,
    Context,
    Text,
    build_facts,
    determine,
    determine_all,
    facts_from_letter,
)
from adapter.determination.documentation import to_ask
from adapter.determination.facts import letter_summary
from adapter.fhir import case_to_bundle, validate_bundle
from adapter.fhir.build import pas_bundle
from adapter.fhir.pas import review_action_code
from adapter.fhir.request_facts import requested_services
from adapter.fhir.response import Parties, claim_response
from adapter.tables import mappings
from tests.conftest import CORPUS, LETTERS, ROOT, RULES, corpus_truth, facts, needs_corpus, replace_once

A, P, U = "absent", "present", "unknown"


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
    """Safety first on real letters: no A3 leaves the adapter, no overturned item is recommended A3, and what
    is recommended mostly agrees with the IMR. Coverage is low by design: silence never denies."""
    truths = {t["case_number"]: t for t in corpus_truth()}
    answers = []
    for path in sorted((CORPUS / "text").glob("*.txt")):
        case = parse_letter(path.read_text())
        summary = letter_summary(case)
        for item, truth in zip(case.items, truths[case.case_number]["items"], strict=True):
            answers.append((determine(facts_from_letter(case, item, summary), RULES), truth["decision"]))
    assert not [a for a, _ in answers if a.action == "A3"]
    recommended = [(a.recommendation, t) for a, t in answers if a.recommendation != "A4"]
    overturned = [a.recommendation for a, t in answers if t == "overturned"]
    assert len(recommended) / len(answers) >= 0.12
    assert sum((r == "A3") == (t == "upheld") for r, t in recommended) / len(recommended) >= 0.85
    assert sum(r == "A3" for r in overturned) / len(overturned) <= 0.10


class TestFHIR:
    @pytest.fixture
    def bundle(self) -> dict[str, Any]:
        return case_to_bundle(parse_letter((LETTERS / "case-number-multi.txt").read_bytes()))

    def test_context_bundle(self, bundle: dict[str, Any]) -> None:
        # beside ServiceRequests, a MedicationRequest is a drug taken (its request goes in a PAS Claim)
        found = requested_services(bundle)
        assert [r.facts.category for r in found] == ["mri-spine", "physical-therapy", "surgery-associated"]
        assert "cyclobenzaprine" in found[0].facts.medications
        therapy = found[1].facts
        assert therapy.prior_sessions == 12 and therapy.prior_same_therapy == "present"
        assert (therapy.requested_count, therapy.frequency_per_week, therapy.duration_weeks) == (8, 2, 4)
        assert found[0].facts.diagnoses[0] == "lumbar radiculopathy"
        assert found[0].facts.age == 51 and found[0].facts.weeks_since_injury is not None

    def test_service_request_alone_and_medications(self) -> None:
        request = {"resourceType": "ServiceRequest", "id": "sr1", "status": "active", "intent": "order",
                   "subject": {"reference": "Patient/p1"}, "code": {"text": "Cyclobenzaprine 10mg #60"},
                   "note": [{"text": "Current medications include Flexeril and Motrin."}]}  # fmt: skip
        (found,) = requested_services(request)
        assert found.facts.category == "muscle-relaxant" and found.facts.same_drug_class_in_use == "present"
        answer = determine(found.facts, RULES)
        assert answer.recommendation == "A3" and answer.rules == ["muscle-relaxant-not-added-to-current"]
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": request},
            {"resource": {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                          "medicationCodeableConcept": {"text": "tizanidine 4mg"},
                          "subject": {"reference": "Patient/p1"}}},
        ]}  # fmt: skip
        request["note"] = []
        (found,) = requested_services(bundle)
        assert found.facts.same_drug_class_in_use == "present"

    def test_pas_claim_bundle_to_claim_response(self, tmp_path: Path) -> None:
        pas = pas_bundle(parse_letter((LETTERS / "case-number-multi.txt").read_bytes()))
        claim = pas["entry"][0]
        found = requested_services(pas)
        assert [r.resource["resourceType"] for r in found] == [
            "ServiceRequest", "ServiceRequest", "ServiceRequest", "MedicationRequest"
        ]  # fmt: skip
        assert [r.sequence for r in found] == [1, 2, 3, 4]
        answers = [(r, determine(r.facts, RULES)) for r in found]
        parties = Parties(patient=claim["resource"]["patient"], claim=claim["fullUrl"])
        response = claim_response(answers, parties=parties)
        assert response["outcome"] == "partial"  # two items are pended
        assert [review_action_code(i["adjudication"]) for i in response["item"]] == [a.action for _, a in answers]
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
        answer = determine(found.facts, RULES, adverse=AdversePolicy("decide"))
        assert answer.action == "A6"
        response = claim_response([(found, answer)])
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
    first = fhir["items"][0]
    assert (first["recommendation"], first["action"], first["rules"]) == ("A3", "A4", ["passive-modalities"])
    assert main(["determine", str(LETTERS / "maximus-notice.txt")]) == 0
    assert "Determinations" in capsys.readouterr().out


def test_time_is_counted_to_the_request_for_authorization() -> None:
    """A letter's time since injury runs to the RFA the summary names (not to the later UR decision), and a
    date outside the injury..decision span is not taken for it."""
    text = (LETTERS / "case-number-multi.txt").read_text()
    case = parse_letter(text)
    decided = facts_from_letter(case, case.items[0]).weeks_since_injury
    assert decided is not None
    anchor = "The current diagnoses"

    def weeks(sentence: str) -> float | None:
        letter = parse_letter(text.replace(anchor, f"{sentence} {anchor}", 1))
        return facts_from_letter(letter, letter.items[0]).weeks_since_injury

    assert weeks("A Request for Authorization dated 08-28-2016 was received.") == 2.0
    assert weeks("A Request for Authorization dated 08-28-2013 was received.") == decided


def test_a_request_with_no_clinical_record_is_decided_only_by_its_own_counts_doses_and_limits() -> None:
    """Nothing to read, nothing to certify or deny on documentation: an NSAID with no record of the drugs in use
    or an EMG with no examination pends; a compound the guideline never recommends is still not certified."""
    rules = RULES
    for request in ("Naproxen 550 mg #60", "EMG/NCV of the bilateral upper extremities", "Acupuncture 6 sessions"):
        facts = build_facts(request, Context())
        assert not facts.documented
        assert determine(facts, rules).recommendation == "A4", request
    compound = build_facts("Topical compound flurbiprofen 20%, cyclobenzaprine 10% cream", Context())
    answer = determine(compound, rules)
    assert answer.recommendation == "A3" and answer.rules == ["topical-compound-not-recommended"]
    noted = build_facts("Naproxen 550 mg #60", Context(texts=[Text("note", "Medications: ibuprofen 800 mg tid.")]))
    assert noted.documented and determine(noted, rules).rules == ["nsaid-added-to-another-nsaid"]


def test_a_modified_request_is_held_to_the_limit_as_a_whole() -> None:
    """12 massage visits asked, 4 authorized, 8 disputed: the guideline's 6 apply to the whole request, so 2 more
    are supported, not 6; and a letter's modified request carries the original count and the authorized part."""
    answer = determine(
        facts("physical-therapy", request="Massage therapy 2 times a week for 6 weeks", requested_count=12,
              authorized_count=4),
        RULES,
    )  # fmt: skip
    assert (answer.recommendation, answer.certified_quantity) == ("A6", 2.0)
    case = parse_letter((LETTERS / "case-number-modified.txt").read_text())
    found = facts_from_letter(case, case.items[0])
    assert (found.request, found.requested_count, found.authorized_count) == (
        "Chiropractic manipulation for the cervical spine 6 sessions",
        12,
        6,
    )


@pytest.mark.parametrize("letter", sorted(p.name for p in LETTERS.glob("*.txt")))
def test_a_pas_request_carries_the_clinical_text_and_is_decided_as_the_letter_is(letter: str) -> None:
    """convert --pas sends the case summary as a clinical note (a DocumentReference with the text inline,
    referenced from Claim.supportingInfo), so $submit reads what the letter path reads: the same evidence and
    the same recommendation for every item."""
    case = parse_letter((LETTERS / letter).read_bytes())
    bundle = pas_bundle(case)
    claim = bundle["entry"][0]["resource"]
    notes = {
        e["fullUrl"]: e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DocumentReference"
    }
    if letter_summary(case):
        assert any(i["valueReference"]["reference"] in notes for i in claim["supportingInfo"])
    rules = RULES
    summary = letter_summary(case)
    by_letter = determine_all([facts_from_letter(case, i, summary) for i in case.items], rules)
    by_pas = determine_all([r.facts for r in requested_services(bundle)], rules)
    assert [d.recommendation for d in by_pas] == [d.recommendation for d in by_letter]
    assert [{(e.fact, e.status) for e in d.evidence} for d in by_pas] == [
        {(e.fact, e.status) for e in d.evidence} for d in by_letter
    ]


def test_a_pended_item_names_what_its_records_lack() -> None:
    """Physical therapy after earlier visits with nothing on function: pended, asking first for the functional
    improvement (LOINC 47420-5) a rule needs; a request with no quantity asks for it; decided items ask
    nothing (an NSAID added to another, recommended not certified, is decided where adverse = "decide"); what the
    records already state is not asked for again."""
    visits = build_facts("Physical therapy 2 times a week for 6 weeks for the low back",
                         Context(texts=[Text("note", "She has had 12 sessions of physical therapy.")]))  # fmt: skip
    answer = determine(visits, RULES)
    assert answer.recommendation == "A4"
    first = answer.documentation[0]
    assert first.criterion == "functional-improvement" and "47420-5" in first.loinc and first.question
    assert len(answer.documentation) <= 3
    # only what would decide is asked of the provider; the guideline's other criteria are the physician's to see
    assert [n.criterion for n in to_ask(answer.documentation)] == ["functional-improvement"]
    assert "home-exercise-rationale" in [n.criterion for n in answer.documentation]
    mri = build_facts("MRI of the lumbar spine", Context(texts=[Text("note", "No fever, no bowel or bladder change.")]))
    needs = determine(mri, RULES).documentation
    asked = [n.criterion for n in needs]
    assert "neurologic-deficit" in asked and "red-flags" not in asked  # red flags are stated absent
    # the neurologic examination decides it (imaging without nerve compromise); conservative care would not
    assert [n.criterion for n in to_ask(needs)] == ["neurologic-deficit"] and len(needs) > 1
    knee = build_facts("Right knee arthroscopic meniscectomy", Context(texts=[Text("note", "Knee pain.")]))
    assert (knee_needs := determine(knee, RULES).documentation) and to_ask(knee_needs) == knee_needs
    decided = build_facts("Naproxen 550 mg #60", Context(texts=[Text("note", "Medications: ibuprofen 800 mg tid.")]))
    assert determine(decided, RULES, adverse=AdversePolicy("decide")).documentation == []


def test_the_documentation_table_is_checked_at_load(mappings_copy: Path) -> None:
    from adapter.determination.documentation import DOCUMENTATION

    replace_once(mappings_copy / "documentation.yaml", 'loinc: ["47420-5", "11506-3"]', 'loinc: ["47420-6"]')
    with pytest.raises(MappingTableError, match="LOINC"):
        mappings(mappings_copy)[DOCUMENTATION]
