"""Collecting the fields a parser could not read, so that the case says so instead of guessing."""

from __future__ import annotations

from datetime import date

from adapter.model import CaseDates, ParseWarning


class Warnings(list[ParseWarning]):
    """The warnings of one letter, in the order they were found."""

    def add(self, field: str, message: str) -> None:
        self.append(ParseWarning(field=field, message=message))

    def date(self, field: str, value: date | None, present: bool) -> date | None:
        """Pass a date through, noting why it is missing when it is."""
        if value is None:
            self.add(field, "label present but the date could not be read" if present else "not stated")
        return value

    def dates(self, dates: CaseDates) -> CaseDates:
        """Note every date the layout normally states but that is missing here."""
        for name, value in dates.model_dump().items():
            if value is None:
                self.add(f"dates.{name}", "not stated")
        return dates
