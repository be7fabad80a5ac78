"""Hostile snippets whose cost sits inside ONE C-level operation (comparing, hashing, printing a
structure built by repetition) or in the data they leave behind: the isolated evaluator stops
them with a clear error, the calling process never runs them, and the next snippet works."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from certflow.engine import evaluator
from certflow.engine.sandbox import SandboxEnvironment, ScriptLimitExceeded, runs_in_process, script_runs_in_process
from certflow.engine.sandbox_bounds import MAX_DEPTH, NotData, check_data, DataLimitExceeded

pytestmark = pytest.mark.usefixtures("fresh_script_caches")  # rules computed, not recalled
FIXED_NOW = datetime(2024, 1, 31, 23, 30, tzinfo=timezone.utc)
CUBE = "[[[0] * 1000] * 1000] * 1000"  # 1,000 list objects in memory, 10**9 items as text
HOSTILE = {
    "compare": f"a = [{CUBE}] * 1000\nb = [{CUBE}] * 1000\nsame = a == b\na = b = 0",
    "hash": "t = ((((0,) * 1000,) * 1000,) * 1000,) * 1000\nseen = {t}\nt = 0",
    "format": f"x = {CUBE}\nn = len(f'{{x}}')\nx = 0",
    "store": f"x = {CUBE}",
    "deep": "x = []\nfor i in range(100000):\n    x = [x]",
}


@pytest.fixture
def env() -> SandboxEnvironment:
    return SandboxEnvironment(now=lambda: FIXED_NOW, time_limit=0.5)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_scripts_are_stopped_with_a_clear_error(env: SandboxEnvironment, name: str) -> None:
    data = {"keep": 1}
    started = time.monotonic()
    with pytest.raises(ScriptLimitExceeded) as info:
        env.execute(HOSTILE[name], data)
    assert time.monotonic() - started < 10
    assert any(word in str(info.value) for word in ("limit", "longer than", "nested deeper")), info.value
    assert data == {"keep": 1}  # nothing of the failed script reaches the task data
    after = {"x": 1}
    env.execute("y = x + 1", after)  # the pool recovered: a fresh evaluator serves the next call
    assert after == {"x": 1, "y": 2}


@pytest.mark.timeout(60)
def test_hostile_expression_in_a_condition_is_stopped(env: SandboxEnvironment) -> None:
    assert not runs_in_process(f"[{CUBE}] * 1000 == [{CUBE}] * 1000")
    with pytest.raises(ScriptLimitExceeded):
        env.evaluate(f"[{CUBE}] * 1000 == [{CUBE}] * 1000", {})


def test_plain_conditions_run_in_process_and_the_rest_isolated() -> None:
    for cheap in ("approved == True", "assessor_check['ok'] == True", "fee > 0 and status != ''",
                  "add_days(today(), 14)", "'R-' + key", "invoice.get('number')"):
        assert runs_in_process(cheap), cheap
    for costly in ("x * 2", "[0] * 10", "sum(x)", "[i for i in x]", "f'{x}'", "'%d' % x", "sorted(x)"):
        assert not runs_in_process(costly), costly


def test_results_are_checked_as_data(env: SandboxEnvironment) -> None:
    with pytest.raises(TypeError, match="zip object"):
        env.execute("pairs = zip([1], [2])", {})
    with pytest.raises(ScriptLimitExceeded, match="larger than"):
        env.evaluate("[[0] * 1000] * 1000", {})
    assert env.evaluate("[x] * 3", {"x": {"a": [1]}}) == [{"a": [1]}] * 3


def test_check_data_counts_shared_members_every_time() -> None:
    inner = [0] * 1000
    check_data([inner] * 100, "ok")  # 100,000 items: fine
    with pytest.raises(DataLimitExceeded, match="larger than"):
        check_data([[inner] * 1000] * 10, "shared")
    nested: list[object] = []
    for _ in range(MAX_DEPTH + 1):
        nested = [nested]
    with pytest.raises(DataLimitExceeded, match="nested deeper"):
        check_data(nested, "deep")
    with pytest.raises(NotData):
        check_data({"f": len}, "callable")


def test_errors_in_the_evaluator_keep_their_type_and_line(env: SandboxEnvironment) -> None:
    with pytest.raises(ZeroDivisionError):
        env.execute("a = 1\nb = a / 0", {})
    with pytest.raises(KeyError):
        env.evaluate("d['missing'] + 1", {"d": {}})


def test_a_killed_evaluator_is_replaced() -> None:
    pool = evaluator.pool()
    env = SandboxEnvironment(now=lambda: FIXED_NOW)
    isolated = "y = 1\ny = y + 1"  # reads what it assigned: not run in-process
    env.execute(isolated, {})
    assert pool.idle
    for child in list(pool.idle):
        child.proc.kill()
        child.proc.wait()
    data: dict[str, object] = {}
    env.execute(isolated, data)
    assert data == {"y": 2}


def test_scripts_of_plain_assignments_run_in_process_and_the_rest_isolated() -> None:
    for cheap in ("invoice_number = invoice['invoice_number']", "a = x.get('k')\nb = len(y) > 0",
                  "due = add_days(today(), 14)\nref = 'R-' + key"):
        assert script_runs_in_process(cheap), cheap
    for costly in ("a = x + x\nb = a + a",  # reads its own result: doubles at every step
                   "x['k'] = 1", "a = b = x", "a, b = x", "a += 1", "a = x * 2", "a = sorted(x)",
                   "for i in x:\n    a = i", "if x:\n    a = 1", "x", "\n".join(f"a{i} = x" for i in range(11))):
        assert not script_runs_in_process(costly), costly


def test_a_script_run_in_process_acts_as_the_evaluator(env: SandboxEnvironment,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same task data as an isolated run, no evaluator asked; a failing or too large
    result leaves the task data as it was."""
    def no_evaluator(*_: object) -> object:
        raise AssertionError("ran in the evaluator")

    monkeypatch.setattr(evaluator, "pool", no_evaluator)
    data = {"invoice": {"invoice_number": "INV-1"}, "n": 2}
    env.execute("invoice_number = invoice['invoice_number']\nbig = n > 1", data)
    assert data == {"invoice": {"invoice_number": "INV-1"}, "n": 2, "invoice_number": "INV-1", "big": True}
    before = {"invoice": {}}
    with pytest.raises(KeyError):
        env.execute("a = 1\nb = invoice['missing']", before)
    assert before == {"invoice": {}}
    wide = {"x": ["y" * 400_000]}
    with pytest.raises(ScriptLimitExceeded, match="larger than"):
        env.execute("a = x\nb = x\nc = x\nd = x\ne = x", wide)
    assert wide == {"x": ["y" * 400_000]}
