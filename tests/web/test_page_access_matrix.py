"""The security matrix of the browser pages: every page route (every method) x who asks,
checked against ONE table (``PAGE_RULES``), as tests/web/test_security_matrix.py does for the
JSON API. A page route missing from the table fails the test, and so does a rule for a route
that is gone: a new page cannot ship without saying who may use it.

Who asks (``ROLES``): ``anonymous``; ``cas``, a candidate asking about her own objects (her
cases, task, documents, invoice, certificate, e-mail change); ``bea``, another candidate asking
about cas's; ``olga`` (office), ``cor`` (coordinator), ``petra`` (process owner), ``adam``
(admin), all staff; ``mila``, a mentor (not staff) who holds a task on one of cas's cases.

A request counts as *refused* when it is answered 401 or 403, when an anonymous visitor is sent
to sign in (``/sign-in?next=``), or, for the rules in ``HIDING``, 404: there the code answers
"not found" for what is not yours, so that an id tells nothing. Anything else is *allowed*;
a 5xx fails whatever the rule. Every POST carries the asker's CSRF token, so what is checked
is who may act, not the token. Refused askers go first and allowed ones last on each route, and
the routes that change what other routes need run last (``CHANGING``) or on an object of their
own (``FRESH``), so one allowed POST does not spoil the next case.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

import certflow.bootstrap
import handlers.email  # noqa: F401  (registers email/send)
import handlers.invoicing  # noqa: F401  (registers invoicing/*)
from certflow.engine.facade import Actor
from certflow.engine.inbox_filters import InboxFilter
from certflow.services import accounts, email_changes, saved_filters
from certflow.services import case_documents as documents
from certflow.settings import get_settings
from certflow.store.db import session_scope
from certflow.store.register import Certificate
from certflow.web.app import create_app
from tests.processes.driver import PROCESSES
from tests.support import Harness
from tests.web.pages_support import ADDRESS, PASSWORD, Browser, csrf_of, person

ROLES = ("anonymous", "cas", "bea", "olga", "cor", "petra", "adam", "mila")
PEOPLE: dict[str, tuple[list[str], bool]] = {
    "cas": (["candidate"], False), "bea": (["candidate"], False), "olga": (["office"], True),
    "cor": (["coordinator"], True), "petra": (["process_owner"], True), "adam": (["admin"], True),
    "mila": (["mentor"], False),
}
CASE_DATA_STAFF = {"olga", "cor", "adam"}  # certflow.roles.CASE_DATA_ROLES
ALLOWED: dict[str, set[str]] = {
    "public": set(ROLES),
    "signed_in": set(ROLES) - {"anonymous"},
    # Mijn CMI's own lists and forms: each candidate sees and acts on their own only.
    "candidate": {"cas", "bea"},
    # One of cas's things on Mijn CMI (or her e-mail change link): cas alone. Staff have their
    # own pages for it (inbox, monitor, people).
    "cas_own": {"cas"},
    # A case's documents: its candidate, the staff who see case data, and whoever works on the
    # case (mila holds its review task); not another candidate, not a process owner.
    "case": {"cas", "mila"} | CASE_DATA_STAFF,
    # A task (mila's review of cas's dossier): its holder and the staff who see case data.
    "task": {"mila"} | CASE_DATA_STAFF,
    # The inbox: everyone who works on cases; the list shows each what is theirs.
    "worker": {"olga", "cor", "petra", "adam", "mila"},
    # Bulk assignment takes any staff's list; each task in it is then the engine's to allow
    # (certflow.engine.queue.may_hand_over), as on the task page.
    "staff": {"olga", "cor", "petra", "adam"},
    # A saved filter is deleted by whoever saved it (olga; shared with the office).
    "filter_owner": {"olga"},
    "people_clerk": {"olga", "cor", "adam"},
    "admin": {"adam"},
    # What escalated to the coordinators (the office's escalated eligibility check).
    "escalation": {"cor"},
    # The dashboard and analytics: figures for the office and process owners.
    "office_figures": {"olga", "cor", "petra", "adam"},
    # Staff who see case data (certflow.roles.sees_case_data): who owes what, and handing tasks
    # to people.
    "case_data_staff": CASE_DATA_STAFF,
    # The monitor (a process owner sees cases without their data: certflow.engine.monitor).
    "monitor": {"olga", "cor", "petra", "adam"},
    "migrate": {"petra", "adam"},
    "process_owner": {"petra"},
    # The metrics token's holder (a Prometheus scraper), none of the people who use the pages.
    "operator": set(),
}
# /readyz answers 503 "unready" by design: this module's database is made from the models, not
# by the migrations, so their check fails (tests/web/test_ops.py covers a migrated one).
UNREADY = {"GET /readyz": 503}
# Rules under which a 404 is a refusal: the code answers "not found" for what is not yours.
HIDING = {"cas_own", "case", "filter_owner"}

PAGE_RULES: dict[str, str] = {
    # -- anyone --------------------------------------------------------------------------
    "GET /docs": "public",
    "GET /redoc": "public",
    "GET /public/register": "public",
    "GET /register": "public",
    "GET /": "public",  # the sign-in page for a visitor, one's home page for the signed in
    "GET /sign-in": "public",
    "POST /sign-in": "public",
    "POST /sign-out": "public",
    "POST /language": "public",
    "GET /sign-up": "public",
    "POST /sign-up": "public",
    # The link's token is the key: whoever has the mail (certflow.services.sign_ups).
    "GET /sign-up/confirm/{token}": "public",
    "POST /sign-up/confirm/{token}": "public",
    "GET /password/forgot": "public",
    "POST /password/forgot": "public",
    "GET /password/reset/{token}": "public",
    "POST /password/reset/{token}": "public",
    "GET /refused/too-large": "public",
    "GET /refused/control-character": "public",
    "GET /healthz": "public",
    "GET /readyz": "public",  # each check's status; its detail only with the metrics token
    "GET /metrics": "operator",
    # -- my account ----------------------------------------------------------------------
    "GET /account": "signed_in",
    "POST /account": "signed_in",
    "POST /account/password": "signed_in",
    "POST /account/email/cancel": "signed_in",
    "GET /account/email/confirm/{token}": "cas_own",
    "POST /account/email/confirm/{token}": "cas_own",
    # -- people ----------------------------------------------------------------------------
    "GET /admin/people": "people_clerk",
    "GET /admin/people/{username}": "people_clerk",
    "POST /admin/people/{username}": "people_clerk",
    "GET /admin/people/new": "admin",
    "POST /admin/people/new": "admin",
    "POST /admin/people/{username}/active": "admin",
    # -- the inbox ---------------------------------------------------------------------------
    "GET /inbox": "worker",
    "GET /inbox/tasks/{task_id}": "task",
    # Handing a task to someone (assign, release, delegate): staff who see case data, or staff
    # of its own group; not a process owner outside it (certflow.engine.queue.may_hand_over).
    "POST /inbox/tasks/{task_id}/{action}": "case_data_staff",
    "POST /inbox/assign": "staff",
    "POST /inbox/filters": "worker",
    "POST /inbox/filters/{filter_id}/delete": "filter_owner",
    "GET /documents/{document_id}": "case",
    "GET /escalations": "escalation",
    "GET /escalations/{task_id}": "escalation",
    "POST /escalations/{task_id}/{action}": "escalation",
    # -- Mijn CMI ----------------------------------------------------------------------------
    "GET /mijn": "candidate",
    "GET /mijn/cases/{instance_id}": "cas_own",
    "POST /mijn/cases/{instance_id}/documents": "cas_own",
    "GET /mijn/tasks/{task_id}": "cas_own",
    "POST /mijn/tasks/{task_id}": "cas_own",
    "GET /mijn/invoices": "candidate",
    "GET /mijn/invoices/{number}/{kind}": "cas_own",
    "GET /mijn/certificates": "candidate",
    "GET /mijn/certificates/{certificate_id}/pdf": "cas_own",
    "GET /mijn/data": "candidate",
    "POST /mijn/data/newsletter": "candidate",
    "GET /mijn/data/export": "candidate",
    "POST /mijn/data/erasure": "candidate",
    "GET /mijn/{flow}": "candidate",
    "POST /mijn/{flow}": "candidate",
    # -- dashboard and analytics -------------------------------------------------------------
    "GET /dashboard": "office_figures",
    "GET /dashboard/invoices": "case_data_staff",
    # Names, register numbers and valid-until dates: what the public register shows of each.
    "GET /dashboard/certificates": "office_figures",
    "GET /analytics": "office_figures",
    # -- payments: payers and amounts, for the staff who see case data -----------------------
    "GET /payments": "case_data_staff",
    "POST /payments/import": "case_data_staff",
    "GET /payments/new": "case_data_staff",
    "POST /payments/new": "case_data_staff",
    "GET /payments/{payment_id}": "case_data_staff",
    "POST /payments/{payment_id}/link": "case_data_staff",
    "POST /payments/{payment_id}/handled": "case_data_staff",
    "GET /payments/invoices/{number}/pdf": "case_data_staff",
    # -- the monitor -------------------------------------------------------------------------
    "GET /monitor": "monitor",
    "GET /monitor/instances/{instance_id}": "monitor",
    "GET /monitor/instances/{instance_id}/diagram.bpmn": "monitor",
    "POST /monitor/instances/{instance_id}/incidents/{incident_id}/{action}": "monitor",
    # Ending a case: the staff who handle cases (a process owner only what he started himself).
    "POST /monitor/instances/{instance_id}/cancel": "case_data_staff",
    "POST /monitor/instances/{instance_id}/migrate": "migrate",
    # -- the studio: process owners only -------------------------------------------------------
    "GET /studio": "process_owner",
    "GET /studio/handlers.json": "process_owner",
    "POST /studio/condition": "process_owner",
    "GET /studio/{process_id}": "process_owner",
    "GET /studio/{process_id}/workspace.json": "process_owner",
    "POST /studio/{process_id}/draft": "process_owner",
    "POST /studio/{process_id}/check": "process_owner",
    "POST /studio/{process_id}/changes": "process_owner",
    "POST /studio/{process_id}/deploy": "process_owner",
    "POST /studio/{process_id}/discard": "process_owner",
    "POST /studio/{process_id}/upload": "process_owner",
    "GET /studio/{process_id}/versions": "process_owner",
    "GET /studio/{process_id}/versions/{version}.bpmn": "process_owner",
    "POST /studio/{process_id}/versions/{version}/restore": "process_owner",
    "GET /studio/{process_id}/forms": "process_owner",
    "GET /studio/{process_id}/forms/{name}": "process_owner",
    "POST /studio/{process_id}/forms/{name}/preview": "process_owner",
    "POST /studio/{process_id}/forms/{name}": "process_owner",
    "POST /studio/{process_id}/forms/{name}/deploy": "process_owner",
    "GET /studio/shared/{name}": "process_owner",
    "POST /studio/shared/{name}": "process_owner",
    "POST /studio/shared/{name}/check": "process_owner",
    "POST /studio/shared/{name}/preview": "process_owner",
    "POST /studio/shared/{name}/discard": "process_owner",
    "POST /studio/shared/{name}/deploy/review": "process_owner",
    "GET /studio/shared/{name}/versions": "process_owner",
    "POST /studio/shared/{name}/deploy": "process_owner",
    "GET /studio/emails": "process_owner",
    "GET /studio/emails/edit/{name:path}": "process_owner",
    "POST /studio/emails/preview/{name:path}": "process_owner",
    "POST /studio/emails/save/{name:path}": "process_owner",
    "POST /studio/emails/discard/{name:path}": "process_owner",
    "POST /studio/emails/deploy": "process_owner",
}

# What fills each path parameter: an object's key in ``World.objects`` or a literal; FILLS
# overrides it for one path template (or, for a key ending in "/", every template under it).
DEFAULT_FILL = {
    "instance_id": "case_a", "task_id": "review_task", "document_id": "document", "number": "invoice",
    "kind": "pdf", "certificate_id": "certificate", "username": "cas", "filter_id": "filter",
    "token": "no-such-token", "flow": "apply", "process_id": "certification", "version": "1",
    "incident_id": "incident", "action": "retry", "name": "eligibility_check.json",
    "payment_id": "1",
}
FILLS: dict[str, dict[str, str]] = {
    "/account/email/confirm/{token}": {"token": "email_token"},
    "/inbox/tasks/{task_id}/{action}": {"task_id": "office_task", "action": "assign"},
    "/escalations/{task_id}": {"task_id": "office_task"},
    "/escalations/{task_id}/{action}": {"task_id": "office_task", "action": "extend"},
    "/mijn/tasks/{task_id}": {"task_id": "dossier_task"},
    "/monitor/instances/{instance_id}/incidents/{incident_id}/{action}": {"instance_id": "flow_instance"},
    "/monitor/instances/{instance_id}/migrate": {"instance_id": "flow_instance"},
    "/studio/shared/": {"name": "fees.dmn"},
    "/studio/emails/": {"name": "certification/application_received.nl.txt"},
}
# Routes that act on an object of their own for every asker (an allowed cancel ends it).
FRESH = {"POST /monitor/instances/{instance_id}/cancel": "instance_id"}
# Routes whose allowed askers change what others need: last, in this order.
CHANGING = (
    "POST /inbox/tasks/{task_id}/{action}",  # assigns the office's task
    "POST /escalations/{task_id}/{action}",  # extends it: no longer escalated
    "POST /inbox/filters/{filter_id}/delete",
    "POST /mijn/data/erasure",
    "POST /studio/{process_id}/versions/{version}/restore",  # a draft: after the deploys
    "POST /account/email/confirm/{token}",  # cas's address changes
    "POST /account/email/cancel",
)
# Posted bodies: enough for an allowed asker's answer to be about permission. Where the route's
# role is all there is to check, a body it refuses (422) keeps an allowed POST from acting.
BODIES: dict[str, dict[str, Any]] = {
    "POST /language": {"language": "nl", "back": "/"},
    "POST /account/password": {"current_password": PASSWORD, "new_password": "x", "new_password_again": "x"},
    "POST /admin/people/{username}/active": {"active": "1"},
    "POST /inbox/tasks/{task_id}/{action}": {"assignee": "olga"},
    "POST /inbox/filters": {"name": "matrix", "candidate": "cas"},
    "POST /escalations/{task_id}/{action}": {"due": "5 werkdagen", "reason": "matrix"},
    "POST /mijn/tasks/{task_id}": {"draft": "1", "knowledge": "matrix"},
    "POST /mijn/data/newsletter": {"newsletter": "yes"},
    "POST /mijn/data/erasure": {"reason": "matrix"},
    "POST /mijn/{flow}": {"step": "0"},
    "POST /monitor/instances/{instance_id}/cancel": {"reason": "matrix", "confirm": "yes"},
    "POST /monitor/instances/{instance_id}/migrate": {"migrate_reason": "matrix"},
    "POST /studio/{process_id}/forms/{name}/preview": {"schema": "{}"},
    "POST /studio/{process_id}/forms/{name}": {"schema": ""},
    "POST /studio/{process_id}/forms/{name}/deploy": {"schema": "not json"},
    "POST /studio/shared/{name}": {"content": ""},
    "POST /studio/shared/{name}/check": {"content": ""},
    "POST /studio/shared/{name}/deploy/review": {"content": ""},
    "POST /studio/shared/{name}/deploy": {"content": "not a table"},
    "POST /studio/emails/save/{name:path}": {"content": ""},
}
JSON_BODIES: dict[str, Any] = {
    "POST /studio/condition": {"expression": "True"},
    "POST /studio/{process_id}/draft": {},
    "POST /studio/{process_id}/check": {},
    "POST /studio/{process_id}/changes": {},
    "POST /studio/{process_id}/deploy": {},
}
FILES: dict[str, tuple[str, tuple[str, bytes, str]]] = {
    "POST /mijn/cases/{instance_id}/documents": ("file", ("evidence.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")),
    "POST /studio/{process_id}/upload": ("diagram", ("flow.bpmn", b"not a diagram", "application/xml")),
}
DOSSIER = {"knowledge": "Theorie", "tasks": "Begeleiding", "competences": "Coaching", "hours_spent": 35}
STAFF = Actor("matrix-office", ("office", "coordinator"), True)


@dataclass
class World:
    app: FastAPI
    objects: dict[str, str]  # what fills the path parameters (DEFAULT_FILL, FILLS)
    fresh: Callable[[], str]  # a new running instance, for the routes in FRESH

    def email(self, username: str) -> str:
        with session_scope() as session:
            return accounts.get(session, username).email


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from certflow.bootstrap import build_engine
    from certflow.clock import CLOCK
    from tests.conftest import sqlite_database

    tmp = tmp_path_factory.mktemp("page-matrix")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("CERTFLOW_METRICS_TOKEN", "matrix-metrics-token")
        with sqlite_database(tmp, monkeypatch):
            harness = Harness(build_engine())
            # The pages ask certflow.bootstrap for the process's engine: this module's.
            monkeypatch.setattr(certflow.bootstrap, "engine", lambda: harness.engine)
            harness.engine.deploy(Actor.system(), PROCESSES, only=["certification", "data_erasure"])
            for username, (roles, staff) in PEOPLE.items():
                person(username, roles, staff=staff, **({"address": ADDRESS} if "candidate" in roles else {}))
            objects = _objects(harness, tmp)

            keys = itertools.count(1)

            def fresh() -> str:
                return harness.engine.start(STAFF, "flow", f"FRESH-{next(keys)}", {"key": "fresh"}).id

            yield World(create_app(), objects, fresh)
        CLOCK._offset = 0.0  # the escalation moved the shared clock on


def _do(h: Harness, who: Actor, instance_id: str, element_id: str, data: dict[str, Any]) -> None:
    """``who`` claims (if needed) and completes the case's ``element_id`` task."""
    [task] = [t for t in h.engine.inbox(who) if t.instance_id == instance_id and t.element_id == element_id]
    if task.assignee is None:
        h.engine.claim(who, task.id)
    h.engine.complete(who, task.id, data)
    h.run_jobs()


