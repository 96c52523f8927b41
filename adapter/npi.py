"""National Provider Identifiers: the NPI system and the check CMS specifies for the number.

An NPI is ten digits, the first 1 or 2, the last a Luhn check digit computed over the other nine behind
the prefix 80840 (the ISO 7812 issuer prefix for US health care; CMS, "Requirements for the NPI check
digit"). A reviewer's NPI is checked wherever one enters: the reviewer table, an OpenID Connect claim and a
decision sent as a FHIR Task.
"""

from __future__ import annotations

__all__ = ["NPI_SYSTEM", "npi_check_digit", "npi_problem"]

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
#: The card issuer prefix CMS puts before the nine digits when computing the check digit.
_PREFIX = "80840"


def npi_check_digit(first_nine: str) -> int:
    """The Luhn check digit of ``80840`` followed by the NPI's first nine digits."""
    total = 0
    for position, digit in enumerate(reversed(_PREFIX + first_nine)):
        value = int(digit) * (2 if position % 2 == 0 else 1)  # the digit beside the check digit is doubled
        total += value - 9 if value > 9 else value
    return (10 - total % 10) % 10


def npi_problem(value: str) -> str | None:
    """Why ``value`` is not an NPI, in words a reviewer understands, or None when it is one."""
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        return "an NPI is ten digits"
    if value[0] not in "12":
        return "an NPI starts with 1 or 2"
    if npi_check_digit(value[:9]) != int(value[9]):
        return "that NPI's check digit is wrong (a digit mistyped?)"
    return None
