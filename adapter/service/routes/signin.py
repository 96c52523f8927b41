"""Signing in to the review page and out of it: a reviewer of the reviewer table with their password (the
embedded default), or through the OpenID Connect provider of ``service.oidc`` (authorization code with PKCE),
and sign-out. Each way ends in the same session (``pages.start_session``), naming the reviewer's record.

The password form carries a nonce bound to a cookie (no sign-in from another site's form), every password
sign-in counts against the client address's failed-authentication rate before its password is verified (an
argon2 verification is made costly on purpose), and an unknown login costs the same time as a wrong
password. The provider's answer must come back to the browser that asked (state and PKCE verifier in a
signed, ten-minute, SameSite=Lax cookie: Lax, as the provider's redirect back is a cross-site navigation).
Nothing a link carries is shown on the sign-in page but an OAuth error code.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from typing import Annotated
from urllib.parse import urlsplit

import jwt
from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from adapter.config import OIDCSettings
from adapter.errors import ReviewerError
from adapter.npi import npi_problem
from adapter.service.admission import too_many
from adapter.service.http import ServiceError
from adapter.service.oidc import Identity, OIDCProvider, Pending, provider
from adapter.service.reviewers import MAX_PASSWORD, Reviewer, Reviewers
from adapter.service.routes import Capability, ServiceContext, context
from adapter.service.routes.pages import (
    SESSION_COOKIE,
    check_csrf,
    end_session,
    principal_of,
    render,
    same_origin,
    secret,
    secure,
    signed_in,
    start_session,
    to_login,
)

router = APIRouter(prefix="/review", include_in_schema=False)
CAPABILITY = Capability()  # pages for people: nothing for the CapabilityStatement
LOGIN_COOKIE = "imr_login"
OIDC_COOKIE = "imr_oidc"
CALLBACK = "/review/login/oidc/callback"
#: An OAuth 2.0 error code as providers send them (``access_denied``, ``login_required``).
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")
#: Seconds a sign-in through the provider may take, from the redirect to its return.
_OIDC_MINUTES = 10


def _provider(ctx: ServiceContext) -> tuple[OIDCProvider, OIDCSettings]:
    """The configured provider (its redirect URI on this service's public origin), or 404 when none is."""
    settings = ctx.settings.service.oidc
    if settings is None:
        raise ServiceError(404, "no OpenID Connect provider is configured", code="not-found", issue_type="not-found")
    parts = urlsplit(ctx.base)
    return provider(settings, f"{parts.scheme}://{parts.netloc}{CALLBACK}"), settings


def _signed_in(ctx: ServiceContext, request: Request, reviewer: Reviewer, method: str, to: Response) -> Response:
    """``to`` with the new session's cookie set (and the sign-in cookies cleared)."""
    cookie, lifetime = start_session(ctx, reviewer, method)
    request.state.principal = principal_of(reviewer).name
    to.set_cookie(SESSION_COOKIE, cookie, max_age=lifetime, httponly=True, samesite="strict", path="/",
                  secure=secure(ctx))  # fmt: skip
    to.delete_cookie(LOGIN_COOKIE, path="/review")
    to.delete_cookie(OIDC_COOKIE, path="/review/login")
    return to


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


def _login_page(request: Request, error: str | None = None, login: str = "") -> HTMLResponse:
    """The sign-in page, with a new form nonce; ``error`` and ``login`` are the service's own (never taken
    from the URL, so that nobody can put words on it with a link)."""
    ctx = context(request)
    nonce = secrets.token_urlsafe(24)
    oidc = ctx.settings.service.oidc
    response = render(request, "login.html", None, nonce=nonce, error=error, login=login[:254],
                      oidc=oidc.label if oidc else None)  # fmt: skip
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=600, httponly=True, samesite="strict", path="/review",
                        secure=secure(ctx))  # fmt: skip
    return response


