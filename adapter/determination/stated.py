"""Facts a provider states in answer to a documentation criterion's questionnaire (``adapter.fhir.questionnaires``):
each stands for its fact over what the clinical text reads, with the answer as its quote.

A documentation fact (present, absent or unknown) is answered yes (present) or no (stated absent), a diagnosis yes
or no, a count with its number; a question left unanswered leaves the fact as the text has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from adapter.determination.evidence import Finding
from adapter.determination.facts import STATUS_FACTS, RequestFacts

#: How a fact is answered: yes or no (a documentation fact or a diagnosis), or a whole number (a count).
Kind = Literal["boolean", "integer"]


def answer_kind(fact: str) -> Kind | None:
    """How a request fact is answered (None: it is not one a provider states)."""
    field = RequestFacts.model_fields.get(fact)
    if field is None:
        return None
    if fact in STATUS_FACTS or field.annotation == bool | None:
        return "boolean"
    return "integer" if field.annotation == int | None else None


class Stated(BaseModel):
    """One fact as a provider's answer states it: its value, the words it rests on and where they came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fact: str
    value: bool | int
    quote: str
    source: str


def with_stated(facts: RequestFacts, stated: Sequence[Stated]) -> RequestFacts:
    """The facts with what the answers state in place of what the text read (the later answer to a fact last)."""
    if not stated:
        return facts
    update: dict[str, object] = {}
    evidence = dict(facts.evidence)
    for answer in stated:
        status = "present" if answer.value else "absent"
        update[answer.fact] = status if answer.fact in STATUS_FACTS else answer.value
        if isinstance(answer.value, bool):
            evidence[answer.fact] = Finding(fact=answer.fact, status=status, quote=answer.quote, source=answer.source)
    return facts.model_copy(update={**update, "evidence": evidence})
