"""Text helpers: dates, quantities, citations, ages."""

from __future__ import annotations

import re
from datetime import date

import pytest

from adapter.letters import _text
from adapter.model import Gender, GuidelineBasis


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10/13/2016", date(2016, 10, 13)), ("10-13-16", date(2016, 10, 13)), ("7/1/2014", date(2014, 7, 1)),
        ("December 21, 2016", date(2016, 12, 21)), ("02/30/2017", None), ("13/01/2017", None), ("soon", None),
    ],
)  # fmt: skip
def test_parse_date(text: str, expected: date | None) -> None:
    assert _text.parse_date(text) == expected


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("12", 12), ("twelve", 12), ("twenty-four", 24), ("twenty four", 24), ("a dozen", 12), ("half-a-dozen", 6),
        ("one hundred forty", 140), ("a hundred", 100), ("one hundred and five", 105), ("two-hundred twelve", 212),
        ("one hundred twice", None), ("a hundred dozen", None), ("several", None),
    ],
)  # fmt: skip
def test_counts_read_in_digits_or_words(words: str, expected: int | None) -> None:
    """A count as notes write it, to the hundreds ("flexion from ninety to one hundred forty degrees"): its value,
    and the whole of it read as one count, not "one" before "hundred"."""
    assert _text.to_int(words) == expected
    assert bool(re.fullmatch(_text.NUMBER, words, re.IGNORECASE)) == (expected is not None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Physical therapy 2x4 for the lumbar spine", (8, 2, 4, "lumbar spine")),
        ("Physical therapy 2 times per week for 4 weeks", (8, 2, 4, None)),
        ("Eight physical therapy sessions for the right knee", (8, None, None, "right knee")),
        ("Chiropractic two times a week for six weeks (12 sessions)", (12, 2, 6, None)),
        ("Norco 10/325mg #60", (60, None, None, None)),
        (
            "Acupuncture for the cervical and thoracic spine, 12 sessions",
            (12, None, None, "cervical and thoracic spine"),
        ),
        ("MRI of the left shoulder", (None, None, None, "left shoulder")),
        ("Lidocaine 5% patch", (None, None, None, None)),
    ],
)
def test_quantities(text: str, expected: tuple[int | None, int | None, int | None, str | None]) -> None:
    assert _text.quantities(text) == expected


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ("The injured worker is a 32 year old female with", (32, Gender.FEMALE)),
        ("This case involves a now 46-year-old male with", (46, Gender.MALE)),
        ("The patient is a 44 years old male with an injury", (44, Gender.MALE)),
        ("The claimant is a 60-year-old\nwoman who", (60, Gender.FEMALE)),
        ("The worker, 51 years old, reports", (51, None)),
        ("The worker, 51 years old, reports that she fell. Her pain is 6/10.", (51, Gender.FEMALE)),
        ("A 51 year old worker. He fell; her supervisor saw it. His pain is 6/10.", (51, None)),
        ("No demographics here.", (None, None)),
    ],
)
def test_age_and_gender(summary: str, expected: tuple[int | None, Gender | None]) -> None:
    assert _text.age_and_gender(summary) == expected


def test_citations_with_titles_holding_commas() -> None:
    found = _text.citations(
        "Decision based on MTUS Neck and Upper Back Complaints 2004, Section(s): Initial Care, and Forearm, "
        "Wrist, and Hand Complaints 2004, Section(s): Physical Methods, and Low Back Complaints 2004, "
        "Section(s): Physical Methods. Decision based on Non-MTUS Citation Official Disability Guidelines (ODG) "
        "Neck and Upper Back, Manipulation."
    )
    assert [(c.mtus, c.title, c.sections) for c in found] == [
        (True, "Neck and Upper Back Complaints", ["Initial Care"]),
        (True, "Forearm, Wrist, and Hand Complaints", ["Physical Methods"]),
        (True, "Low Back Complaints", ["Physical Methods"]),
        (False, "Official Disability Guidelines (ODG)", ["Neck and Upper Back", "Manipulation"]),
    ]
    assert _text.guideline_basis("", found) is GuidelineBasis.MTUS


def test_basis_outside_mtus_without_a_parsable_citation() -> None:
    line = "The Expert Reviewer based their decision on recommendation(s) outside of the MTUS Guidelines."
    assert _text.guideline_basis(line, _text.citations(line)) is GuidelineBasis.NON_MTUS


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ("The Request for Authorization dated 11-16-2016 was for an MRI.", date(2016, 11, 16)),
        ("A Request for Authorization was signed on 10/28/2016.", date(2016, 10, 28)),
        ("An October 31, 2016 date of service was referenced in the determination.", date(2016, 10, 31)),
        ("The RFA form was received on 12/01/2016 for the requested services.", date(2016, 12, 1)),
        ("A Request for Authorization was not provided.", None),
    ],
)
def test_request_date(summary: str, expected: date | None) -> None:
    assert _text.request_date(summary) == expected


