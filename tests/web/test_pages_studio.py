"""The process owners' studio (in-process browser): who may use it, drafts that are saved but
never run, the deploy check naming the element, deploy as version N+1 (a running case keeps
its version), the version history with what changed, download and restore, and bad input
refused with the file, element and reason while nothing is deployed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

import certflow.bootstrap
from certflow.bootstrap import build_engine
from certflow.engine.facade import Actor
from certflow.store.db import session_scope
from certflow.store.models import Definition
from certflow.store.studio import StudioDraft
from tests.processes.driver import PROCESSES
from tests.support import Harness, statements
from tests.web.pages_support import ADDRESS, Browser, csrf_of, person

BPMN = "certification.bpmn"
DUE = '<spiffworkflow:property name="due" value="&quot;P5D&quot;"/>'
TEMPLATE = "value=\"'certification/application_received'\""


@pytest.fixture
def site(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    harness = Harness(build_engine())
    engine = harness.engine
    monkeypatch.setattr(certflow.bootstrap, "engine", lambda: engine)
    engine.deploy(Actor.system(), PROCESSES, only=["certification"])
    people = {
        "petra": person("petra", ["process_owner"], staff=True),
        "olga": person("olga", ["office"], staff=True),
        "mila": person("mila", ["mentor"]),
        "cas": person("cas", ["candidate"], address=ADDRESS),
    }
    return {"engine": engine, "harness": harness, **people}


class Studio:
    """A signed-in browser that talks to the studio's JSON routes with its CSRF header."""

    def __init__(self, site: dict[str, Any], who: str) -> None:
        self.b = Browser()
        self.b.sign_in(site[who])
        self.token = csrf_of(self.b.get("/account").text)

    def post(self, url: str, body: Any = None) -> Any:
        return self.b.client.post(url, json=body, headers={"X-CSRF-Token": self.token,
                                                           "Accept": "application/json"})

    def sources(self) -> dict[str, str]:
        response = self.b.get("/studio/certification/workspace.json")
        assert response.status_code == 200
        return dict(response.json()["sources"])


def _versions() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(Definition)
                                  .where(Definition.process_id == "certification")) or 0)


def _draft() -> StudioDraft | None:
    with session_scope() as session:
        return session.get(StudioDraft, "certification")


@pytest.mark.parametrize("who", ["cas", "mila", "olga"])
def test_only_process_owners_use_the_studio(site: dict[str, Any], who: str) -> None:
    studio = Studio(site, who)
    for url in ("/studio", "/studio/certification", "/studio/certification/workspace.json",
                "/studio/handlers.json", "/studio/certification/versions",
                "/studio/certification/versions/1.bpmn"):
        assert studio.b.get(url).status_code == 403, url
    sources = Studio(site, "petra").sources()
    for url, body in (("/studio/certification/draft", {"sources": sources}),
                      ("/studio/certification/check", {"sources": sources}),
                      ("/studio/certification/deploy", None),
                      ("/studio/certification/versions/1/restore", None)):
        assert studio.post(url, body).status_code == 403, url
    assert _draft() is None and _versions() == 1
    assert "/studio" not in studio.b.get("/account").text


