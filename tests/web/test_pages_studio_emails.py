"""The studio's email texts: a process owner edits a template with the mail rendered on its
sample data, saves a draft that changes no mail, and deploys it as a new version that the email
service then writes from (the file stays the fallback). Syntax errors and variables the sample
data lacks are shown, and refuse the deploy with nothing stored."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from certflow.clock import CLOCK
from certflow.registry import HandlerContext
from certflow.services import email
from certflow.settings import get_settings
from certflow.store.db import session_scope
from certflow.store.studio_texts import EmailTemplate, StudioSharedDraft
from tests.web.pages_support import person
from tests.web.test_pages_studio import Studio, site  # noqa: F401  (fixture)

NAME = "certification/application_received.nl.txt"
EDIT = "/studio/emails/edit/" + NAME
SUBJECT = "Subject: We hebben uw aanvraag voor certificering ontvangen"


def _post(owner: Studio, url: str, **data: str) -> Any:
    return owner.b.client.post(url, data={"csrf_token": owner.token, **data}, follow_redirects=False)


def _file() -> str:
    return (email.TEMPLATE_DIR / NAME).read_text(encoding="utf-8")


def _state() -> tuple[int, int]:
    with session_scope() as session:
        versions = session.scalar(select(func.count()).select_from(EmailTemplate)) or 0
        drafts = session.scalar(select(func.count()).select_from(StudioSharedDraft)) or 0
        return int(versions), int(drafts)


def _sent_subject(key: str) -> str:
    """What the email service really sends to cas (Dutch) now."""
    with session_scope() as session:
        ctx = HandlerContext(session=session, now=CLOCK.now(), idempotency_key=key,
                             settings=get_settings())
        result = email.send_email(ctx, email.SendEmail(recipient="cas",
                                                       template="certification/application_received"))
        return str(result["subject"])


@pytest.mark.parametrize("who", ["cas", "mila", "olga"])
def test_only_process_owners_edit_email_texts(site: dict[str, Any], who: str) -> None:  # noqa: F811
    other = Studio(site, who)
    for url in ("/studio/emails", EDIT):
        assert other.b.get(url).status_code == 403, url
    for url in ("/studio/emails/save/" + NAME, "/studio/emails/preview/" + NAME,
                "/studio/emails/discard/" + NAME, "/studio/emails/deploy"):
        assert _post(other, url, content=_file() + "x").status_code == 403, url
    assert _state() == (0, 0)


def test_preview_renders_the_mail_on_sample_data(site: dict[str, Any]) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    listing = owner.b.get("/studio/emails").text
    assert NAME in listing and "certification/application_received.en.html" in listing
    page = owner.b.get(EDIT)
    assert page.status_code == 200 and "Beste Anna de Vries" in page.text
    changed = _file().replace(SUBJECT, "Subject: Uw aanvraag is binnen, {{ recipient_name }}")
    shown = _post(owner, "/studio/emails/preview/" + NAME, content=changed)
    assert "Uw aanvraag is binnen, Anna de Vries" in shown.text and "data-template-errors" not in shown.text
    assert _state() == (0, 0)  # a preview saves nothing


@pytest.mark.parametrize("content,reason", [
    ("Subject: x\n{% if %}", "regel 2: Expected an expression"),  # Jinja's own words stay English
    ("Subject: x\n{{ recipient_name }", "regel 2"),
    ("Beste {{ recipient_name }}", "de eerste regel moet &#39;Subject: ...&#39; zijn"),
])
def test_syntax_errors_are_shown_and_refused(site: dict[str, Any], content: str, reason: str) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    shown = _post(owner, "/studio/emails/preview/" + NAME, content=content)
    assert "data-template-errors" in shown.text and reason in shown.text
    refused = _post(owner, "/studio/emails/save/" + NAME, content=content)
    assert refused.status_code == 422 and "data-refused" in refused.text and reason in refused.text
    assert _state() == (0, 0)


@pytest.mark.parametrize("content,reason", [
    # Python's internals through a template's globals: the shell ran in the web process.
    ("Subject: x\n{{ cycler.__init__.__globals__.os.popen('echo ran-$((6*7))').read() }}", "unsafe"),
    ("Subject: x\n{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
    ("Subject: x\n{{ recipient_name.format.__self__ }}", "has no attribute '__self__'"),
    ("Subject: x\n{{ 1 / 0 }}", "division by zero"),
    # A loop that would run on: range() is capped, and so are a render's time and size.
    ("Subject: x\n{% for i in range(10**9) %}{% endfor %}", "Range too big"),
    ("Subject: x\n{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
     "longer than 2 s"),
    ("Subject: x\n{% for i in range(99999) %}{{ 'x' * 99 }}{% endfor %}", "longer than 1,000,000"),
])
def test_a_template_reaches_only_its_values_and_is_bounded(site: dict[str, Any], content: str,  # noqa: F811
                                                           reason: str) -> None:
    owner = Studio(site, "petra")
    shown = _post(owner, "/studio/emails/preview/" + NAME, content=content)
    assert shown.status_code == 200 and "data-template-errors" in shown.text
    assert reason in html.unescape(shown.text) and "ran-42" not in shown.text
    assert _post(owner, "/studio/emails/save/" + NAME, content=content).status_code == 303  # it parses
    refused = _post(owner, "/studio/emails/deploy")
    assert refused.status_code == 422 and _state() == (0, 1)


def test_an_undefined_variable_refuses_the_deploy(site: dict[str, Any]) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    broken = _file().replace("Beste {{ recipient_name }}", "Beste {{ candidate_nickname }}")
    shown = _post(owner, "/studio/emails/preview/" + NAME, content=broken)
    assert "&#39;candidate_nickname&#39; is undefined" in shown.text
    assert _post(owner, "/studio/emails/save/" + NAME, content=broken).status_code == 303  # a draft
    refused = _post(owner, "/studio/emails/deploy")
    assert refused.status_code == 422 and "candidate_nickname" in refused.text
    assert _state() == (0, 1)
    assert _sent_subject("mail-undefined") == SUBJECT.removeprefix("Subject: ")


def test_save_then_deploy_changes_the_mail_sent(site: dict[str, Any]) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    changed = _file().replace(SUBJECT, "Subject: Uw aanvraag is binnen")
    saved = _post(owner, "/studio/emails/save/" + NAME, content=changed)
    assert saved.status_code == 303 and _state() == (0, 1)
    draft_page = owner.b.get(saved.headers["location"]).text
    assert "Uw aanvraag is binnen" in draft_page and 'action="/studio/emails/deploy"' in draft_page
    assert _sent_subject("mail-before") == SUBJECT.removeprefix("Subject: ")  # a draft sends nothing new

    assert _post(owner, "/studio/emails/deploy").status_code == 303
    assert _state() == (1, 0)
    assert _sent_subject("mail-after") == "Uw aanvraag is binnen"
    assert "Versie 1 is live" in owner.b.get(EDIT).text
    assert _file().startswith(SUBJECT)  # the file is untouched: version 0, the fallback


def test_unknown_templates_and_deploy_without_drafts(site: dict[str, Any]) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    assert owner.b.get("/studio/emails/edit/_signature.nl.txt").status_code == 404
    assert owner.b.get("/studio/emails/edit/../../settings.py").status_code == 404
    assert _post(owner, "/studio/emails/save/samples.json", content="{}").status_code == 404
    refused = _post(owner, "/studio/emails/deploy")
    assert refused.status_code == 422 and "er is geen concept van een e-mailtekst om uit te rollen" in refused.text


def _deploy_form_drafts(owner: Studio) -> str:
    """The ``drafts`` field of the deploy form on the list page, as the owner's browser has it."""
    page = owner.b.get("/studio/emails").text
    match = re.search(r'name="drafts" value="([^"]*)"', page)
    assert match, "the list page has no deploy form"
    return html.unescape(match.group(1))


