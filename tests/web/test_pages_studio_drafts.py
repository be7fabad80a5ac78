"""Two process owners editing one studio draft: each editor loads a revision and a save carries
it back, so the second of two saves made from the same revision is refused (409) with who saved
and when, in the owner's language, and changes nothing; the refused owner's text stays on the
page next to the saved draft, and saving again from there replaces it on purpose. The same for
the diagram (JSON), a form, a fee table and an email text. And before a deploy: what it would
change against the newest deployed version."""

from __future__ import annotations

import html
import re
from typing import Any

from certflow.store.db import session_scope
from certflow.store.studio_texts import StudioSharedDraft
from certflow.web.pages.formats import date_time
from tests.web.pages_support import person
from tests.web.test_pages_studio import BPMN, DUE, Studio, _draft, _versions, site  # noqa: F401  (fixture)

FORM = "/studio/certification/forms/eligibility_check.json"
TABLE = "/studio/shared/fees.dmn"
EMAIL = "certification/application_received.nl.txt"
_REVISION = re.compile(r'name="revision" value="(\d*)"')


def _owners(site: dict[str, Any]) -> tuple[Studio, Studio]:  # noqa: F811
    person("piet", ["process_owner"], staff=True)
    return Studio(site, "petra"), Studio({**site, "piet": "piet@example.org"}, "piet")


def _revision(page: str) -> str:
    found = _REVISION.search(page)
    assert found, "the editor carries no revision"
    return found.group(1)


def _post(owner: Studio, url: str, **data: str) -> Any:
    return owner.b.client.post(url, data={"csrf_token": owner.token, **data}, follow_redirects=False)