def test_treatment_history_counts_what_was_had_of_what_was_authorized() -> None:
    (fact,) = _text.treatment_history("He has completed 8 of 12 authorized physical therapy sessions.")
    assert (fact.therapy, fact.count) == ("physical therapy", 8)
    (fact,) = _text.treatment_history("She has had 12 sessions of physical therapy.")
    assert fact.count == 12


def test_treatment_history_gives_a_count_in_a_note_naming_no_care_to_the_care_it_is_a_note_of() -> None:
    """A therapist's note counts visits without naming its own therapy ("Re-eval: 6 of 6 certified visits
    completed"): the caller says whose note it is; a letter's summary names none, and its bare counts stay no one's,
    as do those of a note that names care of its own."""
    note = "Re-eval: SLR negative. Completed 6 of 6 certified visits; ODI 38% -> 22%."
    assert _text.treatment_history(note) == []
    (fact,) = _text.treatment_history(note, unnamed="physical therapy")
    assert (fact.therapy, fact.count) == ("physical therapy", 6)
    chiropractor = "Chiropractic notes: completed 6 of 6 certified visits."
    (fact,) = _text.treatment_history(chiropractor, unnamed="physical therapy")
    assert fact.therapy == "chiropractic"


def test_treatment_history_does_not_count_care_asked_for() -> None:
    """A count of care requested or recommended is not care had (a PAS request would carry it as a completed
    Procedure): only the sessions given are history."""
    assert _text.treatment_history("The physician is requesting Synvisc injections x3 for the right knee.") == []
    (fact,) = _text.treatment_history("She has had 12 sessions of PT; the provider recommends 8 sessions of PT.")
    assert (fact.therapy, fact.count) == ("physical therapy", 12)
    (fact,) = _text.treatment_history("After 8 post-op OT visits her grip is 40 lb.")
    assert (fact.therapy, fact.count) == ("occupational therapy", 8)


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ("Prior care: chiropractic care, 8 visits in 2023, with no lasting benefit.", [("chiropractic", 8)]),
        ("She started acupuncture in March. 10 sessions so far.", [("acupuncture", 10)]),
        ("Two dozen PT visits were authorized and completed after the knee repair.", [("physical therapy", 24)]),
        ("He has used six of the eight certified acupuncture visits.", [("acupuncture", 6)]),
        ("Completed 8 sessions to date. Physical therapy notes show ROM gains.", [("physical therapy", 8)]),
        ("Six acupuncture sessions for the low back were authorized in 2023.", []),
        ("The request is for eight sessions of physical therapy.", []),
        ("S/p right L5-S1 TFESI in March with 60% relief.", [("epidural steroid injection", 1)]),
        ("The prior L4-5 ESI gave about 50% relief.", []),
        (
            "2 subacromial CSIs to date; a series of 3 Euflexxa injections in 2023.",
            [("joint injection", 2), ("joint injection", 3)],
        ),
        (
            "Therapy to date: acupuncture #8, which helped. OT 5 of 8 visits done.",
            [("acupuncture", 8), ("occupational therapy", 5)],
        ),
        ("Finish the remaining 4 of 12 PT sessions (8 done).", [("physical therapy", 8)]),
        ("Plan: shoulder arthroscopy once authorized, then post-op PT 12 visits.", []),
        ("PT 12/12 completed; HEP ongoing.", [("physical therapy", 12)]),
        ("Six sessions of aquatic therapy were authorized, only four of them attended.", [("aquatic therapy", 4)]),
        (
            "No change after the first two chiropractic visits, yet after six visits he sits longer.",
            [("chiropractic", 2), ("chiropractic", 6)],
        ),
        ("PT re-eval. Visits: 14. LEFS 40 -> 58.", [("physical therapy", 14)]),
        ("Chiropractic daily note, visit #5 of 8.", [("chiropractic", 5)]),
        ("PT plan: 2x/wk. Visits: 2x/wk x 4 wks.", []),
        ("PT: Sessions: 12 authorized.", []),
    ],
)
def test_treatment_history_reads_counts_as_notes_write_them(summary: str, expected: list[tuple[str, int]]) -> None:
    """A count beside its therapy after a comma or in brackets, one "so far" or "to date" whose therapy the text
    names elsewhere, a course authorized and then completed, one of the units certified: had; a grant or a
    request alone: not."""
    assert [(f.therapy, f.count) for f in _text.treatment_history(summary)] == expected


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ("She completed 12 sessions of physical therapy, then 6 more in the spring.", 6),
        ("Had 8 chiropractic visits in 2023 and another four this year, then 2 more in May.", 6),
        ("She had 10 sessions of physical therapy plus a further 4 at another clinic.", 4),
        ("She had 10 sessions of physical therapy plus 6 acupuncture sessions.", 0),
        ("She completed 12 sessions of physical therapy, and 6 more are requested.", 0),
        ("She completed 12 sessions of physical therapy, and a further 6 approved in May remain unused.", 0),
    ],
)
def test_further_count_adds_the_more_of_the_same_care_that_followed(summary: str, expected: int) -> None:
    """What followed a course in its sentence ("then 6 more", "and another four") adds to it; other care, care
    still to come or granted and unused does not."""
    first = _text.treatment_history(summary)[0]
    assert _text.further_count(summary, first) == expected