def test_deploy_ships_only_the_drafts_the_owner_saw(site: dict[str, Any]) -> None:  # noqa: F811
    """Two owners: petra opens the list, then ian saves another text. Petra's deploy is refused
    (409, naming the text, who saved it and that nothing was deployed), no mail changes; from the
    list as it is now, her deploy ships both."""
    site["ian"] = person("ian", ["process_owner"], staff=True)
    petra, ian = Studio(site, "petra"), Studio(site, "ian")
    other = "certification/application_received.en.txt"
    mine = _file().replace(SUBJECT, "Subject: Uw aanvraag is binnen")
    assert _post(petra, "/studio/emails/save/" + NAME, content=mine).status_code == 303
    seen = _deploy_form_drafts(petra)
    assert seen == f"{NAME}:1"

    theirs = (email.TEMPLATE_DIR / other).read_text(encoding="utf-8").replace("Subject: ", "Subject: [ian] ", 1)
    assert _post(ian, "/studio/emails/save/" + other, content=theirs).status_code == 303
    refused = _post(petra, "/studio/emails/deploy", drafts=seen)
    assert refused.status_code == 409, refused.text
    assert "data-conflict" in refused.text and other in refused.text and "ian" in refused.text
    assert "nothing was deployed" in refused.text.lower() or "niets" in refused.text.lower()
    assert _state() == (0, 2)
    assert _sent_subject("mail-refused") == SUBJECT.removeprefix("Subject: ")

    # ian changes his mind and discards: what petra saw is gone too, so refused again.
    now = _deploy_form_drafts(petra)
    assert _post(ian, "/studio/emails/discard/" + other).status_code == 303
    assert _post(petra, "/studio/emails/deploy", drafts=now).status_code == 409
    assert _state() == (0, 1)

    assert _post(petra, "/studio/emails/deploy", drafts=_deploy_form_drafts(petra)).status_code == 303
    assert _state() == (1, 0)
    assert _sent_subject("mail-deployed") == "Uw aanvraag is binnen"
