"""Bad input on every page form: the browser pages' counterpart of test_openapi_fuzz.py.

The rule of the product: bad input gets a clear error and changes nothing; never a 500. Every
post form of the pages is found as a person finds it: each page of the access matrix
(``test_page_access_matrix``) opened as each role it allows, and the few pages reached only by
a step before them (``EXTRA_PAGES``). Its fields are read from the HTML (``<input>``,
``<select>``, ``<textarea>``, named buttons); then the form is posted, as someone who sees it,
with each field in turn and all of them at once set to each of ``VALUES`` (empty, 100,000
characters, numbers and dates where text goes and text where they go, Unicode edge cases, a
lone surrogate in the form encoding), with a value outside a choice's options, the field
twice, the field missing, an unknown field, and the form sent as multipart (with a part whose
file name is 100,000 characters). The other fields keep what the page filled in, or a valid
value (``VALID``), so that the changed field is what is wrong.

Every answer: no 5xx. A 4xx is an HTML page that says what is wrong (an alert, or an error
page with its message), naming the changed field where the page names fields and the form
as filled was taken; and it changed nothing in the database (each table compared row by row
with before; only the counters a refusal keeps, ``REFUSAL_WRITES``, may move). Where the
input was taken, the page the answer sends to still opens: stored input must not break the
next reader.

Each case starts from the same database: after a case that wrote, the SQLite file is put back
as it was (the backup API, which the app's pooled connections see at once), and the browser's
cookies too. So a cancel, a deploy, an erasure or a sign-out that takes a value acts for real,
and the next case still finds its case, its draft and its session. Every POST page route has
its form found here, or is one of the studio editor's JSON calls (``JSON_BODIES``: no form; its
script posts JSON, fuzzed with the same values by key): a new form is covered without anyone
remembering to add it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote_plus, urljoin, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

import certflow.bootstrap
from certflow.services import access
from certflow.settings import get_settings
from tests.services.test_camt_rules import entry, statement as camt_v02
from tests.web.pages_support import ADDRESS, PASSWORD, mailed_link
from tests.web.test_page_access_matrix import (  # noqa: F401  (world: the matrix's fixture, built again here)
    ALLOWED,
    JSON_BODIES,
    PAGE_RULES,
    ROLES,
    Asker,
    World,
    _path,
    page_routes,
    world,
)

LONG = "x" * 100_000
# Sent as %ED%A0%80: the UTF-8 form of a lone surrogate, which UTF-8 does not allow.
SURROGATE = "\ud800"
VALUES: tuple[tuple[str, str], ...] = (
    ("empty", ""), ("long", LONG), ("text", "abc"), ("negative", "-1"), ("overflow", "1e309"),
    ("NaN", "NaN"), ("superscript two", "²"), ("Arabic-Indic three", "٣"), ("no such day", "2026-02-30"),
    ("day first", "31-12-2026"), ("RTL override", "\u202eabc"), ("zero-width space", "a\u200bb"),
    ("emoji", "🙂👩‍👩‍👧"), ("combining marks", "e\u0301\u0301\u0301\u0301"), ("lone surrogate", f"a{SURROGATE}b"),
)
NOT_AN_OPTION = "not-one-of-the-options"
UNKNOWN_FIELD = "zz_unknown_field"
# Only these path parameters tell two forms of a route apart (the others name objects): the
# inbox's claim and complete are two forms; the claim buttons of two tasks are one.
KEY_PARAMETERS = ("action", "flow")
# Fields a person does not see: a refusal cannot point at them.
UNSEEN = ("hidden", "button")

# The studio editor's own JSON calls (no form: its script posts JSON), by the keys each reads.
JSON_KEYS = {"POST /studio/condition": ("expression",), "POST /studio/{process_id}/deploy": ("revision",)}
SOURCES_KEYS = ("sources", "revision")  # draft, check, changes: {"sources": {path: text}, "revision": n}
RAW_JSON = (b"", b"null", b"[]", b'"x"', b"{}", b"NaN", b"1e309", b"\xed\xa0\x80", b"{" * 50_000)

# Pages reached by a step before them, as (role, path, form posted to reach it or None);
# ``{key}`` is one of the objects (the matrix's, and what ``forms_world`` makes).
EXTRA_PAGES: tuple[tuple[str, str, dict[str, str] | None], ...] = (
    ("anonymous", "/password/reset/{reset_token}", None),  # the links as mailed
    ("anonymous", "/sign-up/confirm/{sign_up_token}", None),
    ("cas", "/mijn/apply?step=1&eligibility_route=hbo_diploma", None),  # the second question
    # The check page: the answers as hidden fields, and "submit".
    ("cas", "/mijn/apply", {"eligibility_route": "hbo_diploma", "motivation": "Ik wil", "step": "1"}),
    ("olga", "/inbox/tasks/{office_task}", None),  # claimed by olga: its form to complete
    ("olga", "/inbox?candidate=cas", None),  # a filter in force: "save this filter"
    ("olga", "/monitor/instances/{flow_instance}", None),  # its incident: retry, skip
    ("adam", "/monitor/instances/{case_a}", None),  # on version 1 of two: move it
    # With drafts: discard, deploy, and the tables' deploy review.
    ("petra", "/studio/certification", None),
    ("petra", "/studio/emails", None),
    ("petra", "/studio/emails/edit/{email}", None),
    ("petra", "/studio/shared/fees.dmn/deploy/review", {"content": "{fees}"}),
    ("olga", "/payments/{payment}", None),  # a payment the import could not match: link, handled
)
SIGN_UP = {"display_name": "Nina Nieuw", "email": "nina@example.org", "date_of_birth": "1980-05-01",
           **ADDRESS, "language": "nl", "password": "a long enough password 123",
           "password_again": "a long enough password 123", "privacy": "yes"}
NEW_PASSWORD = "another long password 456"
# Valid values for what a page leaves empty (``{key}``: an object), per route.
VALID: dict[str, dict[str, str]] = {
    "POST /sign-in": {"email": "bea@example.org", "password": PASSWORD},
    "POST /sign-up": SIGN_UP,
    "POST /password/forgot": {"email": "bea@example.org"},
    "POST /password/reset/{token}": {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD},
    "POST /sign-up/confirm/{token}": {"password": SIGN_UP["password"]},
    "POST /account": {"date_of_birth": "1980-05-01"},
    "POST /account/password": {"current_password": PASSWORD, "new_password": NEW_PASSWORD,
                               "new_password_again": NEW_PASSWORD},
    "POST /admin/people/new": {"display_name": "Sam Staf", "email": "sam@example.org", "roles": "office", **ADDRESS},
    "POST /inbox/assign": {"assignee": "mila", "task_ids": "{review_task}"},
    "POST /inbox/filters": {"name": "Fuzz", "candidate": "cas"},
    "POST /inbox/tasks/{task_id}/{action}": {"assignee": "mila", "eligible": "true", "remarks": "fuzz",
                                             "approved": "true", "feedback": "fuzz"},
    "POST /escalations/{task_id}/{action}": {"assignee": "olga", "reassign_reason": "fuzz", "due": "5 werkdagen",
                                             "reason": "fuzz", "take_over_reason": "fuzz"},
    "POST /mijn/{flow}": {"eligibility_route": "hbo_diploma", "motivation": "Ik wil"},
    "POST /mijn/tasks/{task_id}": {"knowledge": "Theorie", "tasks": "Begeleiding", "competences": "Coaching",
                                   "hours_spent": "35"},
    "POST /mijn/data/erasure": {"reason": "fuzz"},
    "POST /monitor/instances/{instance_id}/cancel": {"reason": "fuzz", "confirm": "yes"},
    "POST /payments/new": {"invoice": "{invoice}", "amount": "786,50"},
    "POST /payments/{payment_id}/link": {"invoice_number": "{invoice}"},
    "POST /payments/{payment_id}/handled": {"note": "fuzz"},
}
# What a refusal may write, and why: the counters that limit guessing passwords.
REFUSAL_WRITES: dict[str, set[str]] = {
    "POST /sign-in": {"sign_in_attempts"},  # a wrong password counts towards the limit
    "POST /account/password": {"sign_in_attempts"},  # so does a wrong current password
    "POST /sign-up/confirm/{token}": {"pending_sign_ups", "sign_in_attempts"},  # the link's own count
}


# -- a page's forms ------------------------------------------------------------------------------
@dataclass
class Field:
    name: str
    kind: str  # an <input>'s type, or select, textarea, button
    options: list[str] = field(default_factory=list)  # a choice's values
    default: list[str] = field(default_factory=list)  # what a browser sends as the page is


@dataclass
class Form:
    page: str
    targets: list[str]  # where it posts: action, hx-post, each button's formaction
    fields: dict[str, Field]
    multipart: bool


class _FormParser(HTMLParser):
    """A page's post forms and their fields, as a browser would submit them."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.forms: list[Form] = []
        self.by_id: dict[str, Field] = {}
        self.includes: list[tuple[Form, str]] = []  # hx-include="#id"
        self._form: Form | None = None
        self._select: Field | None = None
        self._textarea: Field | None = None
        self._text: list[str] = []

    def _add(self, item: Field, element_id: str | None) -> None:
        if element_id:
            self.by_id[element_id] = item
        if self._form is None:
            return
        known = self._form.fields.setdefault(item.name, item)
        if known is not item:  # radios and checkboxes of one name: one field with their options
            known.options += item.options
            known.default += item.default

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name", "")
        if tag == "form" and a.get("method", "get").lower() == "post":
            targets = [urljoin(self.page, t) for t in (a.get("action"), a.get("hx-post")) if t]
            self._form = Form(self.page, targets or [self.page], {}, "multipart" in a.get("enctype", ""))
            self.forms.append(self._form)
            if a.get("hx-include", "").startswith("#"):
                self.includes.append((self._form, a["hx-include"][1:]))
        elif tag == "input" and name and name != "csrf_token":
            kind = a.get("type", "text").lower()
            if kind in ("radio", "checkbox"):
                value = a.get("value", "on")
                self._add(Field(name, kind, [value], [value] if "checked" in a else []), a.get("id"))
            elif kind in ("submit", "image", "reset"):
                self._add(Field(name, "button", [a.get("value", "")]), a.get("id"))
            else:
                self._add(Field(name, kind, [], [a.get("value", "")]), a.get("id"))
        elif tag == "button":
            if self._form is not None and a.get("formaction"):
                self._form.targets.append(urljoin(self.page, a["formaction"]))
            if name:
                self._add(Field(name, "button", [a.get("value", "")]), a.get("id"))
        elif tag == "select" and name:
            self._select = Field(name, "select")
            self._add(self._select, a.get("id"))
        elif tag == "option" and self._select is not None:
            self._select.options.append(a.get("value", ""))
            if "selected" in a or not self._select.default:
                self._select.default = [a.get("value", "")]
        elif tag == "textarea" and name:
            self._textarea, self._text = Field(name, "textarea"), []
            self._add(self._textarea, a.get("id"))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # A browser drops the line break that follows <textarea>.
            self._textarea.default = ["".join(self._text).removeprefix("\n")]
            self._textarea = None


