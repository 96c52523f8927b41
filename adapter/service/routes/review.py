"""The review page at ``/review``: the open review Tasks by due date, a Task with its evidence, and a form
to decide it. Server-rendered (Jinja2), served by the same app as the FHIR API and deciding through the
same code as ``PUT /fhir/Task/{id}``.

Who is looking, and how they sign in and out, is ``pages.py`` and ``signin.py``: a decision made here names
the signed-in reviewer (their record's name and NPI), never a number typed on the form.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from adapter.errors import AdapterError
from adapter.review.tasks import (
    DECISIONS,
    REVIEW_SYSTEM,
    decision_of,
    due_of,
    first_input,
    inputs,
    recommendation_of,
    response_of,
    sequence_of,
)
from adapter.service.http import ServiceError
from adapter.service.routes import context
from adapter.service.routes.pages import check_csrf, render, signed_in, to_login
from adapter.service.routes.tasks import decide_task, stored_task
from adapter.tables import load_tables
from adapter.types import JSON

router = APIRouter(prefix="/review", include_in_schema=False)
#: Open reviews a page of the queue shows.
QUEUE_PAGE = 50


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


# --- routes ---------------------------------------------------------------------------------------------


@router.get("")
def queue(request: Request, decided: str | None = None, page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    who = signed_in(request, "s")
    if who is None:
        return to_login()
    ctx = context(request)
    total, open_tasks = ctx.store.search_tasks(status=["requested"], count=QUEUE_PAGE, offset=(page - 1) * QUEUE_PAGE)
    pages = max(1, -(-total // QUEUE_PAGE))
    now = datetime.now(UTC)
    done = None
    if decided:
        found = ctx.store.task(decided) if len(decided) <= 64 else None
        done = _summary(found[0], now) | {"decision": decision_of(found[0])} if found else None
    return render(request, "queue.html", who, tasks=[_summary(t, now) for t in open_tasks], total=total,
                 done=done, page=page, pages=pages)  # fmt: skip


@router.get("/tasks/{task_id}")
def task_page(request: Request, task_id: str, error: str | None = None) -> Response:
    who = signed_in(request, "r")
    if who is None:
        return to_login()
    ctx = context(request)
    task, documents = stored_task(ctx, task_id)
    response_id = response_of(task)
    claim_response = ctx.store.claim_response(response_id) or {}
    sequence = sequence_of(task)
    evidence = _evidence(claim_response, sequence)
    return render(
        request,
        "task.html",
        who,
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
    rationale: Annotated[str, Form(max_length=4000)] = "",
    quantity: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    who = signed_in(request, "u")
    if who is None:
        return to_login()
    check_csrf(request, who, csrf)
    if who.reviewer is None:
        raise ServiceError(403, "a decision on this page names the reviewer: sign in as one (not with a token)",
                           code="reviewer-required", issue_type="forbidden")  # fmt: skip
    ctx = context(request)
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
    sent = {"resourceType": "Task", "id": task_id, "status": "completed", "output": outputs}
    try:
        decide_task(ctx, task_id, sent, who.principal.name, person=who.reviewer.person)
    except AdapterError as exc:
        if isinstance(exc, ServiceError) and exc.status in (401, 403, 404, 429):
            raise
        return task_page(request, task_id, error=exc.message)
    request.state.target = f"Task/{task_id}"
    return RedirectResponse(f"/review?decided={task_id}", status_code=303)
