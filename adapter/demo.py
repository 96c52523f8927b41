"""The main job on the embedded default, end to end on real servers:

start the sandbox EHR and payer servers; load the request side of the bundled letters into the EHR;
run the service (an EHR also pushes one PAS $submit to it) and the sync worker; list the review Tasks of
the pended items with their due dates, and complete one review through the API as a physician would; pull
the ClaimResponses from the payer server; print request -> decision -> rationale and save an HTML report.
"""

from __future__ import annotations

import html
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn

from adapter import sandbox
from adapter.config import SANDBOX, Settings, load_settings
from adapter.exchange import FHIRClient
from adapter.fhir.build import pas_bundle, request_bundle
from adapter.fhir.pas import REQUEST_RESOURCES, ReviewAction, ordered_text, review_action_code
from adapter.letters import parse_letter, summary_text
from adapter.review.tasks import decision_of, due_of, first_input, recommendation_of
from adapter.service import wire
from adapter.service.pipeline import DETERMINATION_SYSTEM
from adapter.tables import load_tables

#: The reviewer the demo plays (an NPI of the documented example form, not a real physician's).
DEMO_REVIEWER = {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"},
                 "display": "Demo Reviewer, MD"}  # fmt: skip
REVIEWER_SCOPES = "user/Task.read user/Task.write user/ClaimResponse.read"


@dataclass
class Pended:
    """A review Task: what waits for a physician, and by when."""

    request: str
    recommendation: str
    clock: str
    due: str


@dataclass
class Demo:
    rows: list[Row]
    pended: list[Pended]
    #: The review the demo completed: (request, the physician's action).
    reviewed: tuple[str, str] | None


@dataclass
class Row:
    patient: str
    request: str
    action: str
    rationale: str
    #: What the rules recommend (an adverse one goes out pended, A4, for a physician).
    recommendation: str

    @property
    def decision(self) -> str:
        """ "A4 pended for review (recommended: A3 not certified)" when the two differ."""
        text = f"{self.action} {ReviewAction(self.action).label}"
        if self.recommendation != self.action:
            text += f" (recommended: {self.recommendation} {ReviewAction(self.recommendation).label})"
        return text


def run_demo(letters: Path, out: Path, *, log: Any = print) -> Demo:
    settings: Settings = load_settings()
    log("starting the sandbox EHR and payer FHIR servers ...")
    sandbox.up(settings.sandbox)
    try:
        return _flow(settings, letters, out, log)
    finally:
        sandbox.down(settings.sandbox, postgres=False)  # only what the demo started


def _pended(tasks: list[dict[str, Any]]) -> list[Pended]:
    return [
        Pended(first_input(t, "requested-service"), recommendation_of(t), first_input(t, "clock"),
               due_of(t).strftime("%a %d %b %Y %H:%M %Z"))
        for t in tasks
    ]  # fmt: skip