@router.post("/login")
def login(
    request: Request,
    login: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=MAX_PASSWORD)],
    csrf: Annotated[str, Form(max_length=100)],
) -> Response:
    """Sign in with the reviewer table: the NPI (or email) and the password."""
    ctx = context(request)
    same_origin(request)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not hmac.compare_digest(nonce.encode(), csrf.encode()):
        raise ServiceError(403, "the sign-in form expired: reload it", code="csrf", issue_type="forbidden")
    wait = ctx.admission.failures.take(ctx.admission.address(request))
    if wait:
        raise too_many(wait)
    reviewer = Reviewers(ctx.store).sign_in(login, password)
    if reviewer is None:
        login = login.strip()
        hint = f" ({npi_problem(login)})" if login.isdigit() and npi_problem(login) else ""
        return _login_page(request, error=f"That NPI or email and password do not match an active reviewer{hint}.",
                          login=login)  # fmt: skip
    return _signed_in(ctx, request, reviewer, "pwd", RedirectResponse("/review", status_code=303))


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=100)]) -> Response:
    who = signed_in(request, "r")
    if who is not None:
        check_csrf(request, who, csrf)
        if who.session is not None:
            end_session(context(request), who.session)
    response = to_login()
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- OpenID Connect -------------------------------------------------------------------------------------


@router.get("/login/oidc")
def oidc_start(request: Request) -> Response:
    """Off to the provider: its authorization URL, with the state, nonce and PKCE verifier kept in a signed
    cookie for the return."""
    ctx = context(request)
    found, _ = _provider(ctx)
    try:
        url, pending = found.start()
    except ReviewerError as exc:
        return _login_page(request, error=f"Signing in through the provider failed: {exc.message}.")
    claims = {"state": pending.state, "nonce": pending.nonce, "verifier": pending.verifier,
              "exp": int(time.time()) + 60 * _OIDC_MINUTES}  # fmt: skip
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(OIDC_COOKIE, jwt.encode(claims, secret(ctx), algorithm="HS256"), max_age=60 * _OIDC_MINUTES,
                        httponly=True, samesite="lax", path="/review/login", secure=secure(ctx))  # fmt: skip
    return response


@router.get("/login/oidc/callback")
def oidc_callback(
    request: Request,
    code: Annotated[str, Query(max_length=2048)] = "",
    state: Annotated[str, Query(max_length=512)] = "",
    error: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Back from the provider: the code exchanged, the ID token checked, the reviewer it names signed in.
    The session cookie is SameSite=Strict, which a browser does not send on a redirect chain that began at
    the provider: the answer is a page that moves on to the queue itself."""
    ctx = context(request)
    found, settings = _provider(ctx)
    try:
        carried = jwt.decode(request.cookies.get(OIDC_COOKIE, ""), secret(ctx), algorithms=["HS256"],
                             options={"require": ["exp", "state", "nonce", "verifier"]})  # fmt: skip
    except jwt.PyJWTError:
        return _login_page(request, error="That sign-in expired or began elsewhere: sign in again.")
    if error or not code:
        said = error if _ERROR_CODE.fullmatch(error) else "no code" if not error else "an error"
        return _login_page(request, error=f"The sign-in provider did not sign you in ({said}).")
    try:
        identity = found.finish(code, state, Pending(carried["state"], carried["nonce"], carried["verifier"]))
        reviewer = _reviewer_of(Reviewers(ctx.store), settings, identity)
    except ReviewerError as exc:
        return _login_page(request, error=f"Signing in through the provider failed: {exc.message}.")
    onward = render(request, "continue.html", None)
    return _signed_in(ctx, request, reviewer, "oidc", onward)


def _reviewer_of(table: Reviewers, settings: OIDCSettings, identity: Identity) -> Reviewer:
    """The active reviewer an OpenID Connect identity is: the one recorded with its subject; else, when the
    provider asserts an NPI (``npi_claim``), the reviewer with that NPI (the subject then recorded for them),
    or a new one with that NPI and the name claim. ``ReviewerError`` for anyone else."""
    asserted = str(identity.claims.get(settings.npi_claim) or "").strip() if settings.npi_claim else ""
    reviewer = table.by_subject(identity.subject)
    if reviewer is None and asserted:
        reviewer = table.by_npi(asserted)
        if reviewer is None:
            name = str(identity.claims.get(settings.name_claim) or "")
            reviewer = table.add(npi=asserted, name=name, subject=identity.subject, who="oidc")
        elif reviewer.subject is None:
            table.link(reviewer.id, identity.subject)
        else:
            raise ReviewerError(f"the reviewer with NPI {asserted} signs in as another account")
    if reviewer is None:
        raise ReviewerError("no reviewer is recorded for this account (imr-adapter reviewer add --subject)")
    if asserted and asserted != reviewer.npi:
        raise ReviewerError("the provider's NPI for this account is not the reviewer record's")
    if not reviewer.active:
        raise ReviewerError("this reviewer is disabled")
    return reviewer
