"""Moving a running first certification to a newer version, through the real store and
handlers: an application waiting for payment (its reminder and deadline timers running) moves
to a version that renames a later step, keeps its timers, and is granted on the new version."""

from __future__ import annotations

import shutil
from pathlib import Path

from certflow.engine.facade import Actor
from certflow.store.db import session_scope
from certflow.store.models import Instance
from tests.processes.driver import PROCESSES, Driver
from tests.processes.test_certification import DOSSIER, apply, later, pay

OWNER = Actor("pia", ("process_owner",), True)


def test_waiting_for_payment_moves_to_the_new_version_and_is_granted_there(driver: Driver, tmp_path: Path) -> None:
    d = driver
    instance_id = apply(d)
    d.do("olga", "check_eligibility", {"eligible": True, "remarks": ""})
    with session_scope() as s:
        due = s.get(Instance, instance_id).next_due_at  # type: ignore[union-attr]
    changed = tmp_path / "processes"
    shutil.copytree(PROCESSES, changed)
    bpmn = changed / "certification" / "certification.bpmn"
    bpmn.write_text(bpmn.read_text().replace('name="Mentor toewijzen"', 'name="Mentor kiezen"', 1))
    deployed = d.engine.deploy(d.h.staff, changed, only=["certification"])
    assert [(v.version, v.created) for v in deployed if v.process_id == "certification"] == [(2, True)]

    d.engine.migrate_instance(OWNER, instance_id, "nieuwe naam")
    with session_scope() as s:
        assert s.get(Instance, instance_id).next_due_at == due  # type: ignore[union-attr]
    later(d, "P15D")
    assert d.emails("cas").count("certification/payment_reminder") == 1  # the timer kept running
    pay(d)
    [assign] = d.inbox("olga")
    assert assign.title == "Mentor kiezen"  # the new version's step
    d.do("olga", "assign_mentor", {"mentor": "mila"})
    d.do("cas", "write_dossier", DOSSIER)
    d.do("mila", "review_dossier", {"approved": True, "feedback": "Goed"})
    d.do("kees", "oral_assessment", {"advice": "positive", "notes": "Overtuigend"})
    d.do("cato", "decide_certification", {"granted": True, "reason": "Voldoet"})
    view = d.engine.instance(d.h.staff, instance_id)
    assert (view.status, view.version) == ("completed", 2)
    assert d.emails("cas")[-1] == "certification/granted"
