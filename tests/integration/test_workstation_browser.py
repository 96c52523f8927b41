"""The review workstation in a real browser: Playwright driving Debian's chromium against the service in its own
process, with axe-core (bundled by axe-playwright-python, installed with the dev dependencies; nothing is
downloaded) checking every page. A reviewer signs in, opens the soonest case, follows a fact to its quote
highlighted in the clinical note, decides two items at once and asks the provider for documentation on a third.

The test counts the clicks of that path and prints the time the browser spent on it (no timed assertion);
with IMR_WORKSTATION_SCREENSHOTS naming a folder it saves the queue and the case page there (the README's
pictures come from here)."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Locator, Page, expect

from adapter import parse_letter, sandbox
from adapter.fhir.build import pas_bundle
from adapter.sandbox import free_port
from adapter.service.reviewers import Reviewers
from adapter.service.state import Store
from tests.conftest import FIXTURES, LETTERS

EHR = "workstation-ehr"
NPI, NAME, PASSWORD = "1234567893", "Dr. Ada Reyes", "a long enough password"
#: Where the pictures go when set (queue and case page).
SCREENSHOTS = os.environ.get("IMR_WORKSTATION_SCREENSHOTS")
#: The axe-core impacts a page may not have.
BLOCKING = {"serious", "critical"}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    state = f"sqlite:///{tmp_path}/state.db"
    store = Store(state)
    Reviewers(store).add(npi=NPI, name=NAME, password=PASSWORD)
    store.close()
    env = {**os.environ, "IMR_SERVICE__TOKENS": json.dumps({EHR: "system/*.*"}),
           "IMR_SERVICE__STATE_URL": state, "IMR_SERVICE__FORWARD": "false"}  # fmt: skip
    port = free_port()
    process = sandbox.start_service(env, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except Exception:
            process.kill()
            raise


def _expedited_case() -> dict[str, Any]:
    """A four-item PAS request marked urgent (due in 72 hours: the soonest case)."""
    case = parse_letter((LETTERS / "case-number-multi.txt").read_bytes())
    case.case_number = f"CM92-{uuid.uuid4().int % 10**7:07d}"
    bundle = pas_bundle(case)
    bundle["entry"][0]["resource"]["priority"] = {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "stat"}]}  # fmt: skip
    return bundle


def _submit(base: str) -> None:
    headers = {"Authorization": f"Bearer {EHR}", "Content-Type": "application/fhir+json"}
    mri = httpx.post(f"{base}/fhir/ServiceRequest", headers=headers, timeout=60,
                     content=(FIXTURES / "requests" / "lumbar-mri.json").read_bytes())  # fmt: skip
    claim = httpx.post(f"{base}/fhir/Claim/$submit", headers=headers, timeout=60,
                       content=json.dumps(_expedited_case()))  # fmt: skip
    assert (mri.status_code, claim.status_code) == (201, 200), (mri.text[:200], claim.text[:200])


class Clicks:
    """Clicks on the reviewer's path, counted, with the time the browser spent on them."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, target: Locator) -> None:
        self.count += 1
        started = time.perf_counter()
        target.click()
        target.page.wait_for_load_state()
        self.seconds += time.perf_counter() - started


def _accessible(page: Page, name: str) -> None:
    violations = Axe().run(page).response["violations"]
    blocking = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
                for v in violations if v.get("impact") in BLOCKING]  # fmt: skip
    assert not blocking, f"{name}: {blocking}"


def _picture(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)


def test_a_reviewer_decides_a_case_in_the_browser(service: str, page: Page) -> None:
    _submit(service)
    click = Clicks()

    page.goto(f"{service}/review")
    expect(page.get_by_role("heading", name="Sign in to review")).to_be_visible()
    _accessible(page, "sign-in")
    page.get_by_label("NPI or email").fill(NPI)
    page.get_by_label("Password").fill(PASSWORD)
    click(page.get_by_role("button", name="Sign in"))

    rows = page.get_by_role("row")
    expect(rows).to_have_count(3)  # the header, the urgent case, the lumbar MRI
    expect(rows.nth(1)).to_contain_text("expedited")
    _accessible(page, "queue")
    _picture(page, "review-queue.png")
    click(rows.nth(1).get_by_role("link"))

    expect(page.get_by_role("heading", name="Patient")).to_be_visible()
    for words in ("51", "female", "2016-08-14", "lumbar radiculopathy", "12 sessions"):
        expect(page.locator(".patient")).to_contain_text(words)
    quote = page.locator(".item").first.locator("ul.facts a").first
    expect(quote).to_be_visible()
    click(quote)
    target = page.locator("mark:target")
    expect(target).to_be_in_viewport()
    _accessible(page, "case")
    _picture(page, "review-case.png")

    items = page.locator("section.item")
    click(items.nth(0).get_by_role("radio", name="A1 certified"))
    click(items.nth(1).get_by_role("radio", name="A3 not certified"))
    expect(items.nth(1).get_by_label("Rationale")).not_to_have_value("")  # prefilled from the recommendation
    click(page.get_by_role("button", name="Record decisions"))
    expect(page.get_by_role("status")).to_contain_text("Decisions recorded")
    expect(page.locator("section.item").nth(0)).to_contain_text("Decided: A1")
    _accessible(page, "case after deciding")

    open_items = page.locator("section.item").filter(has=page.get_by_role("checkbox"))
    click(open_items.first.get_by_role("checkbox", name="Ask the provider for documentation"))
    page.get_by_label("Your question to the provider").fill("Please send the most recent physical therapy notes.")
    click(page.get_by_role("button", name="Ask for documentation"))
    expect(page.get_by_role("status")).to_contain_text("Documentation asked")
    expect(page.locator("section.item").filter(has_text="Documentation asked of the provider")).to_have_count(1)

    print(f"\nreviewer's path: {click.count} clicks, {click.seconds:.2f} s in the browser")
    assert click.count < 10
    page.goto(f"{service}/review")
    _accessible(page, "queue after")
