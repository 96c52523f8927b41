"""The main job on the embedded default, end to end on real servers:

start the sandbox EHR and payer servers; load the request side of the bundled letters into the EHR;
run the service (an EHR also pushes one PAS $submit to it) and the sync worker; pull the ClaimResponses
from the payer server; print request -> decision -> rationale and save an HTML report.
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
from adapter.service import wire
from adapter.service.pipeline import DETERMINATION_SYSTEM
from adapter.tables import load_tables


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


def run_demo(letters: Path, out: Path, *, log: Any = print) -> list[Row]:
    settings: Settings = load_settings()
    log("starting the sandbox EHR and payer FHIR servers ...")
    sandbox.up(settings.sandbox)
    try:
        return _flow(settings, letters, out, log)
    finally:
        sandbox.down(settings.sandbox, postgres=False)  # only what the demo started


def _flow(settings: Settings, letters: Path, out: Path, log: Any) -> list[Row]:
    ehr = FHIRClient(settings.ehr, auth=settings.auth("ehr"))
    payer = FHIRClient(settings.payer, auth=settings.auth("payer"))
    paths = sorted(p for p in letters.iterdir() if p.suffix in (".txt", ".pdf"))
    cases = [parse_letter(p.read_bytes()) for p in paths]
    pas_case, ehr_cases = cases[0], cases[1:]
    for case in ehr_cases:
        assert case.source is not None
        ehr.transaction(request_bundle(case, summary_text(case.source.text, case.layout)))
    log(f"loaded the requests of {len(ehr_cases)} letters into the EHR server")

    token = secrets.token_urlsafe(24)
    state = Path(tempfile.mkdtemp(prefix="imr-demo-")) / "state.db"
    service = settings.service.model_copy(update={"tokens": {token: "system/*.*"}, "state_url": f"sqlite:///{state}"})
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
        report = wiring.worker().run_once()
        log(f"the sync worker read {report.seen} requests (services, drugs, devices); decided {report.decided}")
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
                    notes.get(item.get("noteNumber", [0])[0], ""),
                    recommended,
                )
            )
    rows.sort(key=lambda r: (r.patient, r.request))
    out.mkdir(parents=True, exist_ok=True)
    (out / "imr-demo-report.html").write_text(render_html(rows, settings))
    return rows


def render_html(rows: list[Row], settings: Settings) -> str:
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
</body></html>"""
