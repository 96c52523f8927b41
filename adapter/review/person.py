"""The physician reviewer as a person: the name and NPI of the reviewer's record, and how a decision names
them in FHIR (a Practitioner with that name and NPI, contained in the Task and the ClaimResponse it decides).

The page never asks a reviewer for an NPI: the person comes from who is signed in, so a decision made on the
page always names someone who is known, with an NPI whose check digit is right.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapter.npi import NPI_SYSTEM
from adapter.types import JSON

#: The id of the contained Practitioner in a decided Task and its ClaimResponse.
PRACTITIONER_ID = "reviewer"


@dataclass(frozen=True)
class Person:
    """A physician reviewer: their NPI (checked when the record was made) and their name."""

    npi: str
    name: str

    @property
    def identifier(self) -> JSON:
        return {"system": NPI_SYSTEM, "value": self.npi}

    def practitioner(self) -> JSON:
        """The reviewer as a Practitioner to contain (``#reviewer``)."""
        return {"resourceType": "Practitioner", "id": PRACTITIONER_ID, "identifier": [self.identifier],
                "name": [{"text": self.name}]}  # fmt: skip

    def reference(self) -> JSON:
        """A reference to the contained Practitioner that also carries the NPI (searchable as
        ``owner:identifier``) and the name (for a reader who does not resolve it)."""
        return {"reference": f"#{PRACTITIONER_ID}", "type": "Practitioner", "identifier": self.identifier,
                "display": self.name}  # fmt: skip


def contain(resource: JSON, person: Person) -> None:
    """Put the reviewer's Practitioner among ``resource``'s contained resources (replacing an earlier one)."""
    kept = [c for c in resource.get("contained", []) if not (isinstance(c, dict) and c.get("id") == PRACTITIONER_ID)]
    resource["contained"] = [*kept, person.practitioner()]