def _textarea(page: str, field: str) -> str:
    found = re.search(rf'<textarea[^>]*id="{field}"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, f"no textarea {field}"
    return html.unescape(found.group(1))


def test_the_second_save_of_one_diagram_revision_is_refused(site: dict[str, Any]) -> None:  # noqa: F811
    petra, piet = _owners(site)
    loaded = piet.b.get("/studio/certification/workspace.json").json()
    assert loaded["revision"] == 0 and not loaded["is_draft"]
    mine = petra.sources()
    mine[BPMN] = mine[BPMN].replace(DUE, DUE.replace("P5D", "P7D"))
    saved = petra.post("/studio/certification/draft", {"sources": mine, "revision": 0})
    assert saved.status_code == 200 and saved.json()["revision"] == 1

    theirs = dict(loaded["sources"])
    theirs[BPMN] = theirs[BPMN].replace(DUE, DUE.replace("P5D", "P9D"))
    refused = piet.post("/studio/certification/draft", {"sources": theirs, "revision": 0})
    assert refused.status_code == 409
    body = refused.json()
    draft = _draft()
    assert draft is not None and "P7D" in draft.sources[BPMN] and "P9D" not in draft.sources[BPMN]
    assert body["conflict"]["saved_by"] == "petra" and body["conflict"]["revision"] == 1
    assert body["error"] == f"petra heeft dit concept op {date_time(draft.saved_at)} opgeslagen, nadat u het opende."

    # Piet chose to save his over hers: he now carries the revision he was told about.
    again = piet.post("/studio/certification/draft", {"sources": theirs, "revision": 1})
    assert again.status_code == 200 and again.json()["revision"] == 2
    assert "P9D" in piet.sources()[BPMN]
    # ...and petra's editor, still at revision 1, is the one refused now, in English for pete.
    person("pete", ["process_owner"], staff=True, language="en")
    pete = Studio({**site, "pete": "pete@example.org"}, "pete")
    stale = pete.post("/studio/certification/draft", {"sources": mine, "revision": 1})
    assert stale.status_code == 409 and stale.json()["error"].startswith("piet saved this draft on ")


def test_a_deploy_of_a_draft_saved_since_is_refused(site: dict[str, Any]) -> None:  # noqa: F811
    petra, piet = _owners(site)
    sources = petra.sources()
    sources[BPMN] = sources[BPMN].replace(DUE, DUE.replace("P5D", "P7D"))
    assert petra.post("/studio/certification/draft", {"sources": sources, "revision": 0}).json()["revision"] == 1
    sources[BPMN] = sources[BPMN].replace("P7D", "P8D")
    assert piet.post("/studio/certification/draft", {"sources": sources, "revision": 1}).status_code == 200

    refused = petra.post("/studio/certification/deploy", {"revision": 1})
    assert refused.status_code == 409 and refused.json()["conflict"]["saved_by"] == "piet"
    assert _versions() == 1
    done = petra.post("/studio/certification/deploy", {"revision": 2})
    assert done.status_code == 200 and done.json()["version"] == 2
    # The draft is gone with the deploy: an editor still holding revision 2 is told so.
    gone = piet.post("/studio/certification/draft", {"sources": sources, "revision": 2})
    assert gone.status_code == 409
    assert gone.json()["error"] == "Dit concept is uitgerold of weggegooid nadat u het opende."
    assert _draft() is None


def test_the_deploy_preview_lists_what_changes_against_the_newest_version(site: dict[str, Any]) -> None:  # noqa: F811
    petra = Studio(site, "petra")
    sources = petra.sources()
    same = petra.b.client.post("/studio/certification/changes", json={"sources": sources},
                               headers={"X-CSRF-Token": petra.token})
    assert same.status_code == 200
    assert "Niets gewijzigd ten opzichte van versie 1" in same.text
    sources[BPMN] = sources[BPMN].replace(DUE, DUE.replace("P5D", "P7D"))
    changed = petra.b.client.post("/studio/certification/changes", json={"sources": sources},
                                  headers={"X-CSRF-Token": petra.token})
    assert "Ten opzichte van versie 1, de nieuwste uitgerolde: 0 toegevoegd, 0 verwijderd, 1 gewijzigd." in changed.text
    row = re.search(r"<code>check_eligibility</code>.*?</tr>", changed.text, re.S)
    assert row and "P5D" in row.group(0) and "P7D" in row.group(0)
    assert _draft() is None and _versions() == 1  # a preview saves and deploys nothing


def test_the_second_save_of_one_form_revision_is_refused(site: dict[str, Any]) -> None:  # noqa: F811
    petra, piet = _owners(site)
    hers, his = petra.b.get(FORM).text, piet.b.get(FORM).text
    original = _textarea(hers, "schema")
    assert _revision(hers) == _revision(his) == "0"
    mine = original.replace("Toelaatbaar / Eligible", "Toelaatbaar (petra) / Eligible")
    assert _post(petra, FORM, schema=mine, revision="0").status_code == 303

    theirs = original.replace("Toelaatbaar / Eligible", "Toelaatbaar (piet) / Eligible")
    refused = _post(piet, FORM, schema=theirs, revision="0")
    assert refused.status_code == 409
    assert "Uw wijzigingen zijn niet opgeslagen" in refused.text and "petra heeft dit concept op" in refused.text
    assert "(piet)" in _textarea(refused.text, "schema")  # his text kept in the editor
    assert "(petra)" in _textarea(refused.text, "saved-draft")  # hers shown beside it
    assert "(petra)" in petra.sources()["forms/eligibility_check.json"]
    # Saving again from the refused page replaces her draft: he has seen it.
    assert _revision(refused.text) == "1"
    assert _post(piet, FORM, schema=theirs, revision="1").status_code == 303
    assert "(piet)" in petra.sources()["forms/eligibility_check.json"]
    # Deploying from a page opened before his save is refused too; nothing deployed.
    stale = _post(petra, FORM + "/deploy", schema=theirs, revision="1")
    assert stale.status_code == 409 and _versions() == 1


def test_the_second_save_of_one_table_revision_is_refused(site: dict[str, Any]) -> None:  # noqa: F811
    petra, piet = _owners(site)
    hers, his = petra.b.get(TABLE).text, piet.b.get(TABLE).text
    original = _textarea(hers, "content")
    mine, theirs = original.replace(">650.00<", ">690.00<"), original.replace(">650.00<", ">695.00<")
    assert mine != original and _revision(his) == "0"
    assert _post(petra, TABLE, content=mine, revision="0").status_code == 303

    refused = _post(piet, TABLE, content=theirs, revision="0")
    assert refused.status_code == 409 and "petra heeft dit concept op" in refused.text
    assert "695.00" in _textarea(refused.text, "content") and "690.00" in _textarea(refused.text, "saved-draft")
    with session_scope() as session:
        draft = session.get(StudioSharedDraft, "fees.dmn")
        assert draft is not None and "690.00" in draft.content and draft.saved_by == "petra"
    # Checking keeps the revision he loaded: a check is no licence to overwrite.
    checked = _post(piet, TABLE + "/check", content=theirs, revision="0")
    assert _revision(checked.text) == "0"
    assert _post(piet, TABLE, content=theirs, revision=_revision(refused.text)).status_code == 303


def test_the_second_save_of_one_email_revision_is_refused(site: dict[str, Any]) -> None:  # noqa: F811
    petra, piet = _owners(site)
    edit = "/studio/emails/edit/" + EMAIL
    hers, his = petra.b.get(edit).text, piet.b.get(edit).text
    original = _textarea(hers, "content")
    assert _revision(hers) == _revision(his) == "0"
    save = "/studio/emails/save/" + EMAIL
    assert _post(petra, save, content=original + "\nGroet van petra", revision="0").status_code == 303
    refused = _post(piet, save, content=original + "\nGroet van piet", revision="0")
    assert refused.status_code == 409 and "petra heeft dit concept op" in refused.text
    assert "Groet van piet" in _textarea(refused.text, "content")
    assert "Groet van petra" in _textarea(refused.text, "saved-draft")
    with session_scope() as session:
        draft = session.get(StudioSharedDraft, "email/" + EMAIL)
        assert draft is not None and draft.content.endswith("Groet van petra") and draft.revision == 1
