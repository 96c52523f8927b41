"""The jurisdiction seam (adapter.review.policy): a new jurisdiction's deadlines and words are one table and one
setting, and the setting is checked when the settings load."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from fastapi.testclient import TestClient

from adapter import parse_letter
from adapter.cli import main
from adapter.config import load_settings
from adapter.errors import ConfigError, MappingTableError
from adapter.fhir.attachments import asked_lines
from adapter.fhir.build import pas_bundle
from adapter.review.policy import DEFAULT_POLICY, review_policy
from adapter.review.tasks import first_input, recommendation_of, sequence_of
from adapter.service import wire
from tests.conftest import LETTERS, auth
from tests.test_reviewers import add_reviewer, sign_in
from tests.test_service import with_npi

EHR, REVIEWER = "ehr-token", "reviewer-token"
#: A made-up state with other clocks, another time zone and a holiday of its own every day of the year but
#: weekends and the 1st of the month.
SAGEBRUSH = """
name: Sagebrush
time_zone: America/Denver
clocks:
  standard: {business_days: 3, source: "Sagebrush Rev. Stat. 1.1"}
  expedited: {hours: 24, source: "Sagebrush Rev. Stat. 1.2"}
  retrospective: {days: 10, source: "Sagebrush Rev. Stat. 1.3"}
information: {days: 7, source: "Sagebrush Rev. Stat. 1.4"}
expedited_priorities: [stat]
holidays:
  - {name: "Founders' Day", month: 3, day: 3}
wording:
  who_decides: "in Sagebrush only a physician may deny a request (Rev. Stat. 2)"
  due_dates: "Sagebrush Rev. Stat. 1 (business days skip weekends and Founders' Day)"
  pended: "Sagebrush Rev. Stat. 2 has a physician decide what is recommended {label}."
"""
DENVER = ZoneInfo("America/Denver")


@pytest.fixture
def sagebrush(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The table, in a mappings folder of its own, and the one setting that names it."""
    table = tmp_path / "mappings" / "jurisdictions" / "sagebrush.yaml"
    table.parent.mkdir(parents=True)
    table.write_text(SAGEBRUSH)
    monkeypatch.setenv("IMR_REVIEW__JURISDICTION", str(table))
    return table


@pytest.fixture
def service(sagebrush: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(
        service={
            "tokens": {EHR: "system/*.*", REVIEWER: "user/Task.read user/ClaimResponse.read"},
            "state_url": f"sqlite:///{tmp_path}/state.db",
            "forward": False,
        }
    )
    wiring = wire(settings)
    add_reviewer(wiring.store)
    with TestClient(wiring.app()) as client:
        yield client


def _business_days_after(day: date, count: int) -> date:
    while count:
        day += timedelta(days=1)
        count -= day.weekday() < 5 and (day.month, day.day) != (3, 3)
    return day


def test_a_new_jurisdiction_is_one_table_and_one_setting(service: TestClient) -> None:
    client = service
    case = parse_letter((LETTERS / "2014-variant.txt").read_bytes())
    case.case_number = f"CM91-{uuid.uuid4().int % 10**7:07d}"
    answer = client.post("/fhir/Claim/$submit", content=orjson.dumps(with_npi(pas_bundle(case))), headers=auth(EHR))
    assert answer.status_code == 200, answer.text
    response = answer.json()["entry"][0]["resource"]
    found = client.get(f"/fhir/Task?focus={response['request']['reference']}", headers=auth(REVIEWER)).json()
    tasks = [e["resource"] for e in found["entry"]]
    assert tasks
    asked = set(asked_lines(response))
    received = datetime.fromisoformat(response["created"]).astimezone(DENVER).date()
    for task in tasks:
        assert first_input(task, "clock") == "standard"
        # the item asks for documentation: Sagebrush's 7 days; otherwise its 3 business days, in Denver's time
        days = timedelta(days=7) if sequence_of(task) in asked else _business_days_after(received, 3) - received
        expected = datetime.combine(received + days, time(23, 59, 59), tzinfo=DENVER)
        assert datetime.fromisoformat(task["restriction"]["period"]["end"]) == expected
    # what the payer is told to send by: Sagebrush's information deadline
    asks = [c for c in response.get("contained", []) if c["resourceType"] == "CommunicationRequest"]
    information = datetime.combine(received + timedelta(days=7), time(23, 59, 59), tzinfo=DENVER)
    assert asks and {datetime.fromisoformat(a["occurrencePeriod"]["end"]) for a in asks} == {information}
    # an adverse recommendation is pended in the jurisdiction's words, to the provider and to the reviewer
    notes = {n["number"]: n["text"] for n in response["processNote"]}
    adverse = [t for t in tasks if recommendation_of(t).adverse]
    assert adverse
    for task in adverse:
        pended = f"Sagebrush Rev. Stat. 2 has a physician decide what is recommended {recommendation_of(task).label}. "
        (item,) = [i for i in response["item"] if i["itemSequence"] == sequence_of(task)]
        assert notes[item["noteNumber"][0]].startswith(pended)
        assert first_input(task, "rationale").startswith(pended) and "4610" not in first_input(task, "rationale")
    # and the review pages say the jurisdiction's words, offering the physician the guideline's reasons alone
    assert sign_in(client).status_code == 303
    assert "Sagebrush Rev. Stat. 1 (business days skip weekends and Founders&#39; Day)." in client.get("/review").text
    page = client.get(f"/review/tasks/{adverse[0]['id']}").text  # the case page, by redirect
    offered = page.split(f'name="rationale-{adverse[0]["id"]}">')[1].split("</textarea>")[0]
    assert offered and "Sagebrush" not in offered


def test_a_new_jurisdiction_s_words_reach_the_determine_command(
    sagebrush: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["determine", "--json", "--no-progress", str(LETTERS / "2014-variant.txt")]) == 0
    items = orjson.loads(capsys.readouterr().out)["items"]
    pended = [i for i in items if i["recommendation"] in ("A3", "A6")]
    assert pended and all(i["action"] == "A4" for i in pended)
    assert all(i["rationale"].startswith("Sagebrush Rev. Stat. 2 has a physician decide what is recommended ")
               for i in pended)  # fmt: skip


def test_california_is_the_default() -> None:
    policy = review_policy(load_settings())
    assert policy.deadlines.name == "California" and policy.mode == "pend"
    assert policy.deadlines.model_dump() == DEFAULT_POLICY.deadlines.model_dump()  # not the holidays worked out


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nevada", r"IMR_REVIEW__JURISDICTION: review.jurisdiction: expected one of \['california'\] or the path"),
        ("./missing.yaml", r"IMR_REVIEW__JURISDICTION: review.jurisdiction: no such file: missing.yaml"),
    ],
)
def test_a_jurisdiction_that_is_not_there_is_refused_at_load(
    value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMR_REVIEW__JURISDICTION", value)
    with pytest.raises(ConfigError, match=message) as refused:
        load_settings()
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("days: 7,", "weeks: 1,", "information.weeks"),
        ("recommended {label}", "recommended {action}", "wording.pended: Value error, the pended words name"),
    ],
)
def test_a_broken_table_fails_at_start_up_naming_its_line(
    old: str, new: str, message: str, sagebrush: Path, tmp_path: Path
) -> None:
    sagebrush.write_text(SAGEBRUSH.replace(old, new))
    settings = load_settings(service={"state_url": f"sqlite:///{tmp_path}/state.db"})
    with pytest.raises(MappingTableError, match=r"sagebrush.yaml:\d+") as broken:
        wire(settings)
    assert message in str(broken.value)
