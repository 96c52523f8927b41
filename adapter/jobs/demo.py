"""The main job on the embedded default, end to end on real servers:

start the sandbox EHR and payer servers; load the request side of the bundled letters into the EHR;
run the service (an EHR also pushes one PAS $submit to it) and the sync worker; list the review Tasks of
the pended items with their due dates, and complete one review through the API as a physician would; pull
the ClaimResponses from the payer server; print request -> decision -> rationale and save an HTML report.
"""

from __future__ import annotations

import html
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn

from adapter import sandbox
from adapter.actions import ReviewAction
from adapter.categories import categorise
from adapter.config import SANDBOX, Settings, load_settings
from adapter.deadlines import Wording
from adapter.exchange import FHIRClient
from adapter.fhir.build import pas_bundle, request_bundle
from adapter.fhir.extensions import evidence_of, recommended, values
from adapter.fhir.pas import REQUEST_RESOURCES, ordered_text, review_action_code, review_number
from adapter.fhir.request_facts import patient_age
from adapter.letters import parse_letter, summary_text
from adapter.npi import NPI_SYSTEM
from adapter.review.policy import Policy
from adapter.review.tasks import decision_of, due_of, first_input, inputs, recommendation_of, response_of
from adapter.service import wire
from adapter.service.pipeline import DETERMINATION_SYSTEM
from adapter.tables import mappings

#: The reviewer the demo plays (an NPI of the documented example form, not a real physician's).
DEMO_REVIEWER = {"identifier": {"system": NPI_SYSTEM, "value": "1234567893"},
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
    #: What the jurisdiction's table says of who decides and by when.
    wording: Wording


@dataclass
class Row:
    patient: str
    request: str
    action: str
    rationale: str
    #: What the rules recommend (an adverse one goes out pended, A4, for a physician).
    recommendation: str
    #: The patient's age and sex as the records give them ("54 F"), the ClaimResponse's id on the payer, the
    #: item's authorization (certified) or pend reference number.
    who: str = ""
    claim_response: str = ""
    number: str = ""
    #: The evidence the answer rests on ("neurologic deficit absent: quote") and what the records lack.
    evidence: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)

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


