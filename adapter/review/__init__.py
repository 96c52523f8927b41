"""Physician review of pended items: review Tasks and the physician's decision (their due dates are
``adapter.deadlines``, by the jurisdiction's table the review policy holds: ``adapter.review.policy``)."""

from adapter.review.tasks import Decision, ReviewTask, apply_decision, read_decision, review_tasks

__all__ = [
    "Decision",
    "ReviewTask",
    "apply_decision",
    "read_decision",
    "review_tasks",
]
