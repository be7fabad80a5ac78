"""Two starts of one business key at once, on PostgreSQL: a candidate's double click on
"Versturen" under Mijn CMI sends the application twice within milliseconds. Both requests find
no running case; the second one's insert waits for the first to commit, and was then a 500
(the unique index's IntegrityError). It is refused as a start of a running key is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from certflow.engine.errors import Conflict
from tests.races import while_pending

PROCESSES = Path(__file__).resolve().parents[2] / "processes"
APPLICATION = {"candidate": "cas", "eligibility_route": "hbo_diploma", "motivation": "graag"}


@pytest.fixture
def engine(pg_url: str) -> Any:
    from certflow.bootstrap import build_engine, create_schema
    from certflow.engine.facade import Actor

    create_schema(pg_url)
    engine = build_engine()
    engine.publisher = lambda jobs: None
    harness_owner = Actor("pia", ("process_owner",), True)
    from certflow.store.db import session_scope
    from tests.support import create_user

    with session_scope() as s:
        create_user(s, "pia", "Pia", ["process_owner"], is_staff=True)
        create_user(s, "cas", "Cas", ["candidate"],
                    address={"street": "Straat 1", "postal_code": "1234 AB", "city": "Utrecht"})
    engine.deploy(harness_owner, PROCESSES, only=["certification"])
    return engine


def test_the_second_of_two_simultaneous_applications_is_refused_not_a_500(engine: Any) -> None:
    from sqlalchemy import func, select

    from certflow.engine.facade import Actor
    from certflow.store.db import session_scope
    from certflow.store.models import Instance

    cas = Actor("cas", ("candidate",), False)
    second = while_pending(  # the first click's request, not committed yet
        lambda first: engine.start_in(first, "cas", "certification", "cas:certification",
                                      dict(APPLICATION), read_clock=True),
        lambda: engine.start(cas, "certification", "cas:certification", dict(APPLICATION)),
        opened=lambda: engine.session(clock=False))

    assert isinstance(second, Conflict), second
    assert "already running" in str(second)
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Instance)) == 1
