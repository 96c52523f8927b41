"""The review page in a real browser: Playwright driving Debian's chromium (``scripts/test`` installs it;
no browser download) against the service in its own process. A reviewer of the reviewer table signs in with
their password, opens the case, sees the evidence quotes highlighted in the clinical note, decides (no NPI
typed: the decision names them; a non-certification without a rationale refused), sees the case leave the
list and the ClaimResponse become final, naming them; signed out, the page asks for a sign-in again. The
workstation's own path (several items, documentation asked) is test_workstation_browser.py."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from adapter import sandbox
from adapter.sandbox import free_port
from adapter.service.reviewers import Reviewers
from adapter.service.state import Store
from tests.conftest import FIXTURES
from tests.test_reviewers import ADA, PASSWORD

EHR, REVIEWER = "browser-ehr", "browser-reviewer"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    store = Store(f"sqlite:///{tmp_path}/state.db")
    Reviewers(store).add(npi=ADA, name="Dr. Ada Reyes", password=PASSWORD)
    store.close()
    env = {
        **os.environ,
        "IMR_SERVICE__TOKENS": json.dumps(
            {EHR: "system/*.*", REVIEWER: "user/Task.read user/Task.write user/ClaimResponse.read"}
        ),
        "IMR_SERVICE__STATE_URL": f"sqlite:///{tmp_path}/state.db",
        "IMR_SERVICE__FORWARD": "false",
    }
    process = sandbox.start_service(env, port)
    yield f"http://127.0.0.1:{port}"
    process.send_signal(signal.SIGINT)
    process.wait(timeout=15)


def test_a_reviewer_decides_in_the_browser(service: str, page: Page) -> None:
    request = json.loads((FIXTURES / "requests" / "lumbar-mri.json").read_text())
    headers = {"Authorization": f"Bearer {EHR}", "Content-Type": "application/fhir+json"}
    posted = httpx.post(f"{service}/fhir/ServiceRequest", content=json.dumps(request), headers=headers, timeout=30)
    assert posted.status_code == 201
    response_id = posted.json()["id"]
    p = page

    p.goto(f"{service}/review")
    expect(p.get_by_role("heading", name="Sign in to review")).to_be_visible()
    p.get_by_label("NPI or email").fill(ADA)
    p.get_by_label("Password").fill("not the password")
    p.get_by_role("button", name="Sign in").click()
    expect(p.get_by_role("alert")).to_contain_text("do not match an active reviewer")
    expect(p.get_by_label("NPI or email")).to_have_value(ADA)
    p.get_by_label("Password").fill(PASSWORD)
    p.get_by_role("button", name="Sign in").click()
    expect(p.get_by_text("Signed in as Dr. Ada Reyes")).to_be_visible()

    row = p.get_by_role("row").filter(has_text="MRI lumbar spine")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("A3")
    expect(row).to_contain_text("left")
    row.get_by_role("link").click()

    marks = p.locator("mark")
    expect(marks.filter(has_text="Neurologic examination is normal")).to_have_count(1)
    expect(marks.filter(has_text="No bowel or bladder symptoms")).to_have_count(1)
    expect(p.get_by_text("Guideline: MTUS ACOEM Low Back")).to_be_visible()

    expect(p.get_by_text(f"Recorded as Dr. Ada Reyes, NPI {ADA}")).to_be_visible()
    expect(p.get_by_label("NPI", exact=False)).to_have_count(0)  # nobody types an NPI to decide
    p.get_by_role("radio", name="A3 not certified").check()
    p.get_by_label("Rationale").fill("")  # offered from the recommendation; taken away, A3 has none
    p.get_by_role("button", name="Record decisions").click()
    expect(p.get_by_role("alert")).to_contain_text("A rationale is required to not certify")
    expect(p.get_by_role("radio", name="A3 not certified")).to_be_checked()  # the choice is kept
    p.get_by_role("radio", name="A3 not certified").check()
    p.get_by_label("Rationale").fill("No nerve compromise or red flags documented; imaging not indicated now.")
    p.get_by_role("button", name="Record decisions").click()

    expect(p.get_by_role("status")).to_contain_text("A3 not certified")
    expect(p.get_by_role("row").filter(has_text="MRI lumbar spine")).to_have_count(0)
    final = httpx.get(f"{service}/fhir/ClaimResponse/{response_id}", headers={"Authorization": f"Bearer {REVIEWER}"})
    body = final.json()
    assert (body["meta"]["versionId"], body["outcome"], body["disposition"]) == ("2", "complete", "A3")
    (person,) = [c for c in body["contained"] if c["resourceType"] == "Practitioner"]
    assert person["name"] == [{"text": "Dr. Ada Reyes"}] and person["identifier"][0]["value"] == ADA

    p.get_by_role("button", name="Sign out").click()
    expect(p.get_by_role("heading", name="Sign in to review")).to_be_visible()
    p.goto(f"{service}/review")
    expect(p.get_by_role("heading", name="Sign in to review")).to_be_visible()
