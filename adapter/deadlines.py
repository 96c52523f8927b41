"""When a pended request must be decided: California's utilization-review clocks, counted in business days
that skip weekends and the state holidays of ``mappings/deadlines.yaml``. On the ground floor because the
review Tasks, the documentation requests (``adapter.fhir.attachments``) and the review page all count them.

    standard       end of the 5th business day after the day of receipt
    expedited      72 hours after receipt
    retrospective  end of the 30th calendar day after the day of receipt

Days are California's (America/Los_Angeles), whatever zone the receipt time was written in.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from adapter.tables import TableFile, mappings

__all__ = ["DEADLINES", "Clock", "DeadlineTable", "clock_of", "due", "is_business_day"]

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


class DeadlineTable(_Table):
    time_zone: str
    clocks: dict[Clock, ClockRule]
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


DEADLINES = TableFile("deadlines.yaml", DeadlineTable)


def is_business_day(day: date, table: DeadlineTable | None = None) -> bool:
    return day.weekday() < 5 and day not in (table or mappings()[DEADLINES]).observed(day.year)


def due(received: datetime, clock: Clock, table: DeadlineTable | None = None) -> datetime:
    """The instant a decision is due (in California time) for a request received at ``received``."""
    table = table or mappings()[DEADLINES]
    zone = table.zone
    local = received.astimezone(zone) if received.tzinfo else received.replace(tzinfo=zone)
    rule = table.clocks[clock]
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
             item: Mapping[str, Any] | None = None, table: DeadlineTable | None = None) -> Clock:  # fmt: skip
    """The clock a requested service runs on: expedited for a stat or urgent Claim or request; retrospective
    when the service was given before the request was received; else standard."""
    table = table or mappings()[DEADLINES]
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