def _review_one(client: httpx.Client, tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Complete one review Task through the API, as a physician would: the first adverse recommendation,
    decided as recommended, with a rationale."""
    adverse = [t for t in tasks if recommendation_of(t).adverse]
    if not adverse:
        return None
    task = adverse[0]
    action = recommendation_of(task)
    outputs = [
        {"type": {"text": "decision"}, "valueCodeableConcept": {"coding": [{"code": action}]}},
        {"type": {"text": "rationale"}, "valueString": "On review of the records the guideline criteria are not "
         "met: " + (first_input(task, "rationale") or "").split("so it is pended for one. ")[-1]},
    ]  # fmt: skip
    if action == ReviewAction.MODIFIED:
        outputs.append({"type": {"text": "authorized-quantity"}, "valueInteger": 1})
    decided = {**task, "status": "completed", "owner": DEMO_REVIEWER, "output": outputs}
    done = client.put(f"/Task/{task['id']}", content=orjson.dumps(decided))
    done.raise_for_status()
    return dict(done.json())


def _flow(settings: Settings, letters: Path, out: Path, log: Any) -> Demo:
    ehr = FHIRClient(settings.ehr, auth=settings.auth("ehr"))
    payer = FHIRClient(settings.payer, auth=settings.auth("payer"))
    paths = sorted(p for p in letters.iterdir() if p.suffix in (".txt", ".pdf"))
    cases = [parse_letter(p.read_bytes()) for p in paths]
    pas_case, ehr_cases = cases[0], cases[1:]
    for case in ehr_cases:
        assert case.source is not None
        ehr.transaction(request_bundle(case, summary_text(case.source.text, case.layout)))
    log(f"loaded the requests of {len(ehr_cases)} letters into the EHR server")

    token, review_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    state = Path(tempfile.mkdtemp(prefix="imr-demo-")) / "state.db"
    tokens = {token: "system/*.*", review_token: REVIEWER_SCOPES}
    service = settings.service.model_copy(update={"tokens": tokens, "state_url": f"sqlite:///{state}"})
    wiring = wire(settings.model_copy(update={"service": service, "payer_url": settings.payer_url or SANDBOX}))
    port = sandbox.free_port()
    server = uvicorn.Server(uvicorn.Config(wiring.app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    log(f"the adapter service is listening on http://127.0.0.1:{port}/fhir")
    try:
        pas = pas_bundle(pas_case)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/fhir/Claim/$submit",
            content=orjson.dumps(pas),
            timeout=30,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
        )
        answer.raise_for_status()
        log("an EHR submitted a PAS Claim Bundle to the service: answered at once")
        with wiring.worker() as worker:
            report = worker.run_once()
        log(f"the sync worker read {report.seen} requests (services, drugs, devices); decided {report.decided}")
        reviewer = httpx.Client(base_url=f"http://127.0.0.1:{port}/fhir", timeout=30, headers={
            "Authorization": f"Bearer {review_token}", "Content-Type": "application/fhir+json"})  # fmt: skip
        with reviewer:
            found = reviewer.get("/Task", params={"status": "requested", "_count": 100})
            found.raise_for_status()
            tasks = [e["resource"] for e in found.json().get("entry", [])]
            log(f"{len(tasks)} pended items wait for a physician as review Tasks (GET /fhir/Task?status=requested)")
            completed = _review_one(reviewer, tasks)
        reviewed = None
        if completed is not None:
            reviewed = (first_input(completed, "requested-service"), str(decision_of(completed)))
            log(f"a physician reviewer decided one through the API (PUT /fhir/Task): {reviewed[1]} for {reviewed[0]}")
        deadline = time.monotonic() + 30
        while wiring.store.outbox_pending() and time.monotonic() < deadline:
            time.sleep(0.2)
        log(f"every ClaimResponse is on the payer server ({wiring.store.outbox_pending()} still queued)")
    finally:
        server.should_exit = True
        thread.join(timeout=10)

    texts = {entry["fullUrl"]: ordered_text(entry["resource"]) for entry in pas["entry"]}
    for rtype in REQUEST_RESOURCES:
        for resource in ehr.search(rtype, {"_count": 200}):
            texts[f"{rtype}/{resource['id']}"] = ordered_text(resource)
    rows = []
    recommendation = load_tables().fhir.extensions.recommendation
    for response in payer.search("ClaimResponse", {"identifier": f"{DETERMINATION_SYSTEM}|", "_count": 100}):
        notes = {n["number"]: n["text"] for n in response.get("processNote", [])}
        patient = (response.get("patient", {}).get("identifier") or {}).get("value", "-")
        for item in response["item"]:
            ref = next(
                (
                    e["valueReference"].get("identifier", {}).get("value")
                    for e in item.get("extension", [])
                    if "valueReference" in e
                ),
                None,
            )
            action = review_action_code(item.get("adjudication", [])) or "A4"
            recommended = next(
                (
                    coding["code"]
                    for e in item.get("extension", [])
                    if e.get("url") == recommendation
                    for coding in e["valueCodeableConcept"].get("coding", [])
                ),
                action,
            )
            rows.append(
                Row(
                    patient,
                    texts.get(ref or "", ref or "-"),
                    action,
                    notes.get(item.get("noteNumber", [0])[-1], ""),  # a physician's note comes last
                    recommended,
                )
            )
    rows.sort(key=lambda r: (r.patient, r.request))
    waiting = [t for t in tasks if completed is None or t["id"] != completed["id"]]
    demo = Demo(rows, _pended(waiting), reviewed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "imr-demo-report.html").write_text(render_html(demo, settings))
    return demo


def render_html(demo: Demo, settings: Settings) -> str:
    rows = demo.rows
    counts = {code: sum(1 for r in rows if r.action == code) for code in ReviewAction}
    body = "".join(
        f"<tr><td>{html.escape(r.request)}</td><td style='color:{ReviewAction(r.action).colour};font-weight:600'>"
        f"{html.escape(r.decision)}</td><td>{html.escape(r.rationale)}</td></tr>"
        for r in rows
    )
    summary = ", ".join(f"{n} {c.label}" for c, n in counts.items() if n)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>IMR adapter run</title><style>
body{{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ddd;padding:.5em;vertical-align:top;text-align:left}} th{{background:#f4f4f4}}
td:first-child{{width:28%}} td:nth-child(2){{white-space:nowrap}}</style></head><body>
<h1>IMR adapter: determinations written to the payer server</h1>
<p>{len(rows)} requested services: {summary}. EHR {html.escape(settings.ehr)} &rarr; adapter &rarr; payer
{html.escape(settings.payer)}.</p>
<p>Adverse recommendations go out pended (A4) for a physician reviewer: in California only a physician may
deny or modify a request (Labor Code 4610).</p>
<table><tr><th>request</th><th>decision</th><th>rationale (with its guideline)</th></tr>{body}</table>
{_pended_html(demo)}
</body></html>"""


def _pended_html(demo: Demo) -> str:
    done = ""
    if demo.reviewed:
        action = ReviewAction(demo.reviewed[1])
        done = (
            f"<p>Reviewed in this run by the demo's physician through the API: {html.escape(demo.reviewed[0])} "
            f"&rarr; <b style='color:{action.colour}'>{action} {action.label}</b> (final on the payer).</p>"
        )
    rows = "".join(
        f"<tr><td>{html.escape(p.request)}</td><td>{p.recommendation} {ReviewAction(p.recommendation).label}</td>"
        f"<td>{p.clock}</td><td>{html.escape(p.due)}</td></tr>"
        for p in demo.pended
    )  # fmt: skip
    return f"""<h2>Waiting for a physician: {len(demo.pended)} review Tasks</h2>{done}
<p>Due dates: 8 CCR 9792.9.1 (5 business days, 72 hours expedited, 30 days retrospective), business days
skipping weekends and California state holidays. Physicians decide them at <code>/review</code>.</p>
<table><tr><th>request</th><th>recommended</th><th>clock</th><th>due</th></tr>{rows}</table>"""
