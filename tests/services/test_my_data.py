"""Mijn CMI's data: where my cases stand, the newsletter choice, and the export of everything
kept about me (and nothing about anyone else)."""

from __future__ import annotations

import json
from datetime import timedelta

from certflow.services import case_documents as documents
from certflow.services import email_changes, my_data, task_drafts
from certflow.settings import get_settings
from certflow.store.accounts import PendingSignUp
from certflow.store.db import session_scope
from certflow.store.models import User
from tests.processes.driver import Driver
from tests.services.conftest import apply, to_dossier, tx

PDF = b"%PDF-1.4\n%%EOF\n"


def test_progress_says_what_happens_next_and_by_when(world: Driver) -> None:
    case = apply(world, "cas")
    [progress] = world.engine.progress(world.people["cas"])
    assert progress.id == case and progress.status == "running"
    [step] = progress.steps
    assert step.title == "Toelaatbaarheid beoordelen" and step.group == "office" and step.due_at
    assert not step.mine and step.task_id is None  # the office's task: visible, not actionable
    world.do("olga", "check_eligibility", {"eligible": True, "remarks": ""})
    [progress] = world.engine.progress(world.people["cas"])
    assert progress.steps == [] and progress.waiting_for == ["payment_received"]
    assert world.engine.progress(world.people["bea"]) == []


def test_my_own_task_is_marked_mine(world: Driver) -> None:
    to_dossier(world, "cas")
    [progress] = world.engine.progress(world.people["cas"], process_id="certification")
    [step] = progress.steps
    assert step.mine and step.task_id and step.title == "Dossier schrijven"


def test_newsletter_opt_out(world: Driver) -> None:
    tx(my_data.set_newsletter, world.people["cas"], receive=False)
    with session_scope() as s:
        assert s.get(User, "cas").newsletter_opt_out is True
    tx(my_data.set_newsletter, world.people["cas"], receive=True)
    with session_scope() as s:
        assert s.get(User, "cas").newsletter_opt_out is False


def test_export_holds_everything_about_me_and_nothing_secret_or_of_others(world: Driver) -> None:
    case = to_dossier(world, "cas")
    apply(world, "bea")
    tx(documents.upload, world.people["cas"], case, "dossier.pdf", PDF)
    [dossier] = [t for t in world.engine.inbox(world.people["cas"]) if t.element_id == "write_dossier"]
    tx(task_drafts.save, "cas", dossier.id, {"knowledge": "half a draft"}, world.engine.now())
    with session_scope() as s:
        # A new address she asked for, waiting for its link: hers.
        email_changes.ask(s, get_settings(), "cas", "cas.new@example.org")
        # Sign-ups waiting for confirmation are someone's without an account, never hers: not
        # even one with her address (an account getting an address deletes those now; one
        # left from before, or from a moment's race, must still not show a stranger's data).
        for email, name in ((s.get(User, "cas").email.upper(), "Stranger with her address"),
                            ("other@example.org", "Someone else")):
            s.add(PendingSignUp(token_hash=name[:8], email=email, display_name=name,
                                language="nl", address={}, date_of_birth=None,
                                password_hash="$argon2id$secret", created_at=world.engine.now(),
                                expires_at=world.engine.now() + timedelta(hours=24)))
    exported = json.loads(tx(my_data.export_json, world.people["cas"]))
    assert [d["data"] for d in exported["task_drafts"]] == [{"knowledge": "half a draft"}]
    [change] = exported["email_changes"]
    assert change["new_email"] == "cas.new@example.org" and "token_hash" not in change
    assert "pending_sign_ups" not in exported and "Stranger" not in json.dumps(exported)
    assert exported["account"]["username"] == "cas" and exported["account"]["address"]["city"] == "Utrecht"
    assert not any("hash" in key or "token" in key for key in exported["account"])
    [mine] = exported["cases"]
    assert mine["id"] == case and mine["business_key"] == "APP-cas"
    started = next(e for e in mine["my_entries"] if e["action"] == "instance_started")
    assert started["detail"]["data"]["motivation"] == "Ik wil"
    # The office's decision is not my entry; their form data stays out.
    assert all(e["action"] != "task_completed_by_user" for e in mine["my_entries"])
    assert [d["filename"] for d in exported["documents"]] == ["dossier.pdf"]
    [invoice] = exported["invoices"]
    assert invoice["gross_total"] == "786.50" and invoice["lines"][0]["product"]
    assert exported["payments"] == []  # paid by message here; a registered payment is listed
    assert {m["template"] for m in exported["emails"]} >= {"certification/application_received"}
    assert "APP-bea" not in json.dumps(exported)


def test_my_invoices_are_mine_only(world: Driver) -> None:
    to_dossier(world, "cas")
    to_dossier(world, "bea")
    [invoice] = tx(my_data.invoices, world.people["cas"])
    assert invoice["kind"] == "invoice" and str(invoice["gross_total"]) == "786.50"
    assert invoice["has_pdf"] and invoice["has_ubl"]
    [theirs] = tx(my_data.invoices, world.people["bea"])
    assert theirs["number"] != invoice["number"]
