"""The reviewer table: the physician reviewers who may sign in to the review page and decide.

Each reviewer is a person with a name and an NPI (its check digit right), and signs in either with a
password kept here (hashed with argon2id; the embedded default, ``imr-adapter reviewer add``) or through the
OpenID Connect provider the settings name, as the subject (``sub``) recorded for them. A disabled reviewer
cannot sign in, and the sessions they hold end (every page checks the record). Rows are kept in the
service's state database beside the audit log, which records who added and disabled whom.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Row, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from adapter.errors import ReviewerError, StateError
from adapter.npi import npi_problem
from adapter.review.person import Person
from adapter.service.schema import reviewers
from adapter.service.state import Store, now

__all__ = ["MIN_PASSWORD", "Reviewer", "Reviewers", "check_name", "check_npi"]

#: The shortest password the reviewer table takes (NIST SP 800-63B asks at least 8; a reviewer signs denials).
MIN_PASSWORD = 12
#: The longest: argon2 takes any length, a sign-in form should not.
MAX_PASSWORD = 1024
_HASHER = PasswordHasher()
#: Verified when nobody has the login given, so that an unknown login takes as long as a wrong password.
_ABSENT = _HASHER.hash(uuid.uuid4().hex)


@dataclass(frozen=True)
class Reviewer:
    """One row of the reviewer table (never the password hash)."""

    id: str
    npi: str
    name: str
    email: str | None
    subject: str | None
    created: str
    disabled: str | None
    has_password: bool = False

    @property
    def active(self) -> bool:
        return self.disabled is None

    @property
    def person(self) -> Person:
        return Person(self.npi, self.name)


def check_npi(npi: str) -> str:
    """The NPI, trimmed, or ``ReviewerError`` saying what is wrong with it."""
    npi = npi.strip()
    if problem := npi_problem(npi):
        raise ReviewerError(f"{problem}: {npi[:20]!r}", location="npi")
    return npi


def check_name(name: str) -> str:
    """A reviewer's name as decisions show it: 1 to 200 printable characters."""
    name = " ".join(name.split())
    if not name or len(name) > 200 or not name.isprintable():
        raise ReviewerError("a reviewer's name is 1 to 200 printable characters", location="name")
    return name


def _check_email(email: str | None) -> str | None:
    if email is None:
        return None
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not (local and at and "." in domain) or len(email) > 254 or any(c.isspace() for c in email):
        raise ReviewerError(f"not an email address: {email[:60]!r}", location="email")
    return email


def _taken() -> ReviewerError:
    return ReviewerError("a reviewer with that NPI, email or sign-in subject is already recorded")


def _check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ReviewerError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters", location="password")
    return password


def _reviewer(row: Row[Any]) -> Reviewer:
    return Reviewer(row.id, row.npi, row.name, row.email, row.subject, row.created, row.disabled,
                    row.password is not None)  # fmt: skip


class Reviewers:
    """The reviewer table in the service's state database (each call one transaction)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(
        self,
        *,
        npi: str,
        name: str,
        email: str | None = None,
        password: str | None = None,
        subject: str | None = None,
        who: str = "cli",
    ) -> Reviewer:
        """Record a reviewer; ``ReviewerError`` for an NPI failing its check, a bad name, email or password,
        or an NPI, email or subject someone already has."""
        row = {
            "id": str(uuid.uuid4()),
            "npi": check_npi(npi),
            "name": check_name(name),
            "email": _check_email(email),
            "password": _HASHER.hash(_check_password(password)) if password is not None else None,
            "subject": subject.strip() if subject and subject.strip() else None,
            "created": now(),
        }
        taken = or_(reviewers.c.npi == row["npi"], *(reviewers.c[k] == row[k] for k in ("email", "subject") if row[k]))
        try:
            with self.store.transaction() as db:
                if db.execute(select(reviewers.c.id).where(taken)).first() is not None:
                    raise _taken()
                db.execute(insert(reviewers).values(**row))
        except StateError as exc:
            if isinstance(exc.__cause__, IntegrityError):  # another process recorded the same one meanwhile
                raise _taken() from exc
            raise
        self.store.audit(who, "reviewer add", f"NPI {row['npi']}", "created")
        found = self.get(str(row["id"]))
        assert found is not None  # just recorded
        return found

    def all(self) -> list[Reviewer]:
        """Every reviewer, by name."""
        with self.store.transaction() as db:
            return [_reviewer(r) for r in db.execute(select(reviewers).order_by(reviewers.c.name, reviewers.c.npi))]

    def get(self, reviewer_id: str) -> Reviewer | None:
        with self.store.transaction() as db:
            row = db.execute(select(reviewers).where(reviewers.c.id == reviewer_id)).first()
        return _reviewer(row) if row is not None else None

    def by_npi(self, npi: str) -> Reviewer | None:
        with self.store.transaction() as db:
            row = db.execute(select(reviewers).where(reviewers.c.npi == npi.strip())).first()
        return _reviewer(row) if row is not None else None

    def by_subject(self, subject: str) -> Reviewer | None:
        with self.store.transaction() as db:
            row = db.execute(select(reviewers).where(reviewers.c.subject == subject)).first()
        return _reviewer(row) if row is not None else None

    def link(self, reviewer_id: str, subject: str) -> None:
        """Record the OpenID Connect subject a reviewer (who had none) signs in as."""
        with self.store.transaction() as db:
            db.execute(update(reviewers).where(reviewers.c.id == reviewer_id, reviewers.c.subject.is_(None))
                       .values(subject=subject))  # fmt: skip

    def disable(self, npi: str, *, who: str = "cli") -> Reviewer:
        """Disable a reviewer by NPI (kept, for the decisions that name them); ``ReviewerError`` when there
        is no such reviewer. Disabling one already disabled changes nothing."""
        npi = check_npi(npi)
        with self.store.transaction() as db:
            db.execute(update(reviewers).where(reviewers.c.npi == npi, reviewers.c.disabled.is_(None))
                       .values(disabled=now()))  # fmt: skip
            row = db.execute(select(reviewers).where(reviewers.c.npi == npi)).first()
        if row is None:
            raise ReviewerError(f"no reviewer has the NPI {npi}", location="npi")
        self.store.audit(who, "reviewer disable", f"NPI {npi}", "disabled")
        return _reviewer(row)

    def sign_in(self, login: str, password: str) -> Reviewer | None:
        """The active reviewer whose NPI or email is ``login`` and whose password this is, else None (in the
        same time whether the login is unknown or the password wrong). An outdated hash is renewed."""
        login = login.strip().lower()[:254]
        with self.store.transaction() as db:
            row = db.execute(select(reviewers).where(or_(reviewers.c.npi == login, reviewers.c.email == login))).first()
        stored = row.password if row is not None and row.password else _ABSENT
        try:
            _HASHER.verify(stored, password[:MAX_PASSWORD])
        except (VerificationError, InvalidHashError):
            return None
        if row is None or stored is _ABSENT or row.disabled is not None:
            return None
        if _HASHER.check_needs_rehash(stored):
            with self.store.transaction() as db:
                db.execute(update(reviewers).where(reviewers.c.id == row.id).values(password=_HASHER.hash(password)))
        return _reviewer(row)
