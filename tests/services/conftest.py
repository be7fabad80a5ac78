"""Application-service tests: the real processes deployed on a fresh SQLite database, the
usual people present, jobs run in-process (as a worker would)."""

from __future__ import annotations

import pytest

from certflow.bootstrap import build_engine
from tests.processes.driver import PROCESSES, Driver
from tests.support import Harness

ADDRESS = {"street": "Oudegracht 1", "postal_code": "3511 AA", "city": "Utrecht", "country": "NL"}
APPLICATION = {"eligibility_route": "hbo_diploma", "motivation": "Ik wil"}


@pytest.fixture
def world(sqlite_url: str) -> Driver:
    harness = Harness(build_engine())
    d = Driver(harness)
    harness.engine.deploy(harness.staff, PROCESSES, only=["certification", "orders"])
    d.person("cas", ["candidate"], address=ADDRESS)
    d.person("bea", ["candidate"], address=ADDRESS)
    d.person("olga", ["office"], staff=True)
    d.person("otto", ["office"], staff=True)
    d.person("mila", ["mentor"])
    d.person("max", ["mentor"])
    d.person("kees", ["committee"])
    return d


def apply(d: Driver, who: str = "cas", key: str | None = None) -> str:
    view = d.engine.start(d.people[who], "certification", key or f"APP-{who}",
                          {**APPLICATION, "candidate": who})
    d.settle()
    return view.id


def to_dossier(d: Driver, who: str = "cas", mentor: str = "mila") -> str:
    """Apply, be found eligible, pay, get a mentor: the candidate's dossier task is open."""
    from certflow.store.billing import Invoice
    from certflow.store.db import session_scope
    from sqlalchemy import select

    instance_id = apply(d, who)
    d.do("olga", "check_eligibility", {"eligible": True, "remarks": ""})
    with session_scope() as s:
        invoice = s.scalars(select(Invoice).where(Invoice.customer_username == who)).one()
        number, amount = invoice.number, str(invoice.gross_total)
    d.engine.deliver_message(d.people["olga"], "payment_received", {"amount": amount},
                             correlation={"invoice_number": number})
    d.settle()
    d.do("olga", "assign_mentor", {"mentor": mentor})
    return instance_id


def tx(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Call a service in its own transaction, as a page or the CLI does."""
    from certflow.store.db import session_scope

    with session_scope() as session:
        return fn(session, *args, **kwargs)
