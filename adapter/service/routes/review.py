"""The review page at ``/review``: the open review Tasks by due date, a Task with its evidence, and a form
to decide it. Server-rendered (Jinja2), served by the same app as the FHIR API and deciding through the
same code as ``PUT /fhir/Task/{id}``.

Who: the reviewer's bearer token in the ``Authorization`` header, or a session cookie set by the login
form (the token checked once, then a signed, short-lived session: HttpOnly, SameSite=Strict, Secure
behind https; never longer than the token that made it, ended at sign-out on every replica, and ended when
its static token is removed). Forms carry a CSRF token bound to the session (the login form one bound to a nonce
cookie), and a POST whose ``Origin`` is another site is refused.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import jwt
from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from adapter.errors import AdapterError
from adapter.review.tasks import (
    DECISIONS,
    NPI_SYSTEM,
    REVIEW_SYSTEM,
    decision_of,
    due_of,
    first_input,
    inputs,
    recommendation_of,
    response_of,
    sequence_of,
)
from adapter.service.admission import USER_CONTEXT, Principal
from adapter.service.http import ServiceError
from adapter.service.routes import ServiceContext, context
from adapter.service.routes.tasks import decide_task, stored_task
from adapter.tables import load_tables
from adapter.types import JSON

router = APIRouter(prefix="/review", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
SESSION_COOKIE = "imr_review"
LOGIN_COOKIE = "imr_login"
_ALGORITHM = "HS256"
_PROCESS_SECRET = secrets.token_bytes(32)
LICENCE_SYSTEM = "urn:imr-adapter:reviewer-licence"
#: Open reviews a page of the queue shows.
QUEUE_PAGE = 50


# --- who is looking -------------------------------------------------------------------------------------


@dataclass
class Reviewer:
    principal: Principal
    #: The CSRF token of the session (None for a bearer-header client, which needs none).
    csrf: str | None
    #: The session's id, ended at sign-out (None for a bearer-header client).
    session: str | None = None


def _secret(ctx: ServiceContext) -> bytes:
    configured = ctx.settings.service.session_secret
    return configured.get_secret_value().encode() if configured else _PROCESS_SECRET


def _session(ctx: ServiceContext, principal: Principal) -> tuple[str, int]:
    """(cookie value, its lifetime in seconds) for a signed-in reviewer: never longer than the token that made
    it, nor than ``service.session_minutes``."""
    moment = int(time.time())
    ends = moment + 60 * ctx.settings.service.session_minutes
    if principal.expires is not None:
        ends = min(ends, int(principal.expires))
    scopes = " ".join(f"{s.context}/{s.resource}.{s.permissions}" for s in principal.scopes if not s.query)
    claims = {"sub": principal.name, "scope": scopes, "csrf": secrets.token_urlsafe(24),
              "jti": secrets.token_urlsafe(16), "iat": moment, "exp": ends}  # fmt: skip
    return jwt.encode(claims, _secret(ctx), algorithm=_ALGORITHM), max(0, ends - moment)


def _ended(session: str) -> str:
    """The state key that says a session was signed out."""
    return f"review-session-ended:{session}"


def _reviewer(request: Request, letter: str) -> Reviewer | None:
    """The reviewer behind the request (header first, then the session cookie), allowed ``letter`` on
    Tasks; None when nobody is signed in; 401/403 for a token or session that is wrong."""
    ctx = context(request)
    if request.headers.get("authorization"):
        principal = ctx.admission.admit(request, "Task", letter, USER_CONTEXT)
        return Reviewer(principal, None)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        claims = jwt.decode(cookie, _secret(ctx), algorithms=[_ALGORITHM],
                            options={"require": ["exp", "sub", "jti"]})  # fmt: skip
    except jwt.PyJWTError:
        return None
    name, session = str(claims["sub"]), str(claims["jti"])
    if (name.startswith("token:") and not ctx.admission.configured(name)) or ctx.store.claimed(_ended(session)):
        return None  # signed out, or its token was removed: sign in again
    principal = Principal.with_scopes(name, str(claims.get("scope", "")))
    request.state.principal = principal.name
    ctx.admission.authorise(principal, "Task", letter, None, USER_CONTEXT)
    return Reviewer(principal, str(claims.get("csrf", "")), session)


def _same_origin(request: Request) -> None:
    """A form posted from another site is refused; so is one from an opaque origin (``Origin: null``: a
    sandboxed frame, a ``data:`` page, a cross-site redirect), which no page of ours sends."""
    origin = request.headers.get("origin")
    if origin and (origin == "null" or urlsplit(origin).netloc != request.headers.get("host")):
        raise ServiceError(403, "a form from another site", code="csrf", issue_type="forbidden")


def _check_csrf(request: Request, reviewer: Reviewer, sent: str) -> None:
    _same_origin(request)
    if reviewer.csrf is not None and not hmac.compare_digest(reviewer.csrf.encode(), sent.encode()):
        raise ServiceError(403, "the form expired or came from elsewhere: reload the page", code="csrf",
                           issue_type="forbidden")  # fmt: skip


def _to_login() -> RedirectResponse:
    return RedirectResponse("/review/login", status_code=303)


def _secure(ctx: ServiceContext) -> bool:
    return ctx.base.startswith("https://")


# --- what is shown --------------------------------------------------------------------------------------


def _left(due: datetime, now: datetime) -> tuple[str, bool]:
    """("2 days 4 h left" or "overdue by 3 h", overdue?)."""
    seconds = int((due - now).total_seconds())
    hours, days = abs(seconds) // 3600, abs(seconds) // 86400
    span = f"{days} day{'s' * (days != 1)} {hours % 24} h" if days else f"{hours} h {abs(seconds) // 60 % 60} min"
    return (f"overdue by {span}", True) if seconds < 0 else (f"{span} left", False)


def _who(patient: JSON) -> str:
    """A patient as a reviewer reads it: the member id when known, else the reference or display."""
    identifier = patient.get("identifier") or {}
    if identifier.get("value"):
        return f"member {identifier['value']}"
    return str(patient.get("reference") or patient.get("display") or "unknown")


def _summary(task: JSON, now: datetime) -> JSON:
    due = due_of(task)
    left, overdue = _left(due, now)
    return {
        "id": task["id"],
        "service": first_input(task, "requested-service") or "requested service",
        "patient": _who(task.get("for") or {}),
        "due": due.strftime("%a %d %b %Y, %H:%M %Z"),
        "left": left,
        "overdue": overdue,
        "clock": first_input(task, "clock") or "standard",
        "recommendation": recommendation_of(task),
        "status": task["status"],
    }


def _evidence(response: JSON, sequence: int) -> list[JSON]:
    """The item's evidence (fact, status, quote, source) from the ClaimResponse's evidence extensions."""
    url = load_tables().fhir.extensions.evidence
    item: JSON = next((i for i in response.get("item", []) if i.get("itemSequence") == sequence), {})
    found = []
    for extension in item.get("extension", []):
        if extension.get("url") == url:
            parts = {p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in extension["extension"]}
            found.append(parts)
    return found


def _highlighted(documents: list[tuple[str, str]], evidence: list[JSON]) -> list[JSON]:
    """Each clinical text as segments, the evidence quotes marked (with their fact and status)."""
    out = []
    for source, text in documents:
        marks: list[tuple[int, int, JSON]] = []
        segments: list[JSON] = []
        for found in evidence:
            quote = str(found.get("quote") or "")
            start = text.find(quote) if quote and found.get("source") in (None, source) else -1
            if start >= 0 and not any(s < start + len(quote) and start < e for s, e, _ in marks):
                marks.append((start, start + len(quote), found))
        marks.sort(key=lambda m: m[0])
        at = 0
        for start, end, found in marks:
            segments.append({"text": text[at:start]})
            segments.append({"text": text[start:end], "fact": found.get("fact"), "status": found.get("status")})
            at = end
        segments.append({"text": text[at:]})
        out.append({"source": source, "segments": segments, "marked": len(marks)})
    return sorted(out, key=lambda d: -int(d["marked"]))


def _page(request: Request, name: str, reviewer: Reviewer | None, **values: Any) -> HTMLResponse:
    response = templates.TemplateResponse(
        request, name, {"reviewer": reviewer, "csrf": reviewer.csrf if reviewer else None, **values}
    )
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"  # noqa: E501
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


# --- routes ---------------------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, error: str | None = None) -> HTMLResponse:
    nonce = secrets.token_urlsafe(24)
    response = _page(request, "login.html", None, nonce=nonce, error=error)
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=600, httponly=True, samesite="strict", path="/review",
                        secure=_secure(context(request)))  # fmt: skip
    return response


@router.post("/login")
def login(request: Request, token: Annotated[str, Form(max_length=4096)],
          csrf: Annotated[str, Form(max_length=100)]) -> Response:  # fmt: skip
    ctx = context(request)
    _same_origin(request)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not hmac.compare_digest(nonce.encode(), csrf.encode()):
        raise ServiceError(403, "the sign-in form expired: reload it", code="csrf", issue_type="forbidden")
    try:
        principal = ctx.admission.admit(request, "Task", "r", USER_CONTEXT, token=token)
    except ServiceError as exc:
        if exc.status == 429:
            raise
        return login_form(request, error="That token is not a reviewer's (it needs user/Task scopes).")
    cookie, lifetime = _session(ctx, principal)
    response = RedirectResponse("/review", status_code=303)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=lifetime, httponly=True, samesite="strict", path="/",
                        secure=_secure(ctx))  # fmt: skip
    response.delete_cookie(LOGIN_COOKIE, path="/review")
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=100)]) -> Response:
    reviewer = _reviewer(request, "r")
    if reviewer is not None:
        _check_csrf(request, reviewer, csrf)
        if reviewer.session is not None:  # the cookie, replayed, no longer signs anyone in
            context(request).store.mark(_ended(reviewer.session))
    response = _to_login()
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("")
def queue(request: Request, decided: str | None = None, page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    reviewer = _reviewer(request, "s")
    if reviewer is None:
        return _to_login()
    ctx = context(request)
    total, open_tasks = ctx.store.search_tasks(status=["requested"], count=QUEUE_PAGE, offset=(page - 1) * QUEUE_PAGE)
    pages = max(1, -(-total // QUEUE_PAGE))
    now = datetime.now(UTC)
    done = None
    if decided:
        found = ctx.store.task(decided) if len(decided) <= 64 else None
        done = _summary(found[0], now) | {"decision": decision_of(found[0])} if found else None
    return _page(request, "queue.html", reviewer, tasks=[_summary(t, now) for t in open_tasks], total=total,
                 done=done, page=page, pages=pages)  # fmt: skip


@router.get("/tasks/{task_id}")
def task_page(request: Request, task_id: str, error: str | None = None) -> Response:
    reviewer = _reviewer(request, "r")
    if reviewer is None:
        return _to_login()
    ctx = context(request)
    task, documents = stored_task(ctx, task_id)
    response_id = response_of(task)
    claim_response = ctx.store.claim_response(response_id) or {}
    sequence = sequence_of(task)
    evidence = _evidence(claim_response, sequence)
    return _page(
        request,
        "task.html",
        reviewer,
        task=_summary(task, datetime.now(UTC)) | {"decision": decision_of(task)},
        rules=inputs(task, "rule"),
        citations=inputs(task, "citation"),
        rationale=inputs(task, "rationale"),
        missing=inputs(task, "documentation-missing"),
        evidence=evidence,
        documents=_highlighted(documents, evidence),
        claim_response={
            "id": response_id,
            "version": claim_response.get("meta", {}).get("versionId"),
            "outcome": claim_response.get("outcome"),
        },  # fmt: skip
        decisions=DECISIONS,
        error=error,
    )


@router.post("/tasks/{task_id}")
def decide(
    request: Request,
    task_id: str,
    csrf: Annotated[str, Form(max_length=100)],
    decision: Annotated[str, Form(max_length=4)],
    npi: Annotated[str, Form(max_length=40)],
    rationale: Annotated[str, Form(max_length=4000)] = "",
    quantity: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    reviewer = _reviewer(request, "u")
    if reviewer is None:
        return _to_login()
    _check_csrf(request, reviewer, csrf)
    ctx = context(request)
    npi = npi.strip()
    system = NPI_SYSTEM if npi.isdigit() and len(npi) == 10 else LICENCE_SYSTEM
    outputs: list[JSON] = [
        {"type": {"coding": [{"system": REVIEW_SYSTEM, "code": "decision"}], "text": "decision"},
         "valueCodeableConcept": {"coding": [{"code": decision}]}},
    ]  # fmt: skip
    if rationale.strip():
        outputs.append({"type": {"text": "rationale"}, "valueString": rationale.strip()})
    if quantity.strip():
        try:
            outputs.append({"type": {"text": "authorized-quantity"}, "valueDecimal": float(quantity)})
        except ValueError:
            return task_page(request, task_id, error="The authorized quantity is a number.")
    sent = {"resourceType": "Task", "id": task_id, "status": "completed", "output": outputs,
            "owner": {"identifier": {"system": system, "value": npi}} if npi else {}}  # fmt: skip
    try:
        decide_task(ctx, task_id, sent, reviewer.principal.name)
    except AdapterError as exc:
        if isinstance(exc, ServiceError) and exc.status in (401, 403, 404, 429):
            raise
        return task_page(request, task_id, error=exc.message)
    request.state.target = f"Task/{task_id}"
    return RedirectResponse(f"/review?decided={task_id}", status_code=303)
