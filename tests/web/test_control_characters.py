"""A control character (a NUL byte, a vertical tab: typed by nobody) in any text input is refused
at the edge, naming the field, and changes nothing: on PostgreSQL a NUL was a 500 (psycopg's
DataError) and, where it got stored, broke the pages and jobs that read it later (a saved
inbox filter, the analytics' JSON, an invoice's XML). Tab, line feed and carriage return stay
allowed: they are how a textarea's lines arrive; in a page's form a vertical tab or form feed is
read as a line break (Word ends a line inside a paragraph with a vertical tab)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from certflow.store.accounts import PendingSignUp
from certflow.store.db import session_scope
from certflow.store.models import AuditEvent, Instance, User as UserRow
from tests.web.pages_support import ADDRESS, Browser, person
from tests.web.test_api import APPLICATION, Api, serving

NUL, VT = "a\x00b", "a\x0bb"
ADMITTED = "Regel een\r\nregel\ttwee"


@pytest.fixture
def api(any_db: str) -> Iterator[Api]:
    with serving() as people:
        people.deploy()
        yield people


def _rows() -> tuple[int, int]:
    with session_scope() as s:
        return (int(s.scalar(select(func.count()).select_from(Instance)) or 0),
                int(s.scalar(select(func.count()).select_from(AuditEvent)) or 0))


def _start(api: Api, business_key: str = "APP-1", **data: Any) -> Any:
    return api.post("/api/instances", "cas", {"process_id": "certification", "business_key": business_key,
                                              "data": {**APPLICATION, "candidate": "cas", **data}})


@pytest.mark.parametrize(("body", "field"), [
    ({"business_key": NUL}, "business_key"),
    ({"business_key": VT}, "business_key"),
    ({"motivation": NUL}, "data.motivation"),
    ({"notes": {"list": ["ok", VT]}}, "data.notes.list.1"),
    ({NUL: "x"}, "data.a?b"),
])
def test_a_json_body_with_one_anywhere_is_422_naming_it(api: Api, body: dict[str, Any], field: str) -> None:
    before = _rows()
    data = dict(body)
    response = _start(api, data.pop("business_key", "APP-1"), **data)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert "control character" in response.json()["error"]
    assert _rows() == before


@pytest.mark.parametrize(("key", "motivation", "field"), [
    ("APP-\ud800", "Ik wil", "business_key"), ("APP-1", "a\ud800b", "data.motivation")])
def test_a_lone_surrogate_in_a_json_body_is_422_naming_it(api: Api, key: str, motivation: str, field: str) -> None:
    """JSON's "\\ud800" escape makes a lone surrogate, which no text holds. A motivation with one
    was stored, and every answer showing it failed to encode it: the office's inbox, through
    the API and on its pages, answered 500."""
    before = _rows()
    body = json.dumps({"process_id": "certification", "business_key": key,
                       "data": {**APPLICATION, "candidate": "cas", "motivation": motivation}})
    response = api.post("/api/instances", "cas", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert "lone surrogate" in response.json()["error"]
    assert _rows() == before


def test_task_data_and_message_names_are_refused_too(api: Api) -> None:
    assert _start(api).status_code == 201
    api.h.run_jobs()
    task = api.task("olga", "check_eligibility")
    api.post(f"/api/tasks/{task['id']}/claim", "olga")
    done = api.post(f"/api/tasks/{task['id']}/complete", "olga", {"data": {"eligible": True, "remarks": NUL}})
    assert (done.status_code, done.json()["field"]) == (422, "data.remarks")
    assert api.task("olga", "check_eligibility")["id"] == task["id"]  # still open
    message = api.post("/api/messages", "olga", {"name": "payment\x00", "correlation": {}, "payload": {}})
    assert (message.status_code, message.json()["field"]) == (422, "name")


def test_tab_and_new_lines_are_text(api: Api) -> None:
    assert _start(api, motivation=ADMITTED).status_code == 201


@pytest.mark.parametrize(("url", "field"), [
    ("/api/instances?business_key=a%00b", "business_key"),
    ("/api/inbox?candidate=a%0Bb", "candidate"),
    ("/api/tasks/a%00b", "path"),
    ("/api/instances/a%00b", "path"),
    ("/public/register?q=a%00b", "q"),
])
def test_a_path_or_query_with_one_is_422_naming_it(api: Api, url: str, field: str) -> None:
    response = api.get(url, "olga")
    assert (response.status_code, response.json()["field"]) == (422, field)


# -- pages ---------------------------------------------------------------------------------
@pytest.fixture
def office(any_db: str) -> Browser:
    browser = Browser()
    browser.sign_in(person("olga", ["office"], staff=True))
    return browser


@pytest.mark.parametrize("url", ["/inbox?candidate=a%00b", "/inbox/tasks/a%00b", "/monitor?business_key=a%00b",
                                 "/admin/people?q=a%01b"])
def test_a_page_address_with_one_is_a_clear_422_page(office: Browser, url: str) -> None:
    page = office.get(url)
    assert page.status_code == 422
    assert "controleteken" in page.text and "Er is niets veranderd" in page.text


def test_a_saved_filter_with_one_is_refused_and_not_saved(office: Browser) -> None:
    page = office.post("/inbox/filters", {"name": "Gif", "candidate": NUL}, form_page="/inbox")
    assert page.status_code == 422
    assert "candidate bevat een controleteken" in page.text
    assert "Gif" not in office.get("/inbox").text


def test_a_sign_up_with_one_is_refused_in_the_visitor_s_language(any_db: str) -> None:
    browser = Browser()
    form = {"display_name": "Nul Persoon", "email": "nul@example.org", "date_of_birth": "1980-01-01",
            "street": "Straat 1\x00", "postal_code": "3511 AA", "city": "Utrecht", "country": "NL",
            "language": "en", "password": "a long enough password 123",
            "password_again": "a long enough password 123", "privacy": "yes"}
    browser.client.cookies.set("certflow_lang", "en")
    page = browser.post("/sign-up", form, form_page="/sign-up")
    assert page.status_code == 422
    assert "street contains a control character" in page.text and "Nothing has changed" in page.text
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(UserRow)) == 0
        assert s.scalar(select(func.count()).select_from(PendingSignUp)) == 0


def test_an_application_with_one_starts_nothing(any_db: str) -> None:
    from certflow.bootstrap import build_engine
    from tests.processes.driver import PROCESSES
    from tests.support import Harness

    h = Harness(build_engine())
    h.engine.deploy(h.staff, PROCESSES, only=["certification"])
    browser = Browser()
    browser.sign_in(person("cas", ["candidate"], address=ADDRESS, date_of_birth=datetime.date(1980, 1, 1)))
    page = browser.post("/mijn/apply", {"eligibility_route": "hbo_diploma", "motivation": NUL, "submit": "yes"},
                        form_page="/mijn/apply")
    assert page.status_code == 422 and "motivation bevat een controleteken" in page.text
    assert _rows() == (0, 0)


def test_a_line_break_pasted_from_word_is_a_line_break_in_a_page_form(any_db: str) -> None:
    """Word's Shift+Enter is a vertical tab: a motivation written there and pasted in is taken,
    with its lines; in a one-line field it is the field's own error, on the form again."""
    from certflow.bootstrap import build_engine
    from tests.processes.driver import PROCESSES
    from tests.support import Harness

    h = Harness(build_engine())
    h.engine.deploy(h.staff, PROCESSES, only=["certification"])
    browser = Browser()
    browser.sign_in(person("cas", ["candidate"], address=ADDRESS, date_of_birth=datetime.date(1980, 1, 1)))
    sent = browser.post("/mijn/apply", {"eligibility_route": "hbo_diploma", "submit": "yes",
                                        "motivation": "Regel een\x0bregel twee\x0cregel drie"},
                        form_page="/mijn/apply")
    assert sent.status_code == 200
    with session_scope() as s:
        [instance] = s.scalars(select(Instance)).all()
        started = s.scalars(select(AuditEvent).where(AuditEvent.instance_id == instance.id,
                                                     AuditEvent.action == "instance_started")).one()
    assert started.detail["data"]["motivation"] == "Regel een\nregel twee\nregel drie"
    page = browser.post("/account", {"display_name": "Cas\x0bTester", "email": "cas@example.org",
                                     "date_of_birth": "1980-01-01", "language": "nl", **ADDRESS},
                        form_page="/account")
    assert page.status_code == 422 and 'id="display_name-error"' in page.text