def _task(h: Harness, who: Actor, instance_id: str, element_id: str) -> str:
    [task] = [t for t in h.engine.inbox(who) if t.instance_id == instance_id and t.element_id == element_id]
    return task.id


def _apply(h: Harness, key: str) -> str:
    cas = Actor("cas", ("candidate",))
    view = h.engine.start(cas, "certification", key,
                          {"candidate": "cas", "eligibility_route": "hbo_diploma", "motivation": "Ik wil"})
    h.run_jobs()
    return view.id


def _through_payment(h: Harness, key: str) -> tuple[str, str]:
    """cas's application, eligible, invoiced, paid, mila her mentor: at cas's dossier."""
    olga = Actor("olga", ("office",), True)
    instance_id = _apply(h, key)
    _do(h, olga, instance_id, "check_eligibility", {"eligible": True, "remarks": ""})
    number = str(h.engine.instance(olga, instance_id).data["invoice_number"])
    h.engine.deliver_message(olga, "payment_received", {"amount": "786.50"},
                             correlation={"invoice_number": number})
    h.run_jobs()
    _do(h, olga, instance_id, "assign_mentor", {"mentor": "mila"})
    return instance_id, number


def _objects(h: Harness, tmp: Path) -> dict[str, str]:
    """cas's objects, made through the engine and the services."""
    from certflow.clock import CLOCK, parse_duration
    from tests.engine.test_runtime import failing_flow

    cor = Actor("cor", ("coordinator",), True)
    # C: an application waiting at the office, its check escalated to the coordinators.
    case_c = _apply(h, "APP-C")
    office_task = _task(h, STAFF, case_c, "check_eligibility")
    for _ in range(30):
        if any(e.task.id == office_task for e in h.engine.escalations(cor)):
            break
        with session_scope() as session:
            CLOCK.advance(session, parse_duration("P1D"), allowed=True)
        h.engine.sweep_escalations()
    assert any(e.task.id == office_task for e in h.engine.escalations(cor)), "nothing escalated"
    # A: at cas's own dossier task; B: past it, at mila's review, with a document of cas's.
    case_a, invoice = _through_payment(h, "APP-A")
    case_b, _ = _through_payment(h, "APP-B")
    cas, mila = Actor("cas", ("candidate",)), Actor("mila", ("mentor",))
    _do(h, cas, case_b, "write_dossier", DOSSIER)
    # A failing service step: an incident to retry (one attempt is enough here).
    settings = h.engine.settings
    h.engine.settings = settings.model_copy(update={"job_max_attempts": 1})
    failing_flow(h, tmp)
    flow_instance = h.engine.start(STAFF, "flow", "INC-1", {"key": "INC-1"}).id
    h.run_jobs()
    h.engine.settings = settings
    [incident] = [i for i in h.engine.incidents(STAFF) if i.instance_id == flow_instance]
    with session_scope() as session:
        document = documents.upload(session, cas, case_b, "dossier.pdf", b"%PDF-1.4\n%%EOF\n")
        session.add(Certificate(id="c-matrix", idempotency_key="matrix", holder="cas", register_number="RL-MATRIX",
                                level="RL", valid_from=date(2026, 1, 1), valid_until=date(2031, 1, 1),
                                status="valid", language="nl", pdf=b"%PDF-1.4\n%%EOF\n",
                                created_at=h.engine.now()))
        saved = saved_filters.save(session, Actor("olga", ("office",), True), "Cas",
                                   InboxFilter.from_dict({"candidate": "cas"}).to_dict(), "office")
        email_token = email_changes.ask(session, get_settings(), "cas", "cas.new@example.org")
    return {"case_a": case_a, "case_b": case_b, "case_c": case_c, "invoice": invoice,
            "dossier_task": _task(h, cas, case_a, "write_dossier"),
            "review_task": _task(h, mila, case_b, "review_dossier"), "office_task": office_task,
            "document": document.id, "certificate": "c-matrix", "filter": str(saved.id),
            "email_token": email_token, "flow_instance": flow_instance, "incident": str(incident.id)}


