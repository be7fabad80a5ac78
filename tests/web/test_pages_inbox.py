"""The inbox and task pages as their users see them (in-process browser): the list with
overdue marked in words, filters saved and shared, claim/assign/delegate, the task's form
with per-field errors, the stale-page message, and documents of one's own cases only."""

from __future__ import annotations

import re

import pytest

import certflow.bootstrap

from certflow.bootstrap import build_engine
from certflow.engine.facade import Actor
from certflow.services import case_documents as documents
from certflow.store.db import session_scope
from certflow.store.models import User
from tests.processes.driver import PROCESSES
from tests.support import Harness
from tests.web.pages_support import ADDRESS, Browser, person

PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture
def site(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    harness = Harness(build_engine())
    engine = harness.engine
    # The pages ask certflow.bootstrap for the process's engine: this test's, on its database.
    monkeypatch.setattr(certflow.bootstrap, "engine", lambda: engine)
    engine.deploy(Actor.system(), PROCESSES, only=["certification"])
    people = {
        "olga": person("olga", ["office"], staff=True), "otto": person("otto", ["office"], staff=True),
        "mila": person("mila", ["mentor"]), "max": person("max", ["mentor"]),
        "cas": person("cas", ["candidate"], address=ADDRESS), "bea": person("bea", ["candidate"], address=ADDRESS),
    }
    for who in ("cas", "bea"):
        engine.start(Actor(who, ("candidate",)), "certification", f"APP-{who}",
                     {"candidate": who, "eligibility_route": "hbo_diploma", "motivation": "Ik wil"})
    harness.run_jobs()
    return people


def signed_in(site: dict[str, str], who: str) -> Browser:
    b = Browser()
    b.sign_in(site[who])
    return b


def _task_ids(html: str) -> list[str]:
    return re.findall(r'href="/inbox/tasks/([0-9a-f-]+)', html)


def test_the_office_sees_its_queue_and_opens_a_task_with_its_form(site: dict[str, str]) -> None:
    b = signed_in(site, "olga")
    page = b.get("/inbox")
    assert page.status_code == 200
    assert "APP-cas" in page.text and "APP-bea" in page.text and "Toelaatbaarheid beoordelen" in page.text
    task_id = _task_ids(page.text)[0]
    opened = b.get(f"/inbox/tasks/{task_id}")
    assert "Toelaatbaar" in opened.text and 'name="eligible"' not in opened.text  # claim first
    assert re.search(r"groep Bureau\s+·\s+termijn", opened.text)  # it read "Bureau· termijn"
    claimed = b.post(f"/inbox/tasks/{task_id}/claim", {}, form_page=f"/inbox/tasks/{task_id}")
    assert claimed.status_code == 200 and 'name="eligible"' in claimed.text
    assert f"toegewezen aan {accounts_name('olga')}" in claimed.text  # by name, not "olga"


def test_overdue_is_said_in_words_and_filters_narrow_and_save(site: dict[str, str]) -> None:
    from certflow.clock import CLOCK, parse_duration
    from certflow.store.db import session_scope

    with session_scope() as s:
        CLOCK.advance(s, parse_duration("P6D"), allowed=True)
    b = signed_in(site, "olga")  # after the clock moved: a 6-day-old session has expired
    page = b.get("/inbox")
    assert page.text.count("Te laat") >= 2 or page.text.count("Overdue") >= 2
    narrowed = b.get("/inbox?candidate=bea")
    assert "APP-bea" in narrowed.text and "APP-cas" not in narrowed.text
    saved = b.post("/inbox/filters", {"candidate": "bea", "name": "Bea", "shared_group": "office"},
                   form_page="/inbox?candidate=bea")
    assert saved.status_code == 200 and "Bea" in saved.text
    other = signed_in(site, "otto")
    shared = other.get("/inbox")
    assert "Bea" in shared.text
    filter_id = re.search(r'/inbox\?filter=(\d+)', shared.text).group(1)
    assert "APP-cas" not in other.get(f"/inbox?filter={filter_id}").text


def test_completing_with_bad_input_shows_field_errors_then_stale_page_is_refused(site: dict[str, str]) -> None:
    b = signed_in(site, "olga")
    task_id = _task_ids(b.get("/inbox?candidate=cas").text)[0]
    b.post(f"/inbox/tasks/{task_id}/claim", {}, form_page=f"/inbox/tasks/{task_id}")
    form_page = f"/inbox/tasks/{task_id}"
    bad = b.post(f"/inbox/tasks/{task_id}/complete", {"eligible": "false", "remarks": ""}, form_page=form_page)
    assert bad.status_code == 422
    assert 'aria-invalid="true"' in bad.text and ("Vul dit veld in." in bad.text or "Fill in this field." in bad.text)
    token = re.search(r'name="csrf_token" value="([^"]+)"', b.get(form_page).text).group(1)
    done = b.post(f"/inbox/tasks/{task_id}/complete", {"eligible": "true", "remarks": ""}, csrf=token)
    assert done.status_code == 200 and task_id not in _task_ids(done.text)
    again = b.post(f"/inbox/tasks/{task_id}/complete", {"eligible": "true", "remarks": ""}, csrf=token)
    assert again.status_code == 409
    assert "nothing was saved" in again.text or "niets opgeslagen" in again.text


def accounts_name(username: str) -> str:
    from certflow.services import accounts

    with session_scope() as session:
        return accounts.get(session, username).display_name


def test_bulk_assign_and_delegate(site: dict[str, str]) -> None:
    b = signed_in(site, "olga")
    ids = _task_ids(b.get("/inbox").text)
    token = re.search(r'name="csrf_token" value="([^"]+)"', b.last.text).group(1)
    refused = b.client.post("/inbox/assign", data={"task_ids": ids, "assignee": "mila", "csrf_token": token})
    # Each line names the task as the office knows it (title and case number), not its id.
    outcomes = re.search(r'<ul class="bulk-outcomes">(.*?)</ul>', refused.text, re.S).group(1)
    assert "Niet elke taak is toegewezen" in refused.text and "Toelaatbaarheid beoordelen (" in outcomes
    assert not any(task_id in outcomes for task_id in ids)
    response = b.client.post("/inbox/assign", data={"task_ids": ids, "assignee": "otto", "csrf_token": token})
    assert response.status_code == 200
    # Handing one over offers the group's other members by name (otto holds it now: olga).
    panel = b.get(f"/inbox/tasks/{ids[0]}").text
    offered = re.search(r'<datalist id="assignee-choices">(.*?)</datalist>', panel, re.S).group(1)
    assert f'value="olga" label="{accounts_name("olga")}"' in offered
    assert 'value="otto"' not in offered and "mila" not in offered
    listed = b.get("/inbox?group=office").text  # who holds them, by name: not the username
    otto_name = accounts_name("otto")
    assert otto_name in listed and f"<td>otto</td>" not in listed
    assert f"toegewezen aan {otto_name}" in b.get(f"/inbox?group=office&task={ids[0]}").text
    otto = signed_in(site, "otto")
    mine = otto.get("/inbox?scope=mine")
    assert set(_task_ids(mine.text)) == set(ids)
    delegated = otto.post(f"/inbox/tasks/{ids[0]}/delegate", {"assignee": "mila"}, form_page=f"/inbox/tasks/{ids[0]}")
    assert delegated.status_code == 422 and "mila" in delegated.text  # not in the office group


def test_bulk_assignment_offers_the_tasks_groups_members_by_name(site: dict[str, str]) -> None:
    from types import SimpleNamespace

    from certflow.services import accounts
    from certflow.web.pages.inbox import _assignable

    page = signed_in(site, "olga").get("/inbox").text
    assert 'id="bulk-assignee" name="assignee" autocomplete="off" list="bulk-assignee-choices"' in page
    offered = re.search(r'<datalist id="bulk-assignee-choices">(.*?)</datalist>', page, re.S).group(1)
    # The office's tasks on the page: the office's members, by name; nobody of another group.
    assert re.findall(r'value="(\w+)"', offered) == ["olga", "otto"]
    assert f'value="otto" label="{accounts_name("otto")}"' in offered
    # Tasks of several groups: each person with the groups they are in; never a candidate group.
    person("mo", ["office", "mentor"], staff=True)
    tasks = [SimpleNamespace(candidate_group=g) for g in ("office", "mentor", "candidate", None)]
    with session_scope() as session:
        office = accounts.get(session, "olga")
        offered_all = dict(_assignable(session, office, tasks, "nl"))
        mentor_only = _assignable(session, accounts.get(session, "mila"), tasks, "nl")
    assert sorted(offered_all) == ["max", "mila", "mo", "olga", "otto"]
    assert offered_all["mo"] == "Mo Tester (Mentor, Bureau)" and offered_all["olga"] == "Olga Tester (Bureau)"
    assert mentor_only == []  # not staff: no bulk assignment, no list


def test_documents_only_for_those_on_the_case(site: dict[str, str]) -> None:
    cas = Actor("cas", ("candidate",))
    engine = build_engine()
    case = engine.progress(cas)[0].id
    with session_scope() as session:
        doc = documents.upload(session, cas, case, "dossier.pdf", PDF)
    office = signed_in(site, "olga")
    download = office.get(f"/documents/{doc.id}")
    assert download.status_code == 200 and download.content == PDF
    assert "dossier.pdf" in download.headers["content-disposition"]
    for outsider in ("max", "bea"):
        refused = signed_in(site, outsider).get(f"/documents/{doc.id}")
        assert refused.status_code == 404 or refused.status_code == 403
        assert refused.content != PDF


def test_a_candidate_cannot_open_the_inbox(site: dict[str, str]) -> None:
    assert signed_in(site, "cas").get("/inbox").status_code == 403


@pytest.mark.parametrize("query", ["limit=%C2%B2", "filter=%C2%B2", "filter=99999999999999999999",
                                   "limit=99999999999999999999"])
def test_a_page_size_or_filter_that_is_no_plain_number_shows_the_inbox(site: dict[str, str], query: str) -> None:
    """``"²".isdigit()`` is true and int("²") raises: the inbox was a 500."""
    page = signed_in(site, "olga").get(f"/inbox?{query}")
    assert page.status_code in (200, 400, 404, 422), page.status_code
    assert "Werkbak" in page.text


def test_deleting_a_filter_by_an_over_large_id_is_a_clear_page(site: dict[str, str]) -> None:
    """99999999999999999999 overflowed the driver: a 500."""
    b = signed_in(site, "olga")
    page = b.post("/inbox/filters/99999999999999999999/delete", {}, form_page="/inbox")
    assert page.status_code == 422 and "Dat is niet gelukt" in page.text


def _context(html: str) -> dict[str, str]:
    """The task's case context as the page shows it: label -> value, in words."""
    block = re.search(r'<dl class="context">(.*?)</dl>', html, re.S)
    assert block, "the task shows no case data"
    pairs = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", block.group(1), re.S)
    return {dt.strip(): re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", dd)).strip() for dt, dd in pairs}


@pytest.mark.parametrize(("language", "expected"), [
    ("nl", {"Kandidaat": "Cas Tester (cas)", "Hoe de kandidaat het hbo-niveau aantoont":
            "Een afgeronde driejarige voltijdse hbo-opleiding (bachelordiploma)", "Motivatie": "Ik wil"}),
    ("en", {"Candidate": "Cas Tester (cas)", "How the candidate shows HBO level":
            "A completed 3-year full-time HBO (bachelor) diploma", "Motivation": "Ik wil"}),
])
def test_the_eligibility_task_shows_what_the_office_judges(site: dict[str, str], language: str,
                                                          expected: dict[str, str]) -> None:
    """It said "Deze taak toont geen zaakgegevens": the office judged without the route."""
    with session_scope() as session:
        session.get_one(User, "olga").language = language
    b = signed_in(site, "olga")
    page = b.get("/inbox?candidate=cas")
    task_id = _task_ids(page.text)[0]
    opened = b.get(f"/inbox/tasks/{task_id}").text
    context = _context(opened)
    assert context == expected
    assert "hbo_diploma" not in str(context) and "Eligibility route" not in context
    # The task's own title in the page's language too (the diagram names it in Dutch).
    title = {"nl": "Toelaatbaarheid beoordelen", "en": "Eligibility check"}[language]
    assert f'<h2 id="task-title">{title}</h2>' in opened
    assert f">{title}</a>" in page.text
