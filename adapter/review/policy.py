"""The jurisdiction seam: the rules physician review follows where the adapter runs, resolved once from the
settings at the entry point (``serve``, the sync worker, ``determine``, the demo) and handed down.

    deadlines  the review clocks, holidays and time zone (``review.jurisdiction``: a table shipped under
               ``mappings/jurisdictions/``, California's by default, or the path of one)
    adverse    whether an adverse recommendation goes to a physician (``determination.adverse``), and in what
               words its rationale says so (the table's ``wording.pended``)
    wording    what the review page and the demo say of who decides and by when (the table's ``wording``)

A new jurisdiction is its table and the setting naming it; nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapter.config import Settings
from adapter.deadlines import DeadlineTable, Wording, deadline_table
from adapter.determination.engine import AdverseMode, AdversePolicy

__all__ = ["DEFAULT_POLICY", "Policy", "review_policy"]


@dataclass(frozen=True)
class Policy:
    """A jurisdiction's review policy: its deadlines table and what becomes of an adverse recommendation."""

    deadlines: DeadlineTable
    #: "pend": an adverse recommendation goes to a physician; "decide": it goes out as it is.
    mode: AdverseMode = "pend"

    @property
    def wording(self) -> Wording:
        return self.deadlines.wording

    @property
    def adverse(self) -> AdversePolicy:
        """The engine's adverse policy: the mode, in the jurisdiction's words."""
        return AdversePolicy(self.mode, self.wording.pended)


def review_policy(settings: Settings) -> Policy:
    """The review policy the settings name; ``MappingTableError`` naming ``file:line`` when the jurisdiction's
    table is broken (the entry points resolve it at start-up, not at the first request)."""
    return Policy(deadline_table(settings.review.jurisdiction), settings.determination.adverse)


#: The default settings' policy (California's, adverse recommendations pended), for callers given none.
DEFAULT_POLICY = Policy(deadline_table())