def forms_of(page: str, html: str) -> list[Form]:
    parser = _FormParser(page)
    parser.feed(html)
    for form, element_id in parser.includes:
        if element_id in parser.by_id:
            included = parser.by_id[element_id]
            form.fields.setdefault(included.name, Field(included.name, included.kind, [], list(included.default)))
    return parser.forms


@dataclass
class Said:
    """What a page says is wrong: its alerts' text (``role="alert"``), the fields its error
    summaries link to, its heading and the paragraph after it, and where its forms go."""

    alerts: list[str]
    linked: set[str]
    heading: str
    paragraph: str
    forms: set[str]


_ALERT = re.compile(r'<(\w+)[^>]*\brole="alert"(?![^>]*\bhidden\b)[^>]*>(.*?)</\1>', re.S)
_TAG = re.compile(r"<[^>]+>")


def said(html: str) -> Said:
    """Read with patterns, not a parser: the pages' alerts hold no element of their own kind,
    and a refusal is read some 1,500 times a run."""
    main = html[max(html.find("<main"), 0):]  # the page's own content: the menu says nothing wrong
    found = [m.group(2) for m in _ALERT.finditer(main)]
    alerts = [_TAG.sub(" ", a).strip() for a in found]
    linked = {f for a in found for f in re.findall(r'href="#([^"]+)"', a)}
    heading = re.search(r"<h1[^>]*>(.*?)</h1>(.*?)<p[^>]*>(.*?)</p>", main, re.S)
    # Where its forms go ("" for one without an action), but the menu's that some pages repeat.
    forms = {urlsplit(a[0] if a else "").path for f in re.findall(r"<form\b[^>]*>", main)
             for a in [re.findall(r'\baction="([^"]*)"', f)]} - {"/sign-out", "/language"}
    return Said([a for a in alerts if a], linked, _TAG.sub("", heading.group(1)).strip() if heading else "",
                _TAG.sub("", heading.group(3)).strip() if heading else "", forms)