def _pended(tasks: list[dict[str, Any]], policy: Policy) -> list[Pended]:
    return [
        Pended(first_input(t, "requested-service"), recommendation_of(t), first_input(t, "clock"),
               due_of(t, policy).strftime("%a %d %b %Y %H:%M %Z"))
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
    state = Path(tempfile.mkdtemp(prefix="imr-demo-")) / "state.db"  # the service's, for this run only
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
        shutil.rmtree(state.parent, ignore_errors=True)

    texts = {entry["fullUrl"]: ordered_text(entry["resource"]) for entry in pas["entry"]}
    # the service keeps a PAS request's resources under the ids of their urn:uuid full URLs
    texts |= {f"{e['resource']['resourceType']}/{e['fullUrl'].removeprefix('urn:uuid:')}": ordered_text(e["resource"])
              for e in pas["entry"]}  # fmt: skip
    for rtype in REQUEST_RESOURCES:
        for resource in ehr.search(rtype, {"_count": 200}):
            texts[f"{rtype}/{resource['id']}"] = ordered_text(resource)
    people = [e["resource"] for e in pas["entry"] if e["resource"]["resourceType"] == "Patient"]
    people += list(ehr.search("Patient", {"_count": 200}))
    who = {i.get("value"): _age_sex(p) for p in people for i in p.get("identifier", [])}
    who |= {f"Patient/{p['id']}": _age_sex(p) for p in people if p.get("id")}
    asked = {(response_of(t), first_input(t, "item-sequence")): inputs(t, "documentation-missing") for t in tasks}
    rows = []
    extensions = mappings().tables.fhir.extensions
    for response in payer.search("ClaimResponse", {"identifier": f"{DETERMINATION_SYSTEM}|", "_count": 100}):
        notes = {n["number"]: n["text"] for n in response.get("processNote", [])}
        patient = (response.get("patient", {}).get("identifier") or {}).get("value", "-")
        for item in response["item"]:
            ref = next((r.get("identifier", {}).get("value") for r in values(item, extensions.service_request)), None)
            action = review_action_code(item.get("adjudication", [])) or ReviewAction.PENDED
            adapter_id = next((i["value"] for i in response.get("identifier", [])
                               if i.get("system") == DETERMINATION_SYSTEM), "")  # fmt: skip
            rows.append(
                Row(
                    patient,
                    texts.get(ref or "", ref or "-"),
                    action,
                    notes.get(item.get("noteNumber", [0])[-1], ""),  # a physician's note comes last
                    recommended(item, extensions.recommendation) or action,
                    who=who.get(patient, ""),
                    claim_response=f"ClaimResponse/{response['id']}",
                    number=review_number(item) or "",
                    evidence=[_evidence(e) for e in evidence_of(item, extensions.evidence)],
                    asked=asked.get((adapter_id, item["itemSequence"]), []),
                )
            )
    rows.sort(key=lambda r: (r.patient, r.request))
    waiting = [t for t in tasks if completed is None or t["id"] != completed["id"]]
    demo = Demo(rows, _pended(waiting, wiring.policy), reviewed, wiring.policy.wording)
    out.mkdir(parents=True, exist_ok=True)
    (out / "imr-demo-report.html").write_text(render_html(demo, settings))
    return demo


def _age_sex(patient: dict[str, Any]) -> str:
    """ "54 F" from a Patient's age and gender (what the records give)."""
    age = patient_age(patient, date.today())
    sex = {"female": "F", "male": "M"}.get(str(patient.get("gender")), "")
    return " ".join(part for part in (str(age) if age is not None else "", sex) if part)


def _evidence(parts: dict[str, Any]) -> str:
    quote = f": \u201c{parts['quote']}\u201d" if parts.get("quote") else ""
    return f"{str(parts.get('fact', '')).replace('_', ' ')} {parts.get('status', '')}{quote}"


def _chart(rows: list[Row]) -> str:
    """Answers by kind of service, as horizontal stacked bars (inline SVG)."""
    by_kind: dict[str, dict[str, int]] = {}
    for r in rows:
        kind = categorise(r.request).replace("-", " ")
        by_kind.setdefault(kind, {})
        by_kind[kind][r.action] = by_kind[kind].get(r.action, 0) + 1
    unit, left, height = 28, 190, 22
    bars = []
    for n, (kind, counts) in enumerate(sorted(by_kind.items())):
        y, x = n * (height + 6), left
        bars.append(f"<text x='{left - 8}' y='{y + 15}' text-anchor='end'>{html.escape(kind)}</text>")
        for code in ReviewAction:
            if counts.get(code):
                width = counts[code] * unit
                bars.append(f"<rect x='{x}' y='{y}' width='{width}' height='{height}' fill='{code.colour}'>"
                            f"<title>{counts[code]} {code.label}</title></rect>"
                            f"<text x='{x + width / 2}' y='{y + 15}' text-anchor='middle' fill='#fff'>"
                            f"{counts[code]}</text>")  # fmt: skip
                x += width
    legend = " ".join(f"<span style='color:{c.colour}'>&#9632;</span> {c} {c.label}" for c in ReviewAction
                      if any(r.action == c for r in rows))  # fmt: skip
    total = len(by_kind) * (height + 6)
    return (f"<h2>Answers by kind of service</h2><svg width='640' height='{total}' role='img' "
            f"aria-label='answers by kind of service' style='font-size:12px'>{''.join(bars)}</svg>"
            f"<p class='muted'>{legend}</p>")  # fmt: skip


def _cell(lines: list[str]) -> str:
    return "".join(f"<div>{html.escape(line)}</div>" for line in lines)


def render_html(demo: Demo, settings: Settings) -> str:
    rows = demo.rows
    counts = {code: sum(1 for r in rows if r.action == code) for code in ReviewAction}
    body = "".join(
        f"<tr><td><b>{html.escape(r.patient)}</b><div class='muted'>{html.escape(r.who)}</div></td>"
        f"<td>{html.escape(r.request)}</td>"
        f"<td style='color:{ReviewAction(r.action).colour};font-weight:600'>{html.escape(r.decision)}"
        f"<div class='muted'>{html.escape(r.number)}</div><div class='muted'>{html.escape(r.claim_response)}</div></td>"
        f"<td>{html.escape(r.rationale)}"
        + (f"<p class='muted'>Evidence</p>{_cell(r.evidence)}" if r.evidence else "")
        + (f"<p class='muted'>Asked of the provider</p>{_cell(r.asked)}" if r.asked else "")
        + "</td></tr>"
        for r in rows
    )
    summary = ", ".join(f"{n} {c.label}" for c, n in counts.items() if n)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>IMR adapter run</title><style>
body{{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ddd;padding:.5em;vertical-align:top;text-align:left}} th{{background:#f4f4f4}}
td:first-child{{white-space:nowrap}} td:nth-child(2){{width:22%}} td:nth-child(3){{width:16%}}
.muted{{color:#666;font-size:12px;font-weight:400;margin:.4em 0 .1em}}</style></head><body>
<h1>IMR adapter: determinations written to the payer server</h1>
<p>{len(rows)} requested services: {summary}. EHR {html.escape(settings.ehr)} &rarr; adapter &rarr; payer
{html.escape(settings.payer)}.</p>
<p>Adverse recommendations go out pended (A4) for a physician reviewer: {html.escape(demo.wording.who_decides)}.
</p>
{_chart(rows)}
<table><tr><th>patient</th><th>request</th><th>answer</th><th>why: rationale with its guideline, the
evidence, what was asked for</th></tr>{body}</table>
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
<p>Due dates: {html.escape(demo.wording.due_dates)}. Physicians decide them at <code>/review</code>.</p>
<table><tr><th>request</th><th>recommended</th><th>clock</th><th>due</th></tr>{rows}</table>"""
