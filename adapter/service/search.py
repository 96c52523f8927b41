"""Search parameters as FHIR defines them: dates as ranges at their precision, prefixes, bounded numbers.

``_lastUpdated=2026-11-02`` means the whole day (UTC when no zone is given); ``gt2026-11-02`` means after
that day, ``ge`` from its start, ``lt`` before its start, ``le`` up to its end. Instants with ``Z`` or any
offset are compared as instants, not as text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from adapter.service.http import ServiceError

_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,9}))?)?(?P<z>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_SUPPORTED = ("eq", "gt", "ge", "lt", "le")
MAX_OFFSET = 10_000_000
MAX_COUNT = 100


def _bad(message: str) -> ServiceError:
    return ServiceError(400, message, code="bad-search", issue_type="value")


def _next_month(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.month - 1 + months, 12)
    return moment.replace(year=moment.year + year, month=month + 1)


def _zone(sign: int, hours: int, minutes: int) -> tzinfo:
    if hours > 14 or minutes > 59:
        raise _bad("a time zone offset out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def date_range(value: str) -> tuple[datetime, datetime]:
    """[start, end) of a FHIR date or dateTime search value at its precision."""
    found = _DATE.fullmatch(value)
    if not found:
        raise _bad(f"{value!r} is not a FHIR date or dateTime")
    parts = found.groupdict()
    zone: tzinfo = UTC
    if parts["z"] and parts["z"] != "Z":
        sign = 1 if parts["z"][0] == "+" else -1
        hours, minutes = int(parts["z"][1:3]), int(parts["z"][4:6])
        zone = _zone(sign, hours, minutes)
    fraction = parts["f"] or ""
    try:
        start = datetime(
            int(parts["y"]),
            int(parts["m"] or 1),
            int(parts["d"] or 1),
            int(parts["H"] or 0),
            int(parts["M"] or 0),
            int(parts["S"] or 0),
            int((fraction + "000000")[:6]),
            tzinfo=zone,
        )
    except ValueError as exc:
        raise _bad(f"{value!r} is not a valid date: {exc}") from exc
    if parts["m"] is None:
        end = start.replace(year=start.year + 1)
    elif parts["d"] is None:
        end = _next_month(start, 1)
    elif parts["H"] is None:
        end = start + timedelta(days=1)
    elif parts["S"] is None:
        end = start + timedelta(minutes=1)
    elif not fraction:
        end = start + timedelta(seconds=1)
    else:
        end = start + timedelta(microseconds=max(1, 10 ** (6 - min(6, len(fraction)))))
    return start, end


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def last_updated_bounds(values: list[str]) -> list[tuple[str, int]]:
    """(operator, microseconds) bounds for the store from every ``_lastUpdated`` value (all must hold)."""
    bounds: list[tuple[str, int]] = []
    for value in values:
        prefix, date = (value[:2], value[2:]) if value[:2].isalpha() else ("eq", value)
        if prefix not in _SUPPORTED:
            raise _bad(f"_lastUpdated prefix {prefix!r} is not supported (use one of {', '.join(_SUPPORTED)})")
        start, end = date_range(date)
        low, high = _micros(start), _micros(end)
        bounds += {
            "eq": [("ge", low), ("lt", high)],
            "gt": [("ge", high)],
            "ge": [("ge", low)],
            "lt": [("lt", low)],
            "le": [("lt", high)],
        }[prefix]
    return bounds


def number(value: str | None, name: str, *, default: int, low: int, high: int, clamp: bool = False) -> int:
    """A non-negative whole-number parameter within [low, high]: 400 beyond, or brought within it (``clamp``,
    as ``_count`` is: a server may return fewer than asked)."""
    if value is None:
        return default
    if not value.isdigit() or not value.isascii() or len(value) > 9:
        raise _bad(f"{name} must be a whole number from {low} to {high}")
    parsed = int(value)
    if clamp:
        return max(low, min(high, parsed))
    if not low <= parsed <= high:
        raise _bad(f"{name} must be a whole number from {low} to {high}")
    return parsed