def page_routes(app: FastAPI) -> set[str]:
    return {f"{method} {route.path}" for route in app.routes
            if isinstance(route, APIRoute) and not route.path.startswith("/api")
            for method in route.methods}


def _path(world: World, route: str) -> str:
    template = route.split(" ", 1)[1]
    fill = dict(DEFAULT_FILL)
    for prefix, overrides in FILLS.items():
        if template.startswith(prefix) and (prefix.endswith("/") or template == prefix):
            fill.update(overrides)
    if route in FRESH:
        fill[FRESH[route]] = world.fresh()
    values = {k: world.objects.get(v, v) for k, v in fill.items()}
    return template.replace("{name:path}", "{name}").format(**values)


class Asker:
    """One browser per role, signed in once, with its CSRF token."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.browsers: dict[str, tuple[Browser, str]] = {}

    def browser(self, role: str, fresh: bool = False) -> tuple[Browser, str]:
        if role in self.browsers and not fresh:
            return self.browsers[role]
        b = Browser(TestClient(self.world.app))
        if role == "anonymous":
            token = b.csrf("/sign-in")
        else:
            b.sign_in(self.world.email(role))
            token = csrf_of(b.get("/account").text)
        if not fresh:
            self.browsers[role] = (b, token)
        return b, token

    def ask(self, route: str, role: str) -> httpx.Response:
        method = route.split(" ", 1)[0]
        # Signing out ends the browser's session: a browser of its own.
        b, token = self.browser(role, fresh=route == "POST /sign-out")
        path = _path(self.world, route)
        if method == "GET":
            return b.client.get(path, follow_redirects=False)
        if route in JSON_BODIES:
            return b.client.post(path, json=JSON_BODIES[route], follow_redirects=False,
                                 headers={"X-CSRF-Token": token, "Accept": "application/json"})
        data = {**BODIES.get(route, {}), "csrf_token": token}
        if route in FILES:
            field, upload = FILES[route]
            return b.client.post(path, data=data, files={field: upload}, follow_redirects=False)
        return b.client.post(path, data=data, follow_redirects=False)


def refused(response: httpx.Response, rule: str) -> bool:
    if response.status_code in (401, 403):
        return True
    if response.status_code == 303 and response.headers["location"].startswith("/sign-in?next="):
        return True
    return response.status_code == 404 and rule in HIDING


def _order(routes: list[str]) -> list[tuple[str, str]]:
    """Every (route, role): routes that change things last, and on each route the askers who
    should be refused before those who may act."""
    def rank(route: str) -> int:
        return CHANGING.index(route) + 1 if route in CHANGING else 0

    return [(route, role) for route in sorted(routes, key=lambda r: (rank(r), r))
            for role in sorted(ROLES, key=lambda who: who in ALLOWED[PAGE_RULES[route]])]


def test_every_page_route_has_a_rule(world: World) -> None:
    routes = page_routes(world.app)
    assert routes - set(PAGE_RULES) == set(), "page routes without a rule in PAGE_RULES"
    assert set(PAGE_RULES) - routes == set(), "rules for page routes that no longer exist"
    assert set(PAGE_RULES.values()) <= set(ALLOWED), "rules ALLOWED does not define"


def test_the_page_matrix(world: World) -> None:
    asker = Asker(world)
    wrong = []
    for route, role in _order(list(PAGE_RULES)):
        response = asker.ask(route, role)
        assert response.status_code < 500 or UNREADY.get(route) == response.status_code, (route, role, response.status_code, response.text[:2000])
        rule = PAGE_RULES[route]
        if refused(response, rule) == (role in ALLOWED[rule]):
            wrong.append(f"{route} as {role} ({rule}): {response.status_code} "
                         f"{response.headers.get('location', '')}")
    assert not wrong, "\n".join(wrong)


def test_the_metrics_token_opens_metrics(world: World) -> None:
    """The one asker the "operator" rule lets in, which no page role is."""
    client = TestClient(world.app)
    assert client.get("/metrics", headers={"Authorization": "Bearer matrix-metrics-token"}).status_code == 200
    assert client.get("/metrics").status_code == 401

