"""The reviewer table: NPIs checked by their check digit, passwords hashed with argon2, reviewers added,
listed and disabled (from the command line too), and the sign-in page that signs them in with it."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from adapter.cli import main
from adapter.config import load_settings
from adapter.errors import MappingError, ReviewerError
from adapter.fhir.inbound import check_inbound
from adapter.npi import NPI_SYSTEM, npi_check_digit, npi_problem
from adapter.service import wire
from adapter.service.reviewers import Reviewers
from adapter.service.routes.pages import SESSION_COOKIE
from adapter.service.schema import reviewers
from adapter.service.state import Store

#: CMS's own example NPI (check digit 3), and two more made with the check digit right.
ADA, BEN, CAL = "1234567893", "1245319599", "1003000126"
PASSWORD = "correct horse battery staple"


def add_reviewer(store: Store, npi: str = ADA, name: str = "Dr. Ada Reyes", **extra: Any) -> None:
    """A reviewer in the table who signs in with ``PASSWORD`` (unless ``extra`` says otherwise)."""
    Reviewers(store).add(npi=npi, name=name, **{"password": PASSWORD, **extra})


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def sign_in(client: TestClient, login: str = ADA, password: str = PASSWORD, **headers: str) -> httpx.Response:
    """The sign-in form, filled in and sent (not following its redirect)."""
    form = client.get("/review/login")
    return client.post("/review/login", data={"login": login, "password": password, "csrf": csrf_of(form)},
                       headers=headers, follow_redirects=False)  # fmt: skip


# --- NPIs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("npi", [ADA, BEN, CAL, "1497758544", "2000000002"])
def test_an_npi_with_its_check_digit_right_is_one(npi: str) -> None:
    assert npi_problem(npi) is None


@pytest.mark.parametrize(
    ("npi", "problem"),
    [
        ("1234567890", "check digit"),  # the last digit mistyped
        ("1234567839", "check digit"),  # two digits swapped
        ("123456789", "ten digits"),
        ("12345678933", "ten digits"),
        ("12345678a3", "ten digits"),
        ("１２３４５６７８９３", "ten digits"),  # full-width digits are digits to str.isdigit, not to an NPI
        ("3234567893", "starts with 1 or 2"),
        ("", "ten digits"),
    ],
)
def test_an_npi_failing_its_check_is_refused_in_words(npi: str, problem: str) -> None:
    assert problem in (npi_problem(npi) or "")


def test_every_mistyped_last_digit_is_caught() -> None:
    """The Luhn check over 80840 and the nine digits catches any single wrong check digit."""
    first_nine = "123456789"
    right = npi_check_digit(first_nine)
    assert [npi_problem(f"{first_nine}{d}") is None for d in range(10)] == [d == right for d in range(10)]


@pytest.mark.parametrize(("npi", "refused"), [(ADA, False), ("1234567890", True), ("12345", True)])
def test_an_npi_entering_as_fhir_is_checked_at_the_edge(npi: str, refused: bool) -> None:
    """Any Identifier of the NPI system, wherever it sits in what comes in (a requester, a Task's owner, a
    PAS provider), carries an NPI; the refusal names its place."""
    practitioner = {"resourceType": "Practitioner", "id": "p1", "identifier": [{"system": NPI_SYSTEM, "value": npi}]}
    request = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": practitioner}]}
    if refused:
        with pytest.raises(MappingError, match="not an NPI") as caught:
            check_inbound(request)
        assert caught.value.location == "entry[0].resource.identifier[0].value"
    else:
        assert check_inbound(request) is request


# --- the table --------------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    found = Store(f"sqlite:///{tmp_path}/state.db")
    yield found
    found.close()


def test_a_reviewer_is_recorded_with_an_argon2_hash_never_the_password(store: Store) -> None:
    add_reviewer(store, email="Ada.Reyes@Example.org")
    with store.transaction() as db:
        stored = db.execute(select(reviewers.c.password)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    (listed,) = Reviewers(store).all()
    assert (listed.npi, listed.name, listed.email) == (ADA, "Dr. Ada Reyes", "ada.reyes@example.org") and listed.active
    assert ("cli", "reviewer add", f"NPI {ADA}") in [(w, a, t) for _, w, a, t, _ in store.audit_log()]


def test_a_reviewer_signs_in_by_npi_or_email_with_their_password_only(store: Store) -> None:
    add_reviewer(store, email="ada@example.org")
    table = Reviewers(store)
    assert table.sign_in(ADA, PASSWORD) is not None
    assert table.sign_in(" ADA@example.org ", PASSWORD) is not None
    assert table.sign_in(ADA, PASSWORD + "!") is None
    assert table.sign_in(BEN, PASSWORD) is None  # nobody has that NPI


@pytest.mark.parametrize(
    ("given", "where"),
    [
        ({"npi": "1234567890"}, "npi"),
        ({"name": "  "}, "name"),
        ({"name": "Dr. \x00Nobody"}, "name"),
        ({"email": "not an email"}, "email"),
        ({"password": "short"}, "password"),
    ],
)
def test_a_reviewer_that_cannot_be_is_refused_and_nothing_kept(store: Store, given: dict[str, str], where: str) -> None:
    fields = {"npi": BEN, "name": "Dr. Ben Okafor", "password": PASSWORD, **given}
    with pytest.raises(ReviewerError) as refused:
        Reviewers(store).add(**fields)
    assert refused.value.location == where
    assert Reviewers(store).all() == []


@pytest.mark.parametrize("again", [{"npi": ADA}, {"email": "ada@example.org"}, {"subject": "ada-sub"}])
def test_an_npi_email_or_subject_is_one_reviewer_s(store: Store, again: dict[str, str]) -> None:
    add_reviewer(store, email="ada@example.org", subject="ada-sub")
    with pytest.raises(ReviewerError, match="already recorded"):
        Reviewers(store).add(**{"npi": BEN, "name": "Dr. Ben Okafor", "password": PASSWORD, **again})
    assert len(Reviewers(store).all()) == 1


def test_a_disabled_reviewer_cannot_sign_in(store: Store) -> None:
    add_reviewer(store)
    disabled = Reviewers(store).disable(ADA)
    assert not disabled.active and Reviewers(store).sign_in(ADA, PASSWORD) is None
    with pytest.raises(ReviewerError, match="no reviewer"):
        Reviewers(store).disable(BEN)


# --- the command line -------------------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], state: str, *args: str, stdin: str = "") -> tuple[int, str, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["reviewer", *args, "--state", state])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_reviewer_commands_add_list_and_disable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state, cli = f"sqlite:///{tmp_path}/state.db", lambda *args, **stdin: _cli(capsys, state, *args, **stdin)
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD + "\n")
    code, out, _ = cli("add", "--npi", ADA, "--name", "Dr. Ada Reyes", "--password-file", str(secret))
    assert code == 0 and "Dr. Ada Reyes, NPI 1234567893" in out
    code, _, _ = cli("add", "--npi", BEN, "--name", "Dr. Ben Okafor", "--email", "ben@example.org",
                      stdin=PASSWORD + "\n")  # fmt: skip
    assert code == 0
    code, _, err = cli("add", "--npi", "1234567890", "--name", "Dr. Typo", stdin=PASSWORD + "\n")
    assert code == 1 and "error: [reviewer]" in err and "check digit" in err
    code, _, err = cli("add", "--npi", CAL, "--name", "Dr. Cal", "--no-password")
    assert code == 1 and "--subject" in err
    assert cli("disable", "--npi", BEN)[0] == 0
    code, out, _ = cli("list")
    lines = [line for line in out.splitlines() if "Dr." in line]
    assert len(lines) == 2 and "active" in lines[0] and "Ada" in lines[0] and "disabled" in lines[1]
    store = Store(state)
    assert Reviewers(store).sign_in(ADA, PASSWORD) is not None and Reviewers(store).sign_in(BEN, PASSWORD) is None


# --- signing in on the page -------------------------------------------------------------------------------


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[TestClient, Store]]:
    settings = load_settings(service={"state_url": f"sqlite:///{tmp_path}/state.db", "forward": False,
                                      "session_minutes": 30})  # fmt: skip
    wiring = wire(settings)
    add_reviewer(wiring.store)
    with TestClient(wiring.app()) as client:
        yield client, wiring.store


def test_a_reviewer_signs_in_into_a_short_strict_session_naming_them(page: tuple[TestClient, Store]) -> None:
    client, store = page
    signed = sign_in(client)
    assert (signed.status_code, signed.headers["location"]) == (303, "/review")
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and int(re.findall(r"Max-Age=(\d+)", cookie)[0]) <= 1800
    session = jwt.decode(client.cookies[SESSION_COOKIE], options={"verify_signature": False})
    assert session["exp"] - session["iat"] == 1800 and session["amr"] == "pwd"
    queue = client.get("/review")
    assert queue.status_code == 200 and "Dr. Ada Reyes" in queue.text and "NPI 1234567893" in queue.text
    assert any(w.startswith(f"NPI {ADA} Dr. Ada Reyes") for _, w, a, _, _ in store.audit_log() if a == "GET /review")


@pytest.mark.parametrize(("login", "password"), [(ADA, "wrong password here"), (BEN, PASSWORD), ("1234567890", "x")])
def test_a_wrong_sign_in_keeps_the_login_and_says_so(page: tuple[TestClient, Store], login: str, password: str) -> None:
    client, _ = page
    answer = sign_in(client, login, password)
    assert answer.status_code == 200 and "do not match an active reviewer" in answer.text
    assert f'value="{login}"' in answer.text and SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    if login == "1234567890":
        assert "check digit" in answer.text


def test_sign_ins_are_throttled_before_a_password_is_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every password sign-in counts against the address's rate (an argon2 verification is costly on purpose):
    past it, even the right password is answered 429 without being checked (the clock held still)."""
    monkeypatch.setattr("adapter.service.admission.time.monotonic", lambda: 1000.0)
    settings = load_settings(service={"state_url": f"sqlite:///{tmp_path}/state.db", "forward": False,
                                      "auth_failure_rate": 1})  # fmt: skip
    wiring = wire(settings)
    add_reviewer(wiring.store)
    with TestClient(wiring.app()) as client:
        wrong = [sign_in(client, ADA, "not the password").status_code for _ in range(2)]
        throttled = sign_in(client)
    assert wrong == [200, 200] and throttled.status_code == 429 and throttled.headers["retry-after"]


