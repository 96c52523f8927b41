"""When a pended request must be decided: a jurisdiction's review clocks, counted in business days that skip
weekends and its holidays, as its table under ``mappings/jurisdictions/`` says (California's, by default:
``mappings/jurisdictions/california.yaml``, 8 CCR 9792.9.1). On the ground floor because the review Tasks, the
documentation requests (``adapter.fhir.attachments``) and the review page all count them; the table they count
with is the review policy's (``adapter.review.policy``), chosen by the setting ``review.jurisdiction``.

    standard       end of the 5th business day after the day of receipt
    expedited      72 hours after receipt
    retrospective  end of the 30th calendar day after the day of receipt
    information    standard, once information is asked for: end of the 14th day after the day of receipt

Days are the jurisdiction's (California's: America/Los_Angeles), whatever zone the receipt time was written in.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path
from string import Formatter
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from adapter.config import DEFAULT_JURISDICTION, jurisdiction_path
from adapter.tables import DEFAULT_MAPPINGS, TableFile, load_table, mappings

__all__ = [
    "Clock",
    "DeadlineTable",
    "Wording",
    "clock_of",
    "deadline_table",
    "due",
    "information_due",
    "is_business_day",
    "jurisdiction_file",
]

_WEEKDAYS = {name: n for n, name in enumerate(calendar.day_name)}
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class Clock(StrEnum):
    STANDARD = "standard"
    EXPEDITED = "expedited"
    RETROSPECTIVE = "retrospective"


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClockRule(_Table):
    business_days: int | None = Field(default=None, gt=0)
    hours: int | None = Field(default=None, gt=0)
    days: int | None = Field(default=None, gt=0)
    source: str

    @model_validator(mode="after")
    def _one_measure(self) -> ClockRule:
        if sum(v is not None for v in (self.business_days, self.hours, self.days)) != 1:
            raise ValueError("a clock runs in exactly one of business_days, hours, days")
        return self


class Holiday(_Table):
    """A fixed date (``month``/``day``, moved off a weekend as ``sunday_to_monday`` / ``saturday_to_friday``
    say), the ``nth`` weekday of a month (-1: the last), or a list of ``dates``."""

    name: str
    month: int | None = Field(default=None, ge=1, le=12)
    day: int | None = Field(default=None, ge=1, le=31)
    weekday: Weekday | None = None
    nth: int | None = Field(default=None, ge=-1, le=5)
    dates: list[date] = Field(default_factory=list)
    sunday_to_monday: bool = False
    saturday_to_friday: bool = False

    @model_validator(mode="after")
    def _one_form(self) -> Holiday:
        fixed = self.month is not None and self.day is not None and self.weekday is None
        weekday = self.month is not None and self.weekday is not None and self.nth not in (None, 0)
        listed = bool(self.dates) and self.month is None
        if fixed + weekday + listed != 1:
            raise ValueError("a holiday is a month and day, a month with weekday and nth, or a list of dates")
        return self

    def on(self, year: int) -> list[date]:
        """The days this holiday is observed in ``year``."""
        if self.dates:
            return [d for d in self.dates if d.year == year]
        assert self.month is not None
        if self.weekday is not None and self.nth is not None:
            days = [d for d in calendar.Calendar().itermonthdates(year, self.month)
                    if d.month == self.month and d.weekday() == _WEEKDAYS[self.weekday.title()]]  # fmt: skip
            return [days[self.nth - 1 if self.nth > 0 else -1]]
        assert self.day is not None
        day = date(year, self.month, self.day)
        if day.weekday() == 6 and self.sunday_to_monday:
            return [day + timedelta(days=1)]
        if day.weekday() == 5 and self.saturday_to_friday:
            return [day - timedelta(days=1)]
        return [day]


class Wording(_Table):
    """What the jurisdiction's rules are said in: to the provider (a pended item's rationale) and on the review
    page and the demo."""

    #: Who may decide an adverse recommendation, and under which law.
    who_decides: str
    #: Where the due dates come from and which days they skip.
    due_dates: str
    #: What opens the rationale of an adverse recommendation pended for a physician (``{label}``: the
    #: recommendation, "not certified" or "modified").
    pended: str

    @field_validator("pended")
    @classmethod
    def _labelled(cls, value: str) -> str:
        fields = {name for _, name, _, _ in Formatter().parse(value) if name is not None}
        if fields != {"label"}:
            raise ValueError("the pended words name the recommendation as {label}, and nothing else in braces")
        return value


class DeadlineTable(_Table):
    name: str
    time_zone: str
    clocks: dict[Clock, ClockRule]
    #: The standard clock once the reviewer asks for information (a documentation request).
    information: ClockRule
    wording: Wording
    expedited_priorities: list[str]
    holidays: list[Holiday]
    _years: dict[int, dict[date, str]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> DeadlineTable:
        missing = set(Clock) - set(self.clocks)
        if missing:
            raise ValueError(f"no rule for the clocks {sorted(missing)}")
        ZoneInfo(self.time_zone)  # an unknown zone fails here, at load
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def observed(self, year: int) -> dict[date, str]:
        """The state holidays observed in ``year``: day -> name (worked out once per year)."""
        if year not in self._years:
            self._years[year] = {day: h.name for h in self.holidays for day in h.on(year)}
        return self._years[year]


@cache
def jurisdiction_file(name: str) -> TableFile[DeadlineTable]:
    """The shipped table of the jurisdiction ``name`` (``mappings/jurisdictions/<name>.yaml``)."""
    return TableFile(f"jurisdictions/{name}.yaml", DeadlineTable)


def deadline_table(jurisdiction: str = DEFAULT_JURISDICTION, folder: Path = DEFAULT_MAPPINGS) -> DeadlineTable:
    """The deadlines table the setting ``review.jurisdiction`` names: a jurisdiction shipped under ``folder``
    (read once, as every table) or the path of a table of the same shape (``MappingTableError`` naming
    ``file:line`` when it is broken)."""
    path = jurisdiction_path(jurisdiction)
    if path is None:
        return mappings(folder)[jurisdiction_file(jurisdiction)]
    return load_table(path, DeadlineTable)


def is_business_day(day: date, table: DeadlineTable) -> bool:
    return day.weekday() < 5 and day not in table.observed(day.year)


def due(received: datetime, clock: Clock, table: DeadlineTable) -> datetime:
    """The instant a decision is due (in the jurisdiction's time) for a request received at ``received``."""
    return _end(received, table.clocks[clock], table)


def information_due(received: datetime, table: DeadlineTable) -> datetime:
    """When a decision is due once the information reasonably necessary was asked for (the table's
    ``information`` clock; California: the end of the 14th day after the day of receipt)."""
    return _end(received, table.information, table)


def _end(received: datetime, rule: ClockRule, table: DeadlineTable) -> datetime:
    zone = table.zone
    local = received.astimezone(zone) if received.tzinfo else received.replace(tzinfo=zone)
    if rule.hours is not None:
        return local + timedelta(hours=rule.hours)
    day = local.date()
    if rule.days is not None:
        day += timedelta(days=rule.days)
    else:
        assert rule.business_days is not None
        counted = 0
        while counted < rule.business_days:
            day += timedelta(days=1)
            counted += is_business_day(day, table)
    return datetime.combine(day, time(23, 59, 59), tzinfo=zone)


def _before(value: Any, received: datetime) -> bool:
    """Whether a FHIR date or dateTime lies before the day of receipt."""
    try:
        return date.fromisoformat(str(value)[:10]) < received.date()
    except ValueError:
        return False


def clock_of(request: Mapping[str, Any], received: datetime, *, claim: Mapping[str, Any] | None = None,
             item: Mapping[str, Any] | None = None, table: DeadlineTable) -> Clock:  # fmt: skip
    """The clock a requested service runs on: expedited for a stat or urgent Claim or request; retrospective
    when the service was given before the request was received; else standard."""
    priorities = [str((claim or {}).get("priority", {}).get("coding", [{}])[0].get("code", "")),
                  str(request.get("priority", ""))]  # fmt: skip
    if any(p in table.expedited_priorities for p in priorities):
        return Clock.EXPEDITED
    item = item or {}
    given = [
        item.get("servicedDate"),
        (item.get("servicedPeriod") or {}).get("end"),
        request.get("occurrenceDateTime"),
        (request.get("occurrencePeriod") or {}).get("end"),
    ]
    if any(value and _before(value, received) for value in given):
        return Clock.RETROSPECTIVE
    return Clock.STANDARD
