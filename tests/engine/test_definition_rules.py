"""Which deployed version a process name refers to, as staff notice it when they start or open
a process: the version they asked for (also when a newer one is deployed), else the newest;
and a refusal that names the process and the version, in the reader's language."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy.orm import Session

from certflow.engine import rules
from certflow.engine.errors import NotFound
from certflow.i18n import translate
from certflow.store.models import Definition
from tests.handlers._fixtures_records import engine, session  # noqa: F401  (fixtures)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def deployed(session: Session) -> Session:  # noqa: F811
    """``queue`` in versions 1 and 2, ``orders`` in version 1."""
    for process_id, version in (("queue", 1), ("queue", 2), ("orders", 1)):
        session.add(Definition(process_id=process_id, version=version, name=process_id,
                               content_hash=f"{process_id}-{version}", sources={}, spec={}, forms={},
                               elements={}, deployed_at=NOW, deployed_by="olga"))
    session.flush()
    return session


def test_the_version_asked_for_even_when_a_newer_one_is_deployed(deployed: Session) -> None:
    assert rules.definition(deployed, "queue", 1).version == 1
    assert rules.definition(deployed, "queue", 2).version == 2
    assert rules.definition(deployed, "queue", None).version == 2
    assert (rules.definition(deployed, "orders", None).process_id,
            rules.definition(deployed, "orders", None).version) == ("orders", 1)


def test_an_unknown_process_or_version_is_named_in_the_refusal(deployed: Session) -> None:
    with pytest.raises(NotFound) as unknown:
        rules.definition(deployed, "recertification", None)
    assert unknown.value.message == "no deployed process 'recertification'"
    with pytest.raises(NotFound) as newer:
        rules.definition(deployed, "queue", 3)
    assert newer.value.message == "no deployed process 'queue' version 3"


def test_the_refusal_is_shown_in_dutch(deployed: Session) -> None:
    for version, dutch in ((None, "Proces ‘recertification’ is niet in gebruik genomen."),
                           (7, "Proces ‘recertification’ versie 7 is niet in gebruik genomen.")):
        with pytest.raises(NotFound) as refused:
            rules.definition(deployed, "recertification", version)
        assert translate("nl", refused.value.message) == dutch


def test_starting_a_process_that_is_not_deployed_is_refused_in_the_readers_language(
        deployed: Session) -> None:
    """Starting takes the newest version by its id (``latest_id``): the newest, and for a name
    nobody deployed the same refusal as opening it, also in Dutch (it was English-only)."""
    newest = rules.definition(deployed, "queue", None)
    assert rules.latest_id(deployed, "queue") == newest.id
    with pytest.raises(NotFound) as refused:
        rules.latest_id(deployed, "recertification")
    assert refused.value.message == "no deployed process 'recertification'"
    assert translate("nl", refused.value.message) == "Proces ‘recertification’ is niet in gebruik genomen."