def test_the_sign_in_page_shows_no_words_a_link_brings(page: tuple[TestClient, Store]) -> None:
    client, _ = page
    answer = client.get("/review/login?error=Your+password+expired%2C+call+555-0100&login=someone")
    assert answer.status_code == 200 and "555-0100" not in answer.text and "someone" not in answer.text


def test_a_sign_in_without_its_form_nonce_or_from_elsewhere_is_refused(page: tuple[TestClient, Store]) -> None:
    client, _ = page
    forged = client.post("/review/login", data={"login": ADA, "password": PASSWORD, "csrf": "guessed"})
    assert forged.status_code == 403
    assert sign_in(client, Origin="https://evil.example").status_code == 403
    assert sign_in(client, Origin="null").status_code == 403


def test_sign_out_and_disabling_end_a_session_on_every_replica(tmp_path: Path) -> None:
    """Two replicas share the state and the session secret: a session signed out on one, or whose reviewer is
    disabled from the command line, signs nobody in on the other."""
    settings = load_settings(service={"state_url": f"sqlite:///{tmp_path}/state.db", "forward": False,
                                      "session_secret": "one secret for both replicas of the service"})  # fmt: skip
    one, two = wire(settings), wire(settings)
    add_reviewer(one.store)
    add_reviewer(one.store, BEN, "Dr. Ben Okafor", email="ben@example.org")
    with TestClient(one.app()) as first, TestClient(two.app()) as second:
        sign_in(first)
        ada = first.cookies[SESSION_COOKIE]
        second.cookies.set(SESSION_COOKIE, ada)
        assert second.get("/review", follow_redirects=False).status_code == 200
        csrf = csrf_of(first.get("/review"))
        assert first.post("/review/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
        assert second.get("/review", follow_redirects=False).headers["location"] == "/review/login"

        first.cookies.clear()
        sign_in(first, "ben@example.org")
        second.cookies.set(SESSION_COOKIE, first.cookies[SESSION_COOKIE])
        assert second.get("/review", follow_redirects=False).status_code == 200
        Reviewers(two.store).disable(BEN)
        assert second.get("/review", follow_redirects=False).headers["location"] == "/review/login"
        assert first.get("/review", follow_redirects=False).headers["location"] == "/review/login"
        assert "do not match an active reviewer" in sign_in(first, BEN).text