# -- the database as it was ------------------------------------------------------------------------
class Snapshot:
    """The SQLite database as it was before the cases: put back after a case that wrote,
    compared with after one that was refused. ``PRAGMA data_version`` on a connection of its
    own tells whether anyone committed since it last looked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = sqlite3.connect(":memory:", check_same_thread=False)
        with sqlite3.connect(path) as source:
            source.backup(self.base)
        self.watch = sqlite3.connect(path, check_same_thread=False)
        self.version = self._version()
        self.tables = [name for (name,) in self.base.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        self.last_definition = int(self.base.execute("SELECT max(id) FROM definitions").fetchone()[0])

    def _version(self) -> int:
        return int(self.watch.execute("PRAGMA data_version").fetchone()[0])

    def written(self) -> bool:
        return self._version() != self.version

    def changed(self) -> dict[str, str]:
        """The tables whose rows differ from before, with their row counts."""
        found = {}
        with sqlite3.connect(self.path) as now:
            for table in self.tables:
                query = f'SELECT * FROM "{table}" ORDER BY rowid'
                before, after = self.base.execute(query).fetchall(), now.execute(query).fetchall()
                if before != after:
                    found[table] = f"{len(before)} rows before, {len(after)} after"
        return found

    def restore(self) -> None:
        with sqlite3.connect(self.path, timeout=30) as target:
            target.execute("PRAGMA synchronous=OFF")  # a test's database: no need to wait for the disk
            self.base.backup(target)
        # The engine keeps definitions by id: a deploy undone here and made again would get the
        # same id with other content. (A live workflow is kept with the version it was saved
        # as, which the database no longer has: it is not used again.)
        engine = certflow.bootstrap.engine()
        for cache in (engine._definitions, engine._elements):
            for definition_id in [i for i in cache if i > self.last_definition]:
                del cache[definition_id]
        self.version = self._version()


# -- the world: the matrix's, a few more objects, the forms --------------------------------------
@dataclass
class Unit:
    """One form to fuzz: its route, where it posts, who posts it, its fields."""

    route: str
    target: str
    role: str
    form: Form


@dataclass
class FormsWorld:
    world: World
    asker: Asker
    objects: dict[str, str]
    units: list[Unit]
    snapshot: Snapshot


@pytest.fixture(scope="module")
def forms_world(world: World) -> Iterator[FormsWorld]:  # noqa: F811  (the matrix's fixture)
    with pytest.MonkeyPatch.context() as monkeypatch:
        # A session's idle expiry is written at most once a minute: with the sessions' wall
        # clock stopped, a case late in the run writes nothing that one early did not.
        stopped = access.wall_now()
        monkeypatch.setattr(access, "wall_now", lambda: stopped)
        asker = Asker(world)
        with ExitStack() as clients:
            for role in ROLES:  # each browser's event loop kept open: not one started per request
                clients.enter_context(asker.browser(role)[0].client)
            objects = {**world.objects, **_more_objects(asker)}
            units = _units(world.app, _pages(world, asker, objects))
            yield FormsWorld(world, asker, objects, units,
                             Snapshot(Path(get_settings().database_url.removeprefix("sqlite:///"))))


def _more_objects(asker: Asker) -> dict[str, str]:
    """What the extra pages need, made through the pages: a password reset link and a
    sign-up's confirmation link as mailed; the office's eligibility check claimed by olga;
    version 2 of certification (a form's description changed), and drafts of it, of an
    e-mail text and of the fee table; a payment the office has to look at."""
    made: dict[str, str] = {}
    anonymous, token = asker.browser("anonymous")
    anonymous.client.post("/password/forgot", data={"email": "bea@example.org", "csrf_token": token})
    made["reset_token"] = mailed_link("bea@example.org", "/password/reset/").rsplit("/", 1)[1]
    anonymous.client.post("/sign-up", data={**SIGN_UP, "csrf_token": token})
    made["sign_up_token"] = mailed_link(SIGN_UP["email"], "/sign-up/confirm/").rsplit("/", 1)[1]
    olga, olga_token = asker.browser("olga")
    claimed = olga.client.post(f"/inbox/tasks/{asker.world.objects['office_task']}/claim",
                               data={"csrf_token": olga_token}, follow_redirects=False)
    assert claimed.status_code == 303, claimed.text[:2000]

    petra, token = asker.browser("petra")

    def value(path: str, name: str) -> str:
        form = next(f for f in forms_of(path, petra.client.get(path).text) if name in f.fields)
        return form.fields[name].default[0]

    def posted(path: str, data: dict[str, str]) -> None:
        answer = petra.client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)
        assert answer.status_code == 303, (path, answer.status_code, answer.text[:2000])

    form = "/studio/certification/forms/eligibility_check.json"
    schema = value(form, "schema")
    posted(form + "/deploy", {"schema": schema.replace('"type"', '"description": "v2", "type"', 1)})
    posted(form, {"schema": schema})
    made["email"] = "certification/application_received.nl.txt"
    email = "/studio/emails/edit/" + made["email"]
    posted("/studio/emails/save/" + made["email"], {"content": value(email, "content") + "\n"})
    made["fees"] = value("/studio/shared/fees.dmn", "content")
    posted("/studio/shared/fees.dmn", {"content": made["fees"]})
    # A payment the import could not match: the office's page to link or close it.
    statement = camt_v02(entry("12.34", "onbekende betaling", ref="TX-FUZZ"))
    imported = olga.client.post("/payments/import", data={"csrf_token": olga_token},
                                files={"statement": ("afschrift.xml", statement, "application/xml")})
    assert imported.status_code == 200, imported.text[:2000]
    made["payment"] = re.findall(r'<tr id="payment-(\d+)"', olga.client.get("/payments").text)[0]
    return made


def _pages(matrix: World, asker: Asker, objects: dict[str, str]) -> Iterator[tuple[str, str, str]]:
    """(role, path, HTML) of every page each role may open, and of the extra pages."""
    for role in ROLES:
        browser, token = asker.browser(role)
        visits: list[tuple[str, dict[str, str] | None]] = [
            (_path(matrix, route), None) for route, rule in PAGE_RULES.items()
            if route.startswith("GET ") and role in ALLOWED[rule]]
        visits += [(path.format(**objects), data and {k: v.format(**objects) for k, v in data.items()})
                   for who, path, data in EXTRA_PAGES if who == role]
        for path, data in visits:
            page = browser.client.get(path, follow_redirects=False) if data is None else \
                browser.client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)
            if page.headers.get("content-type", "").startswith("text/html"):
                yield role, path, page.text


def _route_of(app: FastAPI, path: str) -> tuple[str, dict[str, str]] | None:
    for route in app.routes:
        if isinstance(route, APIRoute) and "POST" in route.methods and not route.path.startswith("/api"):
            match = route.path_regex.match(path)
            if match:
                return f"POST {route.path}", match.groupdict()
    return None


def _units(app: FastAPI, pages: Iterator[tuple[str, str, str]]) -> list[Unit]:
    """The forms to fuzz: per route and ``KEY_PARAMETERS``, each set of fields once (not one
    that another form of the route has all of), as the first role that sees it and may use
    it (else the first that sees it)."""
    found: dict[tuple[str, tuple[str, ...]], list[Unit]] = {}
    for role, path, html in pages:
        for form in forms_of(path, html):
            for target in form.targets:
                route = _route_of(app, urlsplit(target).path)
                if route is not None:
                    key = (route[0], tuple(route[1].get(k, "") for k in KEY_PARAMETERS))
                    found.setdefault(key, []).append(Unit(route[0], target, role, form))
    chosen = []
    for candidates in found.values():
        allowed = [u for u in candidates if u.role in ALLOWED[PAGE_RULES.get(u.route, "public")]]
        picked: list[Unit] = []
        for unit in allowed + [u for u in candidates if u not in allowed]:
            names = set(unit.form.fields)
            if not any(names <= set(p.form.fields) for p in picked):
                picked = [p for p in picked if not set(p.form.fields) < names] + [unit]
        chosen += picked
    return chosen


# -- the cases -------------------------------------------------------------------------------------
@dataclass
class Case:
    what: str
    pairs: list[tuple[str, str]]
    field: str | None = None  # the one field changed (a seen one), if one
    multipart: bool | None = None  # None: as the form is sent
    files: frozenset[str] = frozenset()  # names sent as file parts (the value: a file name)
    stores: bool = True  # it sends a value the form as filled does not


def baseline(unit: Unit, objects: dict[str, str]) -> dict[str, list[str]]:
    """What a browser sends as the page is, with ``VALID``'s values for what it leaves empty."""
    valid = {k: v.format(**objects) for k, v in VALID.get(unit.route, {}).items()}
    values = {}
    for name, item in unit.form.fields.items():
        sent = ["evidence.pdf"] if item.kind == "file" else list(item.default)
        if name in valid and (not any(sent) or item.kind in ("password", "checkbox")):
            sent = [valid[name]]
        if sent and item.kind != "button":
            values[name] = sent
    return values


def cases(unit: Unit, base: dict[str, list[str]]) -> Iterator[Case]:
    files = frozenset(n for n, f in unit.form.fields.items() if f.kind == "file")

    def but(name: str, values: list[str] | None) -> list[tuple[str, str]]:
        changed = {**base, name: values} if values is not None else {k: v for k, v in base.items() if k != name}
        return [(k, v) for k, vs in changed.items() if vs is not None for v in vs]

    as_filled = but(UNKNOWN_FIELD, None)
    yield Case("the form as filled", as_filled, files=files, stores=False)
    for name, item in unit.form.fields.items():
        seen = name if item.kind not in UNSEEN else None
        for label, value in VALUES:
            yield Case(f"{name} = {label}", but(name, [value]), seen, files=files)
        if item.options:
            yield Case(f"{name} not one of its options", but(name, [NOT_AN_OPTION]), seen, files=files)
        yield Case(f"{name} twice", but(name, [(base.get(name) or ["a"])[0], "-1"]), seen, files=files)
        yield Case(f"{name} missing", but(name, None), seen, files=files, stores=False)
    if len(unit.form.fields) > 1:  # with one, the same as that field's cases
        for label, value in VALUES:
            yield Case(f"every field = {label}", [(name, value) for name in unit.form.fields], files=files)
    yield Case("an unknown field", [*as_filled, (UNKNOWN_FIELD, "x")], files=files, stores=False)
    yield Case("sent as multipart", as_filled, multipart=True, files=files, stores=False)
    yield Case("a part with a 100,000-character file name", [*as_filled, (UNKNOWN_FIELD, LONG)],
               multipart=True, files=files | {UNKNOWN_FIELD}, stores=False)


def _bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def encoded(pairs: list[tuple[str, str]], files: frozenset[str], multipart: bool) -> tuple[bytes, str]:
    """The body and its content type, built by hand: no client encodes a lone surrogate."""
    if not multipart:
        return ("&".join(f"{quote_plus(_bytes(k))}={quote_plus(_bytes(v))}" for k, v in pairs).encode(),
                "application/x-www-form-urlencoded")
    boundary = "certflow-fuzz"
    parts = []
    for name, value in pairs:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'.encode()
        if name in files:
            parts.append(head + b'; filename="' + _bytes(value) + b'"\r\nContent-Type: application/pdf\r\n\r\n'
                         + b"%PDF-1.4\n%%EOF\n\r\n")
        else:
            parts.append(head + b"\r\n\r\n" + _bytes(value) + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


# -- judging the answers ---------------------------------------------------------------------------
def run(fw: FormsWorld, unit: Unit) -> list[str]:
    """Every case of one form; what was wrong with the answers."""
    browser, token = fw.asker.browser(unit.role)
    base = baseline(unit, fw.objects)
    problems: list[str] = []
    taken = False  # the form as filled: its refusals must then name what was changed
    for case in cases(unit, base):
        where = f"{unit.route} ({unit.target} as {unit.role}), {case.what}"
        cookies = httpx.Cookies(browser.client.cookies)  # a sign-in, a sign-out: undone too
        body, content_type = encoded([*case.pairs, ("csrf_token", token)], case.files,
                                     unit.form.multipart if case.multipart is None else case.multipart)
        try:
            answer = browser.client.post(unit.target, content=body, follow_redirects=False,
                                         headers={"Content-Type": content_type})
        except httpx.HTTPError as exc:
            problems.append(f"{where}: an answer no browser can follow: {exc}")
        except Exception as exc:  # noqa: BLE001  (the test client raises what the app raised: a 500)
            problems.append(f"{where}: a server error: {exc!r}")
        else:
            taken = taken or (case.what == "the form as filled" and answer.status_code < 400)
            problems += judge(fw, unit, case, where, answer, taken)
        browser.client.cookies = cookies
        if fw.snapshot.written():
            fw.snapshot.restore()
    return problems


def judge(fw: FormsWorld, unit: Unit, case: Case, where: str, answer: httpx.Response, taken: bool) -> list[str]:
    status = answer.status_code
    where = f"{where}: {status}"
    if status >= 500:
        return [f"{where}: a server error\n{answer.text[:1500]}"]
    if status >= 400:
        problems = [] if answer.headers.get("content-type", "").startswith("text/html") else \
            [f"{where}: refused as {answer.headers.get('content-type')}, not as a page"]
        problems += says_what(where, unit, case, answer.text, taken)
        if fw.snapshot.written():
            changed = {t: how for t, how in fw.snapshot.changed().items()
                       if t not in REFUSAL_WRITES.get(unit.route, set())}
            if changed:
                problems.append(f"{where}: refused, yet it changed {changed}")
        return problems
    location = answer.headers.get("location", "")
    if location.startswith("/") and case.stores:  # where the browser goes next, with what was stored
        browser, _ = fw.asker.browser(unit.role)
        try:
            page = browser.client.get(location, follow_redirects=False)
        except Exception as exc:  # noqa: BLE001  (the test client raises what the app raised: a 500)
            return [f"{where}: taken, then {location} fails: {exc!r}"]
        if page.status_code >= 500:
            return [f"{where}: taken, then {location} answers {page.status_code}\n{page.text[:1500]}"]
    return []


def says_what(where: str, unit: Unit, case: Case, html: str, taken: bool) -> list[str]:
    page = said(html)
    if not page.alerts:
        # A page to go on with (the form again, the list it was sent from) says it in an alert,
        # next to the fields; an error page in its heading and text.
        if page.forms:
            return [f"{where}: refused with a page of forms {sorted(page.forms)} and no alert saying what is wrong"]
        if not (page.heading and page.paragraph):
            return [f"{where}: a refusal without a message"]
    # The field changed, or its twin ("password_again": the two are not the same).
    if taken and case.field and page.linked and not any(
            linked == case.field or linked.startswith(case.field + "_") for linked in page.linked):
        return [f"{where}: the page names {sorted(page.linked)}, not {case.field!r}"]
    return []


def json_bodies(route: str) -> Iterator[tuple[str, bytes]]:
    """(what, body) for one of the studio's JSON calls: bodies that are no JSON object, and
    each key it reads set to each of ``VALUES`` (and, for sources, a file's text)."""
    for raw in RAW_JSON:
        yield f"the body {raw[:12]!r}", raw
    for key in JSON_KEYS.get(route, SOURCES_KEYS):  # a lone surrogate as JSON writes it: "\ud800"
        for label, value in VALUES:
            yield f"{key} = {label}", json.dumps({key: value}).encode()
    if route not in JSON_KEYS:
        for label, value in VALUES:
            yield f"a source's text = {label}", json.dumps({"sources": {"certification.bpmn": value}}).encode()


def run_json(fw: FormsWorld, route: str) -> list[str]:
    """Every body of one JSON call, as the process owner; what was wrong with the answers."""
    browser, token = fw.asker.browser("petra")
    target = _path(fw.world, route)
    problems = []
    for what, body in json_bodies(route):
        where = f"{route} ({target}), {what}"
        try:
            answer = browser.client.post(target, content=body, headers={
                "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": token})
        except Exception as exc:  # noqa: BLE001  (the test client raises what the app raised: a 500)
            problems.append(f"{where}: a server error: {exc!r}")
        else:
            status = answer.status_code
            if status >= 500:
                problems.append(f"{where}: {status}: a server error\n{answer.text[:1500]}")
            elif status >= 400:
                error = answer.json().get("error") if "json" in answer.headers.get("content-type", "") else None
                if not error:
                    problems.append(f"{where}: {status}: refused without an error saying what is wrong")
                changed = fw.snapshot.changed() if fw.snapshot.written() else {}
                if changed:
                    problems.append(f"{where}: {status}: refused, yet it changed {changed}")
        if fw.snapshot.written():
            fw.snapshot.restore()
    return problems


# -- the tests ---------------------------------------------------------------------------------------
def test_every_post_page_route_has_its_form_found(forms_world: FormsWorld) -> None:
    posts = {r for r in page_routes(forms_world.world.app) if r.startswith("POST ")}
    missing = posts - {u.route for u in forms_world.units} - set(JSON_BODIES)
    assert not missing, "POST page routes whose form no page shows (add one to EXTRA_PAGES):\n" + "\n".join(
        sorted(missing))


def test_bad_input_on_every_page_form(forms_world: FormsWorld) -> None:
    problems = [p for unit in sorted(forms_world.units, key=lambda u: (u.route, u.target))
                for p in run(forms_world, unit)]
    assert not problems, f"{len(problems)} problems:\n\n" + "\n\n".join(problems[:60])


def test_bad_json_on_the_studio_editor_s_calls(forms_world: FormsWorld) -> None:
    """The studio's diagram editor posts JSON from its script: no form to read, the same rule."""
    problems = [p for route in sorted(JSON_BODIES) for p in run_json(forms_world, route)]
    assert not problems, f"{len(problems)} problems:\n\n" + "\n\n".join(problems[:60])
