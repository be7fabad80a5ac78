"""Who may touch a task, through the pages: a task the diagram gives to a person (the
candidate's dossier, one assessor's verdict) is theirs alone on the inbox and Mijn CMI pages
too. Nobody else sees, claims or completes it; it has no Release button (unclaiming is refused
anyway) and no delegation; staff reassigning it are held to the first assignment's rules. The
inbox pages through the list with a "next page" link (the API with a Link header)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from certflow.engine.facade import Actor
from certflow.services import access
from certflow.store.db import session_scope
from tests.web.pages_support import PASSWORD, Browser
from tests.web.test_api import Api, serving
from tests.web.test_task_rules import DATA, open_task, register_with_mentor, start, to_verdicts


@pytest.fixture
def api(sqlite_url: str) -> Iterator[Api]:
    with serving() as people:
        people.engine.deploy(Actor.system(), DATA)
        for name in ("ada", "bob", "eve"):
            people.person(name, ["assessor"])
        people.person("mo", ["assessor", "mentor"])
        with session_scope() as s:
            for name in ("olga", "cas", "ann", "ada", "bob", "mo"):
                access.set_password(s, name, PASSWORD)
        yield people


def browser(api: Api, who: str) -> Browser:
    b = Browser(TestClient(api.client.app))
    b.sign_in(f"{who}@example.org" if who not in ("olga", "cas", "ann", "mila") else _email(who))
    return b


def _email(who: str) -> str:
    with session_scope() as s:
        from certflow.services import accounts
        return accounts.get(s, who).email or ""


def _release_button(html: str) -> bool:
    return bool(re.search(r"/unclaim", html)) or ">Vrijgeven<" in html or ">Release<" in html


def test_a_verdict_is_its_assessors_alone_on_the_pages(api: Api) -> None:
    instance_id = start(api)
    to_verdicts(api, instance_id)
    first, second = open_task(api, instance_id, "assess_1"), open_task(api, instance_id, "assess_2")
    ada, bob = browser(api, "ada"), browser(api, "bob")
    listed = bob.get("/inbox").text
    assert second["id"] in listed and first["id"] not in listed
    peek = bob.get(f"/inbox/tasks/{first['id']}")
    assert peek.status_code == 403  # it answered 200, with the refusal in the panel
    assert 'name="passed"' not in peek.text and "task-title\">Verdict (assessor 1)" not in peek.text
    grabbed = bob.post(f"/inbox/tasks/{first['id']}/claim", {}, form_page="/inbox")
    assert grabbed.status_code == 403 and "Er is niets gewijzigd." in grabbed.text
    sneaked = bob.post(f"/inbox/tasks/{first['id']}/complete", {"passed": "true"}, form_page="/inbox")
    assert sneaked.status_code in (403, 409)
    # Ada's own task: her form, no Release, no delegation, and a word why.
    own = ada.get(f"/inbox/tasks/{first['id']}").text
    assert 'name="passed"' in own
    assert not _release_button(own)
    assert "Overdragen aan een collega" not in own and "/delegate" not in own
    assert "alleen die persoon kan eraan werken" in own
    # Pressing Release anyway (an old page): refused in Dutch, nothing changes.
    refused = ada.post(f"/inbox/tasks/{first['id']}/unclaim", {}, form_page="/inbox")
    assert refused.status_code == 409
    assert "ze kan niet terug naar de groep" in refused.text  # the facade's refusal, in Dutch
    assert "handed back" not in refused.text
    assert open_task(api, instance_id, "assess_1")["assignee"] == "ada"
    assert first["id"] not in bob.get("/inbox").text


def test_staff_reassign_a_personal_task_on_the_page_under_the_first_assignments_rules(api: Api) -> None:
    register_with_mentor(api, "cas", "mo")
    instance_id = start(api)
    to_verdicts(api, instance_id)
    tid = open_task(api, instance_id, "assess_1")["id"]
    olga = browser(api, "olga")
    page = olga.get(f"/inbox/tasks/{tid}").text
    assert not _release_button(page) and "Aan iemand toewijzen" in page
    for who, why in (("mo", "mo mag deze taak niet krijgen: mo was de mentor van cas."),
                     ("bob", "bob mag deze taak niet krijgen: de twee assessoren moeten verschillende mensen zijn.")):
        refused = olga.post(f"/inbox/tasks/{tid}/assign", {"assignee": who}, form_page="/inbox")
        assert refused.status_code == 422, refused.text
        assert why in refused.text
        assert open_task(api, instance_id, "assess_1")["assignee"] == "ada"
    moved = olga.post(f"/inbox/tasks/{tid}/assign", {"assignee": "eve"}, form_page="/inbox")
    assert moved.status_code == 200
    assert open_task(api, instance_id, "assess_1")["assignee"] == "eve"
    assert tid not in browser(api, "ada").get("/inbox").text


def test_a_candidates_dossier_is_theirs_alone_on_mijn_cmi(api: Api) -> None:
    instance_id = start(api)
    tid = open_task(api, instance_id, "dossier")["id"]
    cas, ann = browser(api, "cas"), browser(api, "ann")
    assert 'name="summary"' in cas.get(f"/mijn/tasks/{tid}").text
    other = ann.get(f"/mijn/tasks/{tid}")
    assert other.status_code == 403 and 'name="summary"' not in other.text
    sneaked = ann.post(f"/mijn/tasks/{tid}", {"summary": "not mine"}, form_page="/mijn")
    assert sneaked.status_code in (403, 409)
    assert open_task(api, instance_id, "dossier")["assignee"] == "cas"
    assert api.get(f"/api/tasks/{tid}", "olga").json()["personal"] is True


def test_the_inbox_pages_on_with_a_next_link(api: Api) -> None:
    ids = [start(api, who) for who in ("cas", "ann")]
    for instance_id in ids:
        to_verdicts_of(api, instance_id)
    ada = browser(api, "ada")
    first = ada.get("/inbox?limit=1")
    link = re.search(r'href="(/inbox\?[^"]*after=[^"]+)"[^>]*rel="next"[^>]*>Volgende pagina', first.text)
    assert link, first.text
    shown_first = set(re.findall(r'href="/inbox/tasks/([0-9a-f-]+)', first.text))
    second = ada.get(link.group(1).replace("&amp;", "&"))
    shown_second = set(re.findall(r'href="/inbox/tasks/([0-9a-f-]+)', second.text))
    assert len(shown_first) == len(shown_second) == 1 and shown_first != shown_second
    assert "Volgende pagina" not in second.text and "Eerste pagina" in second.text
    assert "Volgende pagina" not in ada.get("/inbox").text  # everything fits on one page
    broken = ada.get("/inbox?after=garbage")  # an edited link: said in Dutch, first page shown
    assert broken.status_code == 200 and "Deze paginalink is niet (meer) geldig" in broken.text
    assert len(re.findall(r'href="/inbox/tasks/([0-9a-f-]+)', broken.text)) == 2
    # The API: limit and after, the next page in the Link header.
    page1 = api.get("/api/inbox?limit=1", "ada")
    assert len(page1.json()) == 1 and 'rel="next"' in page1.headers["link"]
    page2 = api.get("/api/inbox", "ada", params={"limit": 1, "after": page1.headers["x-next-after"]})
    assert len(page2.json()) == 1 and page2.json()[0]["id"] != page1.json()[0]["id"]
    assert "link" not in page2.headers
    assert api.get("/api/inbox?limit=0", "ada").status_code == 422
    assert api.get("/api/inbox?after=garbage", "ada").status_code == 422


def to_verdicts_of(api: Api, instance_id: str) -> None:
    dossier = open_task(api, instance_id, "dossier")
    who = dossier["assignee"]
    done = api.post(f"/api/tasks/{dossier['id']}/complete", who, {"data": {"summary": "mine"}})
    assert done.status_code == 200, done.text


def test_pages_name_groups_and_processes_in_words_not_codes(api: Api) -> None:
    instance_id = start(api)
    to_verdicts(api, instance_id)
    mine = browser(api, "cas").get("/mijn").text
    assert "In behandeling bij de assessoren:" in mine
    assert "bij assessor:" not in mine
    tid = open_task(api, instance_id, "assess_1")["id"]
    page = browser(api, "olga").get(f"/inbox/tasks/{tid}").text
    assert "groep Assessor" in page and "groep assessor" not in page
    assert "Iemand uit groep Assessor." in page
    assert '<option value="assessor">Assessor</option>' in page


def test_refusals_are_in_the_visitors_language(api: Api) -> None:
    instance_id = start(api)
    to_verdicts(api, instance_id)
    tid = open_task(api, instance_id, "assess_1")["id"]
    olga = browser(api, "olga")
    dutch = olga.post(f"/inbox/tasks/{tid}/assign", {"assignee": "cas"}, form_page="/inbox")
    assert "cas zit niet in de groep Assessor." in dutch.text
    olga.post("/language", {"language": "en", "back": "/inbox"}, form_page="/inbox")
    english = olga.post(f"/inbox/tasks/{tid}/assign", {"assignee": "cas"}, form_page="/inbox")
    assert "cas is not in group &#39;Assessor&#39;" in english.text
    # The API keeps its English text with the code.
    assert "not in group 'assessor'" in api.post(f"/api/tasks/{tid}/assign", "olga",
                                                 {"assignee": "cas"}).json()["error"]
