"""What a pended request is asked for (adapter/determination/documentation.py): the criteria the guideline names
for the kind of service come first, in its order; a criterion of diagnoses is asked for when no diagnosis it
names is documented; what the records state is not asked for again."""

from __future__ import annotations

from adapter.determination import RULES as RULE_TABLE
from adapter.determination import Context, Text, build_facts, determine
from adapter.determination.documentation import DOCUMENTATION, MOST, lacking
from adapter.tables import mappings

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
