"""Physician review Tasks under ``/fhir/Task``: read, search (``status``, ``owner[:identifier]``, ``focus``,
``patient``, ``_lastUpdated``, paged, soonest due first) and ``PUT`` to decide. Only ``user/`` scopes reach them: a
reviewer is a person, and an EHR's or payer's ``system/`` token gets 403."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from adapter.review import Decision, apply_decision, read_decision
from adapter.service.admission import USER_CONTEXT, Principal
from adapter.service.http import FHIR_ID, ServiceError, etag, fhir_response
from adapter.service.pipeline import for_payer
from adapter.service.routes import Capability, ServiceContext, body, context, requires, search_params, searchset
from adapter.service.search import last_updated_bounds
from adapter.types import JSON

router = APIRouter(prefix="/fhir")


def _offered() -> list[JSON]:
    return [
        {
            "type": "Task",
            "documentation": "Physician review of pended items: user/Task.* scopes only; complete "
            "with PUT (status completed, owner, outputs decision, rationale, authorized-quantity).",
            "interaction": [{"code": "read"}, {"code": "update"}, {"code": "search-type"}],
            "conditionalUpdate": False,
            "searchParam": [
                {"name": n, "type": t}
                for n, t in (
                    ("status", "token"),
                    ("owner", "reference"),  # by :identifier (system|value)
                    ("focus", "reference"),
                    ("patient", "reference"),
                    ("_lastUpdated", "date"),
                    ("_count", "number"),
                )
            ],
        }
    ]


CAPABILITY = Capability(resources=_offered)
_PARAMS = {"status", "owner", "owner:identifier", "focus", "patient", "_lastUpdated"}
_STATUSES = {"requested", "completed"}


def _not_found() -> ServiceError:
    return ServiceError(404, "no such Task", code="not-found", issue_type="not-found")


def stored_task(ctx: ServiceContext, task_id: str) -> tuple[JSON, list[tuple[str, str]]]:
    """A review Task and its documents, or 404."""
    found = ctx.store.task(task_id) if FHIR_ID.fullmatch(task_id) else None
    if found is None:
        raise _not_found()
    return found


def decide_task(
    ctx: ServiceContext,
    task_id: str,
    decision: Callable[[JSON], Decision],
    who: str,
    *,
    if_match: str | None = None,
) -> JSON:
    """Apply a reviewer's decision, made and checked against the stored Task as it stands when recorded (from a
    Task sent as FHIR, or the review page's form): the Task and the ClaimResponse's next version are stored, and
    the ClaimResponse queued for the payer, in one transaction; a 4xx changes nothing."""

    def decide(task: JSON, response: JSON) -> tuple[JSON, JSON]:
        if if_match is not None and if_match.strip() not in (etag(task)["ETag"], f'"{task["meta"]["versionId"]}"'):
            raise ServiceError(412, "the Task changed since it was read (If-Match)", code="precondition",
                               issue_type="conflict")  # fmt: skip
        return apply_decision(task, response, decision(task))

    forward = for_payer if ctx.settings.forwarding else None
    done = ctx.store.complete_review(task_id, decide, forward=forward, who=who) if FHIR_ID.fullmatch(task_id) else None
    if done is None:
        raise _not_found()
    return done[0]


@router.get("/Task/{task_id}")
def read_task(
    task_id: str, request: Request, _: Annotated[Principal, Depends(requires("Task", "r", USER_CONTEXT))]
) -> Response:
    request.state.target = f"Task/{task_id}"
    task, _documents = stored_task(context(request), task_id)
    return fhir_response(task, 200, etag(task))


@router.get("/Task")
def search_tasks(request: Request, _: Annotated[Principal, Depends(requires("Task", "s", USER_CONTEXT))]) -> Response:
    ctx = context(request)
    params = request.query_params
    search = search_params(request, _PARAMS)
    statuses = [s for value in params.getlist("status") for s in value.split(",") if s]
    if set(statuses) - _STATUSES:
        raise ServiceError(400, f"status is one of {', '.join(sorted(_STATUSES))}", code="bad-search",
                           issue_type="value")  # fmt: skip
    if "owner" in params and "owner:identifier" in params:  # one owner, or a scope binding one would not bind
        raise ServiceError(400, "owner is searched once (owner or owner:identifier)", code="bad-search",
                           issue_type="value")  # fmt: skip
    owner = params.get("owner:identifier") or params.get("owner")  # reviewers are owners by identifier only
    if owner is not None and "|" not in owner:
        raise ServiceError(400, "owner is searched by identifier: owner:identifier=system|value (NPI or licence)",
                           code="bad-search", issue_type="value")  # fmt: skip
    page = ctx.store.search_tasks(
        status=statuses,
        owner=owner,
        focus=params.get("focus"),
        patient=params.get("patient"),
        updated=last_updated_bounds(params.getlist("_lastUpdated")),
        offset=search.offset,
        count=search.count,
    )
    return fhir_response(searchset(ctx, request, "Task", page, search))


@router.put("/Task/{task_id}")
def update_task(
    task_id: str,
    request: Request,
    principal: Annotated[Principal, Depends(requires("Task", "u", USER_CONTEXT))],
    raw: Annotated[bytes, Depends(body(update=True))],
) -> Response:
    """Complete a review Task with the physician's decision (see ``adapter.review.tasks``)."""
    ctx = context(request)
    request.state.target = f"Task/{task_id}"
    sent = ctx.inbound(raw)
    decision = partial(read_decision, sent)
    task = decide_task(ctx, task_id, decision, principal.name, if_match=request.headers.get("if-match"))
    return fhir_response(task, 200, etag(task))
