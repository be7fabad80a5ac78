"""Every process of the catalogue, driven with the live-workflow cache off: each advance (a
person's, a job result's, a timer's, a message's) restores the instance from its stored state,
and each restore is checked against SpiffWorkflow's own (CERTFLOW_VERIFY_STATE, on in the
tests: certflow.engine.spiff.restore_state). The paths end as they do with the cache on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from certflow.bootstrap import build_engine
from certflow.engine import runtime
from certflow.engine.runtime import Runtime
from tests.processes.conftest import ADDRESS
from tests.processes.driver import PROCESSES, Driver
from tests.support import Harness


class Restores:
    def __init__(self) -> None:
        self.versions: dict[str, set[int]] = defaultdict(set)  # process -> instance versions restored
        self.failures: list[str] = []


@pytest.fixture
def uncached(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Driver, Restores]]:
    monkeypatch.setenv("CERTFLOW_VERIFY_STATE", "1")
    monkeypatch.setattr(runtime, "LIVE_WORKFLOWS", 0)
    seen = Restores()
    restore = Runtime.restore_with_states

    def checked(self: Runtime, instance: Any, definition: Any) -> Any:
        try:
            restored = restore(self, instance, definition)
        except AssertionError as exc:  # recorded too: a job's advance would only log it
            seen.failures.append(f"{instance.process_id} v{instance.version}: {exc}")
            raise
        seen.versions[instance.process_id].add(instance.version)
        return restored

    monkeypatch.setattr(Runtime, "restore_with_states", checked)
    harness = Harness(build_engine())
    d = Driver(harness)
    harness.engine.deploy(harness.staff, PROCESSES)
    d.person("cas", ["candidate"], address=ADDRESS)
    d.person("bea", ["candidate"], address=ADDRESS)
    d.person("olga", ["office"], staff=True)
    d.person("mila", ["mentor"])
    d.person("kees", ["committee"])
    d.person("cato", ["certifier"], staff=True)
    d.person("cor", ["coordinator"], staff=True)
    d.person("sam", ["supervisor"])
    d.person("ria", ["assessor"])
    d.person("ab", ["assessor"])
    yield d, seen
    assert d.engine.live_hits == 0
    assert seen.failures == []


def test_first_certification_then_its_certificate_lifecycle_and_the_fee_runs(
        uncached: tuple[Driver, Restores]) -> None:
    from tests.processes.test_certification import grant, lifecycle_of

    d, seen = uncached
    grant(d)
    lifecycle_id = lifecycle_of(d)["id"]
    d.later("P1200D")  # invitation, reminder and lapse of the certificate; yearly register fees
    assert d.engine.instance(d.people["olga"], lifecycle_id).status == "completed"
    assert d.emails("cas")[-1] == "lifecycle/lapsed"
    assert len(seen.versions["certification"]) >= 8
    for process in ("certificate_lifecycle", "register_fee_run"):
        assert len(seen.versions[process]) >= 2, process
    # A fee's instance queued its mail when it started (an outbox task, no result advance) and
    # waits for its payment: its first restore is when its payment term's timer fires.
    d.later("P100D")
    assert seen.versions["register_fee"]


def test_an_application_cancelled_by_its_payment_deadline(uncached: tuple[Driver, Restores]) -> None:
    from tests.processes.test_certification import cancelled_for_non_payment

    d, seen = uncached
    instance_id = cancelled_for_non_payment(d)
    d.do("olga", "handle_cancelled_application", {"credit_invoice": True, "note": ""})
    assert d.engine.instance(d.people["olga"], instance_id).status == "completed"
    assert len(seen.versions["certification"]) >= 3


def test_recertification_with_a_supervisor(uncached: tuple[Driver, Restores]) -> None:
    from tests.processes import test_recertification_supervisor as supervisor

    d, seen = uncached
    supervisor.certify(d, "cas")
    instance_id = supervisor.through_statement(d)
    assert d.engine.instance(d.people["olga"], instance_id).status == "running"
    assert len(seen.versions["recertification_supervisor"]) >= 3


def test_written_recertification(uncached: tuple[Driver, Restores]) -> None:
    from tests.processes import test_recertification_written as written

    d, seen = uncached
    written.certify(d, 120)
    instance_id = written.through_dossier(d)
    assert d.engine.instance(d.people["olga"], instance_id).status == "running"
    assert len(seen.versions["recertification_written"]) >= 3


def test_an_order_and_a_data_erasure_request(uncached: tuple[Driver, Restores]) -> None:
    from tests.processes import test_orders
    from tests.processes.test_data_erasure import ask

    d, seen = uncached
    order_id = test_orders.order(d, "cas", "book", "BOOK-1", quantity=1, shipping_address=ADDRESS)
    test_orders.pay(d, "BOOK-1")
    d.do("olga", "ship_book", {"shipped": True, "tracking_code": "3SCMI0001234"})
    assert d.engine.instance(d.people["olga"], order_id).status == "completed"
    erasure_id = ask(d, "bea")
    d.do("olga", "review_erasure", {"approved": False, "note": "Er loopt een geschil."})
    assert d.engine.instance(d.people["olga"], erasure_id).status == "completed"
    assert d.emails("bea")[-1] == "privacy/erasure_refused"
    assert len(seen.versions["orders"]) >= 2
    assert seen.versions["data_erasure"]
