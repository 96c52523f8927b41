"""Hypothesis strategies: arbitrary (but valid) IMR cases, for round-trip tests."""

from __future__ import annotations

from hypothesis import strategies as st

from adapter.model import (
    CaseDates,
    Decision,
    DisputedItem,
    Gender,
    GuidelineBasis,
    GuidelineCitation,
    IMRCase,
    Layout,
    LetterSource,
    ParseWarning,
    Patient,
    Priority,
    Reviewer,
    TreatmentFact,
)

# FHIR strings: no whitespace but space, tab, CR, LF; nothing else below U+0020; no surrogates; never empty.
_CONTROLS = "".join(chr(c) for c in range(32) if chr(c) not in "\t\r\n")
text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Zl", "Zp"), blacklist_characters=_CONTROLS + "\x85\xa0"),
    min_size=1,
    max_size=30,
).filter(lambda s: not s.isspace() and all(c in " \t\r\n" or not c.isspace() for c in s))
count = st.integers(min_value=0, max_value=2_147_483_647)
positive = st.integers(min_value=1, max_value=2_147_483_647)
optional_text = st.none() | text

citations = st.builds(
    GuidelineCitation,
    mtus=st.booleans(),
    title=optional_text,
    edition_year=st.none() | st.integers(min_value=1900, max_value=2100),
    sections=st.lists(text, max_size=3),
    pages=st.lists(st.integers(min_value=1, max_value=999), max_size=3),
)
items = st.builds(
    DisputedItem,
    request=text,
    decision=st.sampled_from(Decision),
    guideline_basis=st.sampled_from(GuidelineBasis),
    maximus_guideline=optional_text,
    citations=st.lists(citations, max_size=2),
    claims_administrator_guideline=optional_text,
    claims_administrator_citations=st.lists(citations, max_size=2),
    rationale=optional_text,
    original_request=optional_text,
    authorized=optional_text,
    quantity=st.none() | count,
    frequency_per_week=st.none() | positive,
    duration_weeks=st.none() | count,
    body_site=optional_text,
)
sources = st.one_of(
    st.builds(LetterSource, media_type=st.just("text/plain"), text=text, pdf=st.none()),
    st.builds(LetterSource, media_type=st.just("application/pdf"), text=text, pdf=st.binary(min_size=1, max_size=64)),
)


@st.composite
def cases(draw: st.DrawFn) -> IMRCase:
    source = draw(st.none() | sources)
    number = draw(st.none() | text) if source is not None else draw(text)
    return IMRCase(
        case_number=number,
        layout=draw(st.sampled_from(Layout)),
        dates=draw(st.builds(CaseDates, **{f: st.none() | st.dates() for f in CaseDates.model_fields})),
        priority=draw(st.none() | st.sampled_from(Priority)),
        patient=draw(
            st.builds(Patient, age=st.none() | st.integers(0, 120), gender=st.none() | st.sampled_from(Gender))
        ),
        reviewer=draw(st.builds(Reviewer, licensure=st.lists(text, max_size=3), specialty=st.lists(text, max_size=3))),
        diagnoses=draw(st.lists(text, max_size=3)),
        treatment_history=draw(st.lists(st.builds(TreatmentFact, therapy=text, count=positive, text=text), max_size=2)),
        items=draw(st.lists(items, min_size=1, max_size=4)),
        warnings=draw(st.lists(st.builds(ParseWarning, field=text, message=text), max_size=2)),
        source=source,
    )
