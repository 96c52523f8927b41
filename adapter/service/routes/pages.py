"""What every page under ``/review`` shares: who is looking, the checks on their forms, and the rendering.

Who: a reviewer of the reviewer table (``adapter.service.reviewers``), signed in with their password or
through the OpenID Connect provider (``signin.py``), holding a signed, short-lived session cookie (HttpOnly,
SameSite=Strict, Secure behind https, never longer than ``service.session_minutes``). Every request reads
the reviewer's record again, so a session ends on every replica at sign-out and as soon as its reviewer is
disabled. A client sending a reviewer's bearer token in the ``Authorization`` header may read the pages,
but a decision on the page names a person, so only a signed-in reviewer decides there. Forms carry a CSRF
token bound to the session, and a POST whose ``Origin`` is another site (or opaque) is refused.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from adapter.service.admission import USER_CONTEXT, Principal
from adapter.service.http import ServiceError
from adapter.service.reviewers import Reviewer, Reviewers
from adapter.service.routes import ServiceContext, context

__all__ = ["SESSION_COOKIE", "SignedIn", "check_csrf", "render", "same_origin", "signed_in", "to_login"]

templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
SESSION_COOKIE = "imr_review"
#: What a signed-in reviewer may do: read and decide review Tasks, read the answers they change.
REVIEWER_SCOPES = "user/Task.read user/Task.write user/ClaimResponse.read"
_ALGORITHM = "HS256"
_PROCESS_SECRET = secrets.token_bytes(32)


@dataclass
class SignedIn:
    """Who is looking at a review page."""

    principal: Principal
    #: The CSRF token of the session (None for a bearer-header client, which needs none).
    csrf: str | None
    #: The session's id, ended at sign-out (None for a bearer-header client).
    session: str | None = None
    #: The reviewer, a person with an NPI (None for a bearer-header client: it reads, it does not decide).
    reviewer: Reviewer | None = None


def secret(ctx: ServiceContext) -> bytes:
    """The key that signs sessions and sign-in cookies: ``service.session_secret`` (the same on every
    replica), else one made by this process."""
    configured = ctx.settings.service.session_secret
    return configured.get_secret_value().encode() if configured else _PROCESS_SECRET


def secure(ctx: ServiceContext) -> bool:
    return ctx.base.startswith("https://")


def principal_of(reviewer: Reviewer) -> Principal:
    """A reviewer as the audit log and the rate limits name them."""
    return Principal.with_scopes(f"NPI {reviewer.npi} {reviewer.name}"[:80], REVIEWER_SCOPES)


def start_session(ctx: ServiceContext, reviewer: Reviewer, method: str) -> tuple[str, int]:
    """(cookie value, lifetime in seconds) of a new session for ``reviewer``, signed in by ``method``
    (``pwd`` or ``oidc``, as OpenID's ``amr``)."""
    moment = int(time.time())
    ends = moment + 60 * ctx.settings.service.session_minutes
    claims = {"sub": reviewer.id, "amr": method, "csrf": secrets.token_urlsafe(24), "jti": secrets.token_urlsafe(16),
              "iat": moment, "exp": ends}  # fmt: skip
    return jwt.encode(claims, secret(ctx), algorithm=_ALGORITHM), ends - moment


def _ended(session: str) -> str:
    """The state key that says a session was signed out."""
    return f"review-session-ended:{session}"


def end_session(ctx: ServiceContext, session: str) -> None:
    """Sign a session out on every replica: the cookie, replayed, signs nobody in."""
    ctx.store.mark(_ended(session))


def signed_in(request: Request, letter: str) -> SignedIn | None:
    """Who is behind the request (the bearer header first, then the session cookie), allowed ``letter`` on
    Tasks; None when nobody is signed in (or the session ended, or its reviewer is disabled); 401/403 for a
    bearer token that is wrong."""
    ctx = context(request)
    if request.headers.get("authorization"):
        return SignedIn(ctx.admission.admit(request, "Task", letter, USER_CONTEXT), None)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        claims = jwt.decode(cookie, secret(ctx), algorithms=[_ALGORITHM],
                            options={"require": ["exp", "sub", "jti", "csrf"]})  # fmt: skip
    except jwt.PyJWTError:
        return None
    session = str(claims["jti"])
    reviewer = Reviewers(ctx.store).get(str(claims["sub"]))
    if reviewer is None or not reviewer.active or ctx.store.claimed(_ended(session)):
        return None  # signed out, or the reviewer was disabled: sign in again
    principal = principal_of(reviewer)
    request.state.principal = principal.name
    ctx.admission.authorise(principal, "Task", letter, None, USER_CONTEXT)
    return SignedIn(principal, str(claims["csrf"]), session, reviewer)


def same_origin(request: Request) -> None:
    """A form posted from another site is refused; so is one from an opaque origin (``Origin: null``: a
    sandboxed frame, a ``data:`` page, a cross-site redirect), which no page of ours sends."""
    origin = request.headers.get("origin")
    if origin and (origin == "null" or urlsplit(origin).netloc != request.headers.get("host")):
        raise ServiceError(403, "a form from another site", code="csrf", issue_type="forbidden")


def check_csrf(request: Request, who: SignedIn, sent: str) -> None:
    same_origin(request)
    if who.csrf is not None and not hmac.compare_digest(who.csrf.encode(), sent.encode()):
        raise ServiceError(403, "the form expired or came from elsewhere: reload the page", code="csrf",
                           issue_type="forbidden")  # fmt: skip


def to_login() -> RedirectResponse:
    return RedirectResponse("/review/login", status_code=303)


def render(request: Request, name: str, who: SignedIn | None, **values: Any) -> HTMLResponse:
    """A review page, with the headers every one carries (a strict CSP, no sniffing, never cached)."""
    response = templates.TemplateResponse(request, name, {"reviewer": who, "csrf": who.csrf if who else None, **values})
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"  # noqa: E501
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response
