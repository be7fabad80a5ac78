"""The studio's form editor: a process owner edits a task's JSON Schema with a preview drawn
by the inbox's own form code, saves it into the draft (nothing runs from it), and deploys it
as a new version; a broken schema is refused with the reason and the draft stays as it was."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.web.test_pages_studio import Studio, _draft, _versions, site  # noqa: F401  (fixture)

FORM = "/studio/certification/forms/eligibility_check.json"
LABEL = "Toelaatbaar / Eligible"


def _text(owner: Studio) -> str:
    return owner.sources()["forms/eligibility_check.json"]


def _post(owner: Studio, url: str, **data: str) -> Any:
    return owner.b.client.post(url, data={"csrf_token": owner.token, **data}, follow_redirects=False)


@pytest.mark.parametrize("who", ["cas", "mila", "olga"])
def test_only_process_owners_edit_forms(site: dict[str, Any], who: str) -> None:  # noqa: F811
    other = Studio(site, who)
    text = _text(Studio(site, "petra"))
    for url in ("/studio/certification/forms", FORM):
        assert other.b.get(url).status_code == 403, url
    for url in (FORM, FORM + "/preview", FORM + "/deploy"):
        assert _post(other, url, schema=text.replace(LABEL, "X / X")).status_code == 403, url
    assert _draft() is None and _versions() == 1


def test_preview_is_the_assignees_form_in_either_language(site: dict[str, Any]) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    assert "eligibility_check.json" in owner.b.get("/studio/certification/forms").text
    page = owner.b.get(FORM)
    assert page.status_code == 200 and 'id="form-preview"' in page.text
    assert "Toelaatbaar" in page.text and "Toelaatbaarheid beoordelen" in page.text
    changed = _text(owner).replace(LABEL, "Voldoet aan de eisen / Meets the requirements")
    nl = _post(owner, FORM + "/preview", schema=changed, preview_lang="nl")
    assert nl.status_code == 200 and "Voldoet aan de eisen" in nl.text and 'name="eligible"' in nl.text
    en = _post(owner, FORM + "/preview", schema=changed, preview_lang="en")
    assert "Meets the requirements" in en.text and "Voldoet" not in en.text
    assert _draft() is None  # a preview saves nothing


@pytest.mark.parametrize("schema,reason", [
    ('{"type": "object", "properties": {', "geen geldige JSON: regel 1, kolom"),
    ('["a list"]', "een formulier is een JSON-object"),
    ('{"type": "object", "properties": {"x": {"type": "text"}}}',
     "geen geldig JSON Schema bij properties → x → type"),
    ('{"type": "string"}', "moet van type object zijn, niet string"),
    # Deep JSON ran the parser, the schema check or drawing the form out of stack: a 500.
    ("[" * 100_000 + "]" * 100_000, "dieper genest dan 64 niveaus"),
    ('{"type": "object", "properties": {"a": ' * 300 + "{}" + "}}" * 300, "dieper genest dan 64 niveaus"),
    ('{"type": "object", "title": "a\\u0000b"}', "een stuurteken (zoals \\u0000) of een los surrogaatteken"),
    # JSON's escape of a lone surrogate: the preview could not be encoded (a 500), nor a task page.
    ('{"type": "object", "title": "a\\ud800b"}', "(zoals \\ud800) bij title"),
])
def test_a_broken_schema_is_shown_and_refused(site: dict[str, Any], schema: str, reason: str) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    preview = _post(owner, FORM + "/preview", schema=schema)
    assert preview.status_code == 200 and reason in preview.text and "data-schema-errors" in preview.text
    saved = _post(owner, FORM, schema=schema)
    assert saved.status_code == 422 and "data-refused" in saved.text and reason in saved.text
    assert _draft() is None and _versions() == 1


def test_save_then_deploy_makes_a_new_version_new_tasks_use(site: dict[str, Any]) -> None:  # noqa: F811
    engine, owner = site["engine"], Studio(site, "petra")
    changed = _text(owner).replace(LABEL, "Voldoet / Meets the requirements")
    saved = _post(owner, FORM, schema=changed, preview_lang="nl")
    assert saved.status_code == 303 and "saved=1" in saved.headers["location"]
    draft = _draft()
    assert draft is not None and "Voldoet" in draft.sources["forms/eligibility_check.json"]
    assert _versions() == 1
    assert "Voldoet" in owner.b.get(saved.headers["location"]).text
    assert engine.definition_source("certification")["forms"]["eligibility_check.json"][
        "properties"]["eligible"]["title"] == LABEL  # not live before deploy

    deployed = _post(owner, FORM + "/deploy")
    assert deployed.status_code == 303 and "deployed=2" in deployed.headers["location"]
    assert _versions() == 2 and _draft() is None
    live = engine.definition_source("certification")["forms"]["eligibility_check.json"]
    assert live["properties"]["eligible"]["title"] == "Voldoet / Meets the requirements"
    assert json.loads(_text(owner)) == live


def test_a_preview_language_not_offered_does_not_go_into_the_address(site: dict[str, Any]) -> None:  # noqa: F811
    """The saved form's page opens in the preview's language, taken from the form: anything
    else went into the redirect as it came (100,000 characters: an address no browser takes)."""
    owner = Studio(site, "petra")
    for odd in ("x" * 100_000, "en&saved=0#top", ""):
        saved = _post(owner, FORM, schema=_text(owner), preview_lang=odd)
        assert saved.status_code == 303
        assert saved.headers["location"] == FORM + "?saved=1&lang=nl"  # petra's own language
    assert _post(owner, FORM, schema=_text(owner), preview_lang="en").headers["location"].endswith("&lang=en")


def test_unknown_forms_and_deploy_without_a_draft(site: dict[str, Any]) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    assert owner.b.get("/studio/certification/forms/nope.json").status_code == 404
    assert _post(owner, "/studio/certification/forms/..%2Fcertification.bpmn", schema="{}").status_code == 404
    refused = _post(owner, FORM + "/deploy")
    assert refused.status_code == 422 and "er is geen concept van &#39;certification&#39; om uit te rollen" \
        in refused.text
    assert _versions() == 1


def test_deploy_takes_the_form_as_on_screen(site: dict[str, Any]) -> None:  # noqa: F811
    engine, owner = site["engine"], Studio(site, "petra")
    refused = _post(owner, FORM + "/deploy", schema='{"type": "object", "properties": {')
    assert refused.status_code == 422 and "geen geldige JSON" in refused.text
    assert _draft() is None and _versions() == 1
    changed = _text(owner).replace(LABEL, "Voldoet / Meets the requirements")
    assert _post(owner, FORM + "/deploy", schema=changed).status_code == 303
    assert _versions() == 2 and _draft() is None
    live = engine.definition_source("certification")["forms"]["eligibility_check.json"]
    assert live["properties"]["eligible"]["title"] == "Voldoet / Meets the requirements"
