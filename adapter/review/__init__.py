"""Physician review of pended items: review Tasks, their due dates and the physician's decision."""

from adapter.review.deadlines import Clock, clock_of, due, load_deadlines
from adapter.review.tasks import Decision, ReviewTask, apply_decision, read_decision, review_tasks

__all__ = [
    "Clock",
    "Decision",
    "ReviewTask",
    "apply_decision",
    "clock_of",
    "due",
    "load_deadlines",
    "read_decision",
    "review_tasks",
]
