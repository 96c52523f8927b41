"""The review actions (X12 306, HCR01): what a review decides for one requested service.

One enum for every layer that names an action: the guideline rules and the engine (recommendation and action),
the PAS ClaimResponse (``reviewAction``), the review Tasks, the R5 mapping, the CLI and the demo report. It lives
on the ground floor so that none of them needs another's module to say "A4".
"""

from __future__ import annotations

from enum import StrEnum


class ReviewAction(StrEnum):
    """X12 306 (HCR01) review actions, as PAS carries them on ``ClaimResponse.item.adjudication``."""

    CERTIFIED = "A1"
    PARTIAL = "A2"
    NOT_CERTIFIED = "A3"
    PENDED = "A4"
    MODIFIED = "A6"

    @property
    def label(self) -> str:
        """What the action means, in words."""
        return _LABELS[self]

    @property
    def display(self) -> str:
        """The X12 display of the code."""
        return _DISPLAYS[self]

    @property
    def adverse(self) -> bool:
        """Not certified or modified: where the jurisdiction says so, only a physician may decide these
        (California: Labor Code 4610)."""
        return self in (ReviewAction.NOT_CERTIFIED, ReviewAction.MODIFIED)

    @property
    def certifies(self) -> bool:
        """Whether the action authorises some care (an authorization number and period go with it)."""
        return self in (ReviewAction.CERTIFIED, ReviewAction.PARTIAL, ReviewAction.MODIFIED)

    @property
    def decision_r5(self) -> str:
        """The R5 claim-decision code (http://terminology.hl7.org/CodeSystem/claim-decision)."""
        return _R5[self]

    @property
    def task_status(self) -> str:
        """The status of the EHR Task that reports it: on-hold while pended, else completed (a non-certification
        too: the review was done, its answer is the businessStatus; ``rejected`` would say the performer
        refused the task)."""
        return "on-hold" if self is ReviewAction.PENDED else "completed"

    @property
    def colour(self) -> str:
        """How reports show it (a hex colour both rich and HTML understand)."""
        return _COLOURS[self]


_LABELS = {
    "A1": "certified",
    "A2": "certified in part",
    "A3": "not certified",
    "A4": "pended for review",
    "A6": "modified",
}
_DISPLAYS = {
    "A1": "Certified in total",
    "A2": "Certified - partial",
    "A3": "Not Certified",
    "A4": "Pended",
    "A6": "Modified",
}
_R5 = {"A1": "approved", "A2": "partial", "A3": "denied", "A4": "pending", "A6": "partial"}
_COLOURS = {"A1": "#1b7f3b", "A2": "#1b7f3b", "A3": "#b3261e", "A4": "#285ea8", "A6": "#a86b00"}
