"""Bad input as a careless operator or an attacker would send it: each gets one clear error naming
the file, element or field, and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from certflow.engine.errors import DeployError, InvalidInput, NotFound
from certflow.store.db import session_scope
from certflow.store.models import AuditEvent, Definition, Instance
from tests.engine.test_runtime import edited, office_task, start
from tests.support import FLOW_DIR, Harness, script_process


def _counts() -> tuple[int, int, int]:
    with session_scope() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Definition, Instance, AuditEvent))  # type: ignore[return-value]


def test_a_bpmn_file_that_is_not_utf8_names_the_file(harness: Harness, tmp_path: Path) -> None:
    procs = edited(tmp_path, 'name="Test flow"', 'name="Test flow"')
    bpmn = procs / "flow" / "flow.bpmn"
    bpmn.write_bytes(bpmn.read_bytes().replace(b"Review request", "Beoordeling aanvraag é".encode("latin-1")))
    with pytest.raises(DeployError) as info:
        harness.engine.deploy(harness.staff, procs)
    assert "flow.bpmn" in info.value.message and "not UTF-8" in info.value.message
    assert _counts() == (0, 0, 0)


def test_a_dangling_sequence_flow_names_the_flow_and_its_missing_end(harness: Harness, tmp_path: Path) -> None:
    procs = edited(tmp_path, 'sourceRef="start" targetRef="make_ref"', 'sourceRef="start" targetRef="nowhere"')
    with pytest.raises(DeployError) as info:
        harness.engine.deploy(harness.staff, procs)
    message = info.value.message
    assert "flow.bpmn" in message and "'nowhere'" in message and "targetRef" in message, message
    assert "perhaps a form" not in message
    assert _counts() == (0, 0, 0)


@pytest.mark.parametrize("levels", [1000, 100_000])
def test_a_script_result_nested_deep_is_refused_at_start(harness: Harness, tmp_path: Path, levels: int) -> None:
    procs = script_process(tmp_path, f"deep = []\nfor i in range({levels}):\n    deep = [deep]")
    harness.engine.deploy(harness.staff, procs)
    before = _counts()
    with pytest.raises(InvalidInput) as info:
        harness.engine.start(harness.staff, "scripted", "S1")
    message = info.value.message
    assert "failed at script" in message and "nested deeper than 50" in message or (
        levels == 100_000 and "longer than" in message), message  # a loaded machine may time out first
    assert _counts() == before


def test_a_huge_version_number_is_not_found(harness: Harness) -> None:
    harness.engine.deploy(harness.staff, FLOW_DIR)
    with pytest.raises(NotFound, match="version"):
        harness.engine.definition_source("flow", 10**30)
    with pytest.raises(NotFound):
        harness.engine.definition_source("flow", -1)


def _deep(levels: int) -> object:
    value: object = "x"
    for _ in range(levels):
        value = [value]
    return value


def test_oversized_or_deep_inputs_name_the_field_and_change_nothing(harness: Harness) -> None:
    harness.engine.deploy(harness.staff, FLOW_DIR)
    before = _counts()
    with pytest.raises(InvalidInput) as info:
        harness.engine.start(harness.staff, "flow", "BIG", {"key": "BIG", "blob": "x" * 3_000_000})
    assert info.value.details == {"field": "data"} and "larger than" in info.value.message
    with pytest.raises(InvalidInput, match="nested deeper"):
        harness.engine.start(harness.staff, "flow", "DEEP", {"key": "DEEP", "tree": _deep(100_000)})
    assert _counts() == before
    start(harness)
    harness.run_jobs()
    task_id = office_task(harness)
    middle = _counts()
    with pytest.raises(InvalidInput, match="nested deeper"):
        harness.engine.complete(harness.staff, task_id, {"approved": True, "notes": _deep(1000)})
    assert _counts() == middle and office_task(harness) == task_id
    ref = harness.engine.instance(harness.staff, harness.engine.instances(harness.staff)[0]["id"]).data["ref"]
    with pytest.raises(InvalidInput) as info:
        harness.engine.deliver_message(harness.staff, "paid", {"scan": "x" * 10_000_000}, correlation={"ref": ref})
    assert info.value.details == {"field": "payload"}
    assert _counts() == middle
