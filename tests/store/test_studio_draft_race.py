"""Two first saves of one studio draft at once, on PostgreSQL (certflow.store.studio.save_into).

A process owner double-clicks "Concept opslaan" on a diagram, table or e-mail never drafted, or
two owners save one at the same moment: both requests find no draft and insert one. The second
insert waits for the first to commit and then breaks the primary key, which was a 500. Here one
save holds its insert uncommitted while the other runs, as it happens on the server.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from certflow.errors import DraftConflict
from tests.races import while_pending

PROCESSES = Path(__file__).resolve().parents[2] / "processes"
TEMPLATE = "certification/application_received.nl.txt"
NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


def race(save: Callable[[], Any], model: type[Any], **row: Any) -> Any:
    """Run ``save`` while another request's first save of the same draft is pending (made, not
    yet committed); the other commits once ``save`` waits on its key. ``save``'s outcome, or
    the exception it raised."""
    return while_pending(lambda other: other.add(model(saved_by="otto", saved_at=NOW, revision=1, **row)),
                         save)


@pytest.fixture
def owners(pg_url: str) -> Any:
    from certflow.bootstrap import build_engine, create_schema
    from certflow.engine.facade import Actor
    from certflow.store.db import session_scope
    from tests.support import create_user

    create_schema(pg_url)
    with session_scope() as s:
        create_user(s, "pia", "Pia Procesmaker", ["process_owner"], is_staff=True)
    return build_engine(), Actor("pia", ("process_owner",), True)


def test_a_diagram_saved_twice_at_once_keeps_the_later_save(owners: Any) -> None:
    from certflow.store.studio import StudioDraft

    engine, pia = owners
    sources = {"orders.bpmn": (PROCESSES / "orders" / "orders.bpmn").read_text()}
    saved = race(lambda: engine.save_draft(pia, "orders", sources), StudioDraft,
                 process_id="orders", sources={"orders.bpmn": "<other/>"}, base_version=None)
    assert not isinstance(saved, Exception), saved
    assert saved.revision == 2
    assert engine.workspace(pia, "orders").sources == sources


def test_an_editor_that_expected_no_draft_is_told_of_the_other_save(owners: Any) -> None:
    from certflow.store.studio import StudioDraft

    engine, pia = owners
    sources = {"orders.bpmn": (PROCESSES / "orders" / "orders.bpmn").read_text()}
    refused = race(lambda: engine.save_draft(pia, "orders", sources, revision=0), StudioDraft,
                   process_id="orders", sources={"orders.bpmn": "<other/>"}, base_version=None)
    assert isinstance(refused, DraftConflict), refused
    assert engine.workspace(pia, "orders").sources == {"orders.bpmn": "<other/>"}  # otto's, kept


def test_a_table_saved_twice_at_once_keeps_the_later_save(owners: Any) -> None:
    from certflow.store.studio_texts import StudioSharedDraft

    engine, pia = owners
    content = (PROCESSES / "shared" / "fees.dmn").read_text()
    saved = race(lambda: engine.save_table_draft(pia, "fees.dmn", content), StudioSharedDraft,
                 name="fees.dmn", content="<other/>", base_version=None)
    assert not isinstance(saved, Exception), saved
    assert saved.revision == 2 and saved.content == content


def test_an_email_saved_twice_at_once_keeps_the_later_save(owners: Any) -> None:
    from certflow.services import email_templates
    from certflow.store.db import session_scope
    from certflow.store.studio_texts import StudioSharedDraft

    def save() -> Any:
        with session_scope() as s:
            return email_templates.save_draft(s, TEMPLATE, "Subject: Ontvangen\n\nBeste {{ recipient_name }},\n", "pia", NOW)

    saved = race(save, StudioSharedDraft, name="email/" + TEMPLATE, content="other", base_version=None)
    assert not isinstance(saved, Exception), saved
    assert saved.revision == 2
    with session_scope() as s:
        assert s.get(StudioSharedDraft, "email/" + TEMPLATE).content == "Subject: Ontvangen\n\nBeste {{ recipient_name }},\n"



deploy_twice = while_pending  # the first click's deploy pending while the second runs


def test_an_email_deployed_twice_at_once_is_one_new_version(owners: Any) -> None:
    from sqlalchemy import select

    from certflow.services import email_templates
    from certflow.store.db import session_scope
    from certflow.store.studio_texts import EmailTemplate

    with session_scope() as s:
        email_templates.save_draft(s, TEMPLATE, "Subject: Ontvangen\n\nBeste {{ recipient_name }},\n", "pia", NOW)

    def second() -> Any:
        with session_scope() as s:
            return email_templates.deploy(s, "pia", NOW)

    refused = deploy_twice(lambda s: email_templates.deploy(s, "pia", NOW), second)
    assert isinstance(refused, email_templates.TemplateRefused), refused  # "no draft to deploy"
    with session_scope() as s:
        versions = s.scalars(select(EmailTemplate.version).where(EmailTemplate.name == TEMPLATE)).all()
    assert versions == [1]


def test_a_table_deployed_twice_at_once_is_one_new_version(owners: Any) -> None:
    from sqlalchemy import select

    from certflow.engine import deploy as deploying
    from certflow.engine.errors import NotFound
    from certflow.store.db import session_scope
    from certflow.store.models import SharedTable
    from certflow.store.studio_texts import StudioSharedDraft

    engine, pia = owners
    engine.deploy(pia, PROCESSES, only=["orders"])  # the tables' first versions
    fees = (PROCESSES / "shared" / "fees.dmn").read_text()
    engine.save_table_draft(pia, "fees.dmn", fees.replace("</definitions>", "<!-- x --></definitions>"))

    def first(session: Any) -> None:  # the first click's request, as deploy_tables makes it
        draft = session.get(StudioSharedDraft, "fees.dmn", with_for_update=True)
        deploying.store_shared_table(session, "fees.dmn", draft.content, "pia")
        session.delete(draft)
        session.flush()

    refused = deploy_twice(first, lambda: engine.deploy_tables(pia))
    assert isinstance(refused, NotFound), refused  # "no fee or VAT table draft to deploy"
    with session_scope() as s:
        versions = s.scalars(select(SharedTable.version).where(SharedTable.name == "fees.dmn")).all()
    assert sorted(versions) == [1, 2]