def test_anonymous_visitors_are_sent_to_sign_in(site: dict[str, Any]) -> None:
    response = Browser().get("/studio/certification", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/sign-in")


def test_draft_check_deploy_history_download_restore(site: dict[str, Any]) -> None:
    engine, owner = site["engine"], Studio(site, "petra")
    assert 'href="/studio"' in owner.b.get("/account").text  # in the menu
    page = owner.b.get("/studio/certification")
    assert page.status_code == 200 and "/static/build/studio.js" in page.text
    catalogue = owner.b.get("/studio/handlers.json").json()
    email = next(o for o in catalogue["operators"] if o["name"] == "email/send")
    assert {p["name"] for p in email["parameters"]} >= {"recipient", "template", "context"}

    old = engine.start(Actor("cas", ("candidate",)), "certification", "APP-old",
                       {"candidate": "cas", "eligibility_route": "hbo_diploma", "motivation": "Ik wil"})
    sources = owner.sources()
    assert DUE in sources[BPMN]
    sources[BPMN] = sources[BPMN].replace(DUE, DUE.replace("P5D", "P7D"))
    assert owner.post("/studio/certification/draft", {"sources": sources}).status_code == 200
    assert _draft() is not None and _versions() == 1  # saved, not deployed
    assert "P7D" in owner.sources()[BPMN]
    assert "concept" in owner.b.get("/studio").text

    assert owner.post("/studio/certification/check", {"sources": sources}).json() == {"problems": []}
    done = owner.post("/studio/certification/deploy")
    assert done.status_code == 200 and done.json() == {"process_id": "certification", "version": 2,
                                                       "created": True}
    assert _draft() is None and _versions() == 2
    new = engine.start(Actor("bea", ("candidate",)), "certification", "APP-new",
                       {"candidate": "bea", "eligibility_route": "hbo_diploma", "motivation": "Ik wil"})
    assert engine.instance(Actor.system(), old.id).version == 1
    assert engine.instance(Actor.system(), new.id).version == 2

    with statements() as seen:
        history = owner.b.get("/studio/certification/versions").text
    # Every version's sources, for the diffs, but not their specs (the largest column).
    assert any("definitions.sources" in q for q in seen) and not any("definitions.spec" in q for q in seen)
    assert "Versie 2" in history and "check_eligibility" in history and "P7D" in history
    v1 = owner.b.get("/studio/certification/versions/1.bpmn")
    assert v1.headers["content-disposition"].endswith('certification_v1.bpmn"') and DUE in v1.text
    restored = owner.b.client.post("/studio/certification/versions/1/restore",
                                   data={"csrf_token": owner.token}, follow_redirects=False)
    assert restored.status_code == 303
    assert DUE in owner.sources()[BPMN] and _versions() == 2


def test_check_names_the_element_and_deploy_refuses(site: dict[str, Any]) -> None:
    owner = Studio(site, "petra")
    sources = owner.sources()
    sources[BPMN] = sources[BPMN].replace(TEMPLATE, "value=\"'certification/no_such_mail'\"", 1)
    problems = owner.post("/studio/certification/check", {"sources": sources}).json()["problems"]
    assert [p["element"] for p in problems] == ["send_confirmation"]
    assert "no_such_mail" in problems[0]["message"]
    assert owner.post("/studio/certification/draft", {"sources": sources}).status_code == 200
    refused = owner.post("/studio/certification/deploy")
    assert refused.status_code == 422
    assert refused.json()["problems"][0]["element"] == "send_confirmation"
    assert _versions() == 1 and _draft() is not None


def test_a_bad_condition_is_named_on_its_flow_and_not_deployed(site: dict[str, Any]) -> None:
    owner = Studio(site, "petra")
    sources = owner.sources()
    sources[BPMN] = sources[BPMN].replace(">eligible == True<", ">eligible = True<", 1)
    problems = owner.post("/studio/certification/check", {"sources": sources}).json()["problems"]
    assert problems == [{"file": BPMN, "element": "flow_eligible_yes",  # Python's own words stay English
                         "message": "voorwaarde van volgordestroom 'Ja': geen geldige Python-expressie "
                                    "(invalid syntax)"}]
    assert owner.post("/studio/certification/draft", {"sources": sources}).status_code == 200
    refused = owner.post("/studio/certification/deploy")
    assert refused.status_code == 422 and refused.json()["problems"] == problems
    assert _versions() == 1 and _draft() is not None


@pytest.mark.parametrize("expression, problem", [
    ("verdict == 'approved'", None),
    ("  not approved\n", None),
    ("", None),
    ("verdict = 'approved'", {"kind": "syntax", "detail": "invalid syntax",
                              "message": "geen geldige Python-expressie (invalid syntax)"}),
    ("verdict.__class__", {"kind": "refused",
                           "detail": "attribuut '__class__' is niet toegestaan (namen die met '_' beginnen zijn "
                                     "gereserveerd) (regel 1)",
                           "message": "attribuut '__class__' is niet toegestaan (namen die met '_' beginnen zijn "
                                      "gereserveerd) (regel 1)"}),
])
def test_the_panel_asks_whether_a_condition_would_run(site: dict[str, Any], expression: str,
                                                      problem: dict[str, str] | None) -> None:
    answer = Studio(site, "petra").post("/studio/condition", {"expression": expression})
    assert answer.status_code == 200 and answer.json() == {"problem": problem}


def test_only_process_owners_ask_about_conditions(site: dict[str, Any]) -> None:
    assert Studio(site, "olga").post("/studio/condition", {"expression": "x"}).status_code == 403
    owner = Studio(site, "petra")
    assert owner.post("/studio/condition", {"expression": 1}).status_code == 422
    assert owner.b.client.post("/studio/condition", json={"expression": "x"}).status_code == 403  # no CSRF token


def _broken(sources: dict[str, str], kind: str) -> dict[str, str]:
    text = sources[BPMN]
    if kind == "not_bpmn":
        return {**sources, BPMN: "this is not a diagram"}
    if kind == "other_xml":
        return {**sources, BPMN: "<html><body>hi</body></html>"}
    if kind == "doctype":
        return {**sources, BPMN: text.replace("<bpmn:definitions", '<!DOCTYPE x [<!ENTITY e "boom">]>'
                                              "<bpmn:definitions", 1)}
    if kind == "too_large":
        return {**sources, BPMN: text.replace("</bpmn:definitions>", "<!--" + "x" * 2_100_000 + "-->"
                                              "</bpmn:definitions>")}
    assert kind == "bad_name"
    return {**sources, "../../etc/passwd.json": "{}"}


@pytest.mark.parametrize("kind,reason", [
    ("not_bpmn", "geen geldige XML"), ("other_xml", "geen BPMN 2.0-bestand"),
    ("doctype", "DOCTYPE- en ENTITY-declaraties zijn niet toegestaan"), ("too_large", "te groot"),
    ("bad_name", "deze bestandsnaam mag niet"),
])
def test_bad_drafts_are_refused_with_the_reason(site: dict[str, Any], kind: str, reason: str) -> None:
    owner = Studio(site, "petra")
    response = owner.post("/studio/certification/draft", {"sources": _broken(owner.sources(), kind)})
    assert response.status_code == 422
    assert any(reason in p["message"] for p in response.json()["problems"]), response.json()
    assert _draft() is None and _versions() == 1


@pytest.mark.parametrize("url", ["/studio/certification/draft", "/studio/certification/check",
                                 "/studio/certification/changes", "/studio/certification/deploy"])
@pytest.mark.parametrize("body,reason", [
    (b'{"sources": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested deeper than 64 levels"),
    (b'{"sources": {"a.bpmn": "x"}, "x": ' + b"[" * 100 + b"]" * 100 + b"}", "nested deeper than 64 levels"),
    (b'{"sources": {"certification.bpmn": "<a>\\u0000</a>"}}', "sources.certification.bpmn contains a control"),
])
def test_a_deep_or_controlled_body_is_a_422_naming_it(site: dict[str, Any], url: str, body: bytes,
                                                      reason: str) -> None:
    """100,000 levels of JSON exhausted the parser's stack: a 500 on each of the four."""
    owner = Studio(site, "petra")
    response = owner.b.client.post(url, content=body, headers={
        "X-CSRF-Token": owner.token, "Content-Type": "application/json", "Accept": "application/json"})
    assert response.status_code == 422 and reason in response.json()["error"]
    assert _draft() is None and _versions() == 1


def test_a_revision_of_1e999_is_a_stale_one(site: dict[str, Any]) -> None:
    """JSON's 1e999 is infinity, whose int() overflowed (a 500); it is no revision any draft has,
    so the save or deploy is refused as a stale one, and nothing changes."""
    owner = Studio(site, "petra")
    sources = json.dumps(owner.sources())
    headers = {"X-CSRF-Token": owner.token, "Content-Type": "application/json", "Accept": "application/json"}
    saved = owner.b.client.post("/studio/certification/draft", headers=headers,
                                content=f'{{"sources": {sources}, "revision": 1e999}}')
    assert saved.status_code == 409 and _draft() is None
    assert owner.post("/studio/certification/draft", {"sources": json.loads(sources)}).status_code == 200
    deployed = owner.b.client.post("/studio/certification/deploy", headers=headers, content='{"revision": 1e999}')
    assert deployed.status_code == 409 and _versions() == 1


def test_a_draft_breaking_a_convention_is_not_deployed(site: dict[str, Any]) -> None:
    owner = Studio(site, "petra")
    sources = owner.sources()
    sources[BPMN] = sources[BPMN].replace(
        '<spiffworkflow:property name="form" value="eligibility_check.json"/>', "", 1)
    assert owner.post("/studio/certification/draft", {"sources": sources}).status_code == 200
    refused = owner.post("/studio/certification/deploy").json()
    assert {"element": "check_eligibility",
            "message": "gebruikerstaak zonder eigenschap 'form' (het formulier dat de taak toont)"}.items() \
        <= refused["problems"][0].items()
    assert _versions() == 1


@pytest.mark.parametrize("content,reason", [
    (b"\x89PNG\r\n\x1a\n", "geen UTF-8-tekst"),
    (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><d>&e;</d>', "DOCTYPE"),
    (b"<bpmn>" + b"x" * 2_000_001 + b"</bpmn>", "te groot (meer dan 2,000,000 bytes)"),
])
def test_bad_uploads_are_refused_on_the_page(site: dict[str, Any], content: bytes, reason: str) -> None:
    owner = Studio(site, "petra")
    response = owner.b.client.post("/studio/certification/upload", data={"csrf_token": owner.token},
                                   files={"diagram": ("upload.bpmn", content, "application/xml")})
    assert response.status_code == 422 and reason in response.text
    assert _draft() is None and _versions() == 1


def test_a_good_upload_becomes_the_draft(site: dict[str, Any]) -> None:
    owner = Studio(site, "petra")
    text = owner.sources()[BPMN].replace(DUE, DUE.replace("P5D", "P9D"))
    response = owner.b.client.post("/studio/certification/upload", data={"csrf_token": owner.token},
                                   files={"diagram": ("c.bpmn", text.encode(), "application/xml")},
                                   follow_redirects=False)
    assert response.status_code == 303
    assert "P9D" in owner.sources()[BPMN] and _versions() == 1


def test_the_studio_speaks_english_too(site: dict[str, Any]) -> None:
    person("pete", ["process_owner"], staff=True, language="en")
    pete = Studio({"pete": "pete@example.org"}, "pete")
    editor = pete.b.get("/studio/certification").text
    assert "Save draft" in editor and "Deploy as new version" in editor and "Studio" in editor
    assert "Deployed as version {v}" in editor  # the script's texts, in the page's language
    assert "Versions of certification" in pete.b.get("/studio/certification/versions").text


def _three_problems(sources: dict[str, str]) -> dict[str, str]:
    """A user task without its form, a handler the server does not know, a due term that is
    not one."""
    text = sources[BPMN].replace('<spiffworkflow:property name="form" value="eligibility_check.json"/>', "", 1)
    text = text.replace('<spiffworkflow:serviceTaskOperator id="email/send" resultVariable="confirmation_email">',
                        '<spiffworkflow:serviceTaskOperator id="email/sent" resultVariable="confirmation_email">', 1)
    return {**sources, BPMN: text.replace(DUE, DUE.replace("P5D", "soon"), 1)}


def test_the_deploy_check_speaks_the_owners_language(site: dict[str, Any]) -> None:
    """What the deploy check finds is said in the owner's language, on the diagram and when a
    deploy is refused: Dutch for a Dutch owner, English for an English one; the file, the
    element ids, the handler's and the term's own words stay as they are."""
    person("pete", ["process_owner"], staff=True, language="en")
    petra, pete = Studio(site, "petra"), Studio({"pete": "pete@example.org"}, "pete")
    sources = _three_problems(petra.sources())

    def found(owner: Studio) -> list[tuple[str, str]]:
        answer = owner.post("/studio/certification/check", {"sources": sources})
        assert answer.status_code == 200 and {p["file"] for p in answer.json()["problems"]} == {BPMN}
        return sorted((p["element"], p["message"]) for p in answer.json()["problems"])

    dutch, english = found(petra), found(pete)
    unknown = english[-1][1]
    assert unknown.startswith("unknown handler 'email/sent' (known: ") and unknown.endswith(")")
    known = unknown.removeprefix("unknown handler 'email/sent' (known: ")[:-1]
    assert "email/send" in known.split(", ")
    assert english == [
        ("check_eligibility", "due: 'soon' is neither an ISO 8601 duration (P14D, PT4H, P1M) nor a number "
                              "of working days (10 werkdagen)"),
        ("check_eligibility", "user task without a 'form' property"),
        ("send_confirmation", f"unknown handler 'email/sent' (known: {known})"),
    ]
    assert dutch == [
        ("check_eligibility", "gebruikerstaak zonder eigenschap 'form' (het formulier dat de taak toont)"),
        ("check_eligibility", "termijn (due): 'soon' is geen ISO 8601-duur (P14D, PT4H, P1M) en geen "
                              "aantal werkdagen (10 werkdagen)"),
        ("send_confirmation", f"onbekende handler 'email/sent' (bekend: {known})"),
    ]

    # Deploying the draft anyway: refused, in the same words.
    assert petra.post("/studio/certification/draft", {"sources": sources}).status_code == 200
    for owner, said, refused in ((petra, dutch, "uitrollen geweigerd: "), (pete, english, "deploy refused: ")):
        answer = owner.post("/studio/certification/deploy").json()
        assert sorted((p["element"], p["message"]) for p in answer["problems"]) == said
        assert answer["error"].startswith(refused + f"{BPMN} [")
        assert all(f"{BPMN} [{element}]: {message}" in answer["error"] for element, message in said)
    assert _versions() == 1

    # The condition the panel asks about as the owner types: the sandbox's refusal too.
    refusal = petra.post("/studio/condition", {"expression": "verdict.__class__"}).json()["problem"]
    assert refusal["detail"] == ("attribuut '__class__' is niet toegestaan (namen die met '_' beginnen "
                                 "zijn gereserveerd) (regel 1)")


def test_each_handler_and_its_parameters_are_explained_in_the_owners_language(site: dict[str, Any]) -> None:
    """A process owner picking a service task's handler reads what it does and what each of
    its parameters wants, in their own language; no handler is left without words."""
    person("pete", ["process_owner"], staff=True, language="en")
    dutch = Studio(site, "petra").b.get("/studio/handlers.json").json()["operators"]
    english = Studio({"pete": "pete@example.org"}, "pete").b.get("/studio/handlers.json").json()["operators"]
    import handlers

    ours = {name for name, h in handlers.load_all().handlers.items() if h.fn.__module__.startswith("handlers.")}
    assert len(ours) >= 19
    for nl, en in zip(dutch, english, strict=True):
        if en["name"] not in ours:  # a test's own handler
            continue
        assert en["description"] and nl["description"] != en["description"], en["name"]
        for p_nl, p_en in zip(nl["parameters"], en["parameters"], strict=True):
            assert p_en["description"] and p_nl["description"] != p_en["description"], (en["name"], p_en["name"])
    suspend = next(o for o in dutch if o["name"] == "register/suspend")
    assert suspend["description"] == "Schorst de inschrijving, met de reden."
    assert [p["description"] for p in suspend["parameters"]] == [
        "De professional, als gebruikersnaam: meestal candidate of holder.",
        "Waarom, in een zin: die blijft bij de wijziging bewaard en kan gemaild worden."]
    assert next(o for o in english if o["name"] == "register/suspend")["description"] == \
        "Suspend the register entry, with the reason."
