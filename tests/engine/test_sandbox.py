"""The diagram-script sandbox: what works, what is rejected, what is stopped, and SpiffWorkflow wiring."""

from __future__ import annotations

import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any
from xml.sax.saxutils import escape

import pytest
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from certflow.engine.sandbox import (
    SandboxEnvironment,
    SandboxScriptEngine,
    ScriptLimitExceeded,
    ScriptRejected,
    compile_script,
    validate,
)

pytestmark = pytest.mark.usefixtures("fresh_script_caches")  # rules computed, not recalled
FIXED_NOW = datetime(2024, 1, 31, 23, 30, tzinfo=timezone.utc)


@pytest.fixture(params=["isolated", "in_process"])
def env(request: pytest.FixtureRequest) -> SandboxEnvironment:
    """Both paths: the default (snippets in an evaluator process under OS limits) and the
    in-process one, whose guards and tracer must hold on their own as well."""
    return SandboxEnvironment(now=lambda: FIXED_NOW, isolated=request.param == "isolated")


def run(env: SandboxEnvironment, script: str, **data: Any) -> dict[str, Any]:
    env.execute(script, data)
    return data


# --- ordinary diagram code works ---------------------------------------------------------


def test_gateway_condition(env: SandboxEnvironment) -> None:
    assert env.evaluate("approved == True", {"approved": True}) is True
    assert env.evaluate("approved == True", {"approved": False}) is False
    assert env.evaluate("  score >= 7 and status in ('new', 'paid')", {"score": 8, "status": "paid"})


def test_assignment_and_arithmetic(env: SandboxEnvironment) -> None:
    data = run(env, "x = a + b\nz = x * 3 - a ** 2\nq, r = divmod_result", a=2, b=3, divmod_result=(1, 2))
    assert (data["x"], data["z"], data["q"], data["r"]) == (5, 11, 1, 2)


def test_loops_branches_and_comprehensions(env: SandboxEnvironment) -> None:
    script = (
        "total = 0\n"
        "for i, item in enumerate(items):\n"
        "    if item['paid']:\n"
        "        total += item['amount']\n"
        "    elif i == 0:\n"
        "        continue\n"
        "    else:\n"
        "        pass\n"
        "names = [item['name'].upper() for item in items if item['paid']]\n"
        "by_name = {item['name']: item['amount'] for item in items}\n"
        "kinds = {item['kind'] for item in items}\n"
        "any_big = any(item['amount'] > 100 for item in items)\n"
        "ordered = sorted(by_name.keys(), key=str.lower, reverse=True)\n"
    )
    items = [
        {"name": "cmi", "amount": 150, "paid": True, "kind": "a"},
        {"name": "rlp", "amount": 50, "paid": False, "kind": "a"},
        {"name": "Audit", "amount": 25, "paid": True, "kind": "b"},
    ]
    data = run(env, script, items=items)
    assert data["total"] == 175
    assert data["names"] == ["CMI", "AUDIT"]
    assert data["by_name"] == {"cmi": 150, "rlp": 50, "Audit": 25}
    assert data["kinds"] == {"a", "b"}
    assert data["any_big"] is True
    assert data["ordered"] == ["rlp", "cmi", "Audit"]


def test_dict_and_list_updates(env: SandboxEnvironment) -> None:
    script = (
        "applicant.update({'status': 'approved'})\n"
        "applicant['reviews'] += 1\n"
        "applicant.setdefault('tags', []).append('fast-track')\n"
        "log += ['approved']\n"
        "log.extend(['mailed'])\n"
        "first = log.pop(0)\n"
        "del applicant['draft']\n"
        "del scratch\n"
    )
    log = ["created"]
    data = run(env, script, applicant={"reviews": 1, "draft": True}, log=log, scratch=1)
    assert data["applicant"] == {"reviews": 2, "status": "approved", "tags": ["fast-track"]}
    assert data["log"] == ["approved", "mailed"]  # += and extend work in place
    assert data["first"] == "created"
    assert "scratch" not in data


def test_f_strings_and_string_methods(env: SandboxEnvironment) -> None:
    data = run(
        env,
        "msg = f'Dear {name.strip().title()}, you owe EUR {fee:.2f} ({pct:>5}%)'\n"
        "slug = '-'.join(name.lower().split())\n"
        "code = 'CMI-%04d' % number\n",
        name="  jan de vries ", fee=125, pct=21, number=7,
    )
    assert data["msg"] == "Dear Jan De Vries, you owe EUR 125.00 (   21%)"
    assert data["slug"] == "jan-de-vries"
    assert data["code"] == "CMI-0007"


def test_date_helpers_use_the_injected_clock(env: SandboxEnvironment) -> None:
    data = run(
        env,
        "t = today()\n"
        "stamp = now()\n"
        "due = add_days(t, 14)\n"
        "renewal = add_months(t, 1)\n"
        "leap = add_years('2024-02-29', 1)\n"
        "year = parse_date(stamp).year\n"
        "left = (parse_date(expiry) - parse_date(t)).days\n"
        "wait = iso_duration_days(14)\n",
        expiry="2024-03-01T09:00:00+01:00",
    )
    assert data["t"] == "2024-01-31"
    assert data["stamp"] == "2024-01-31T23:30:00+00:00"
    assert data["due"] == "2024-02-14"
    assert data["renewal"] == "2024-02-29"  # clamped to the end of February
    assert data["leap"] == "2025-02-28"
    assert data["year"] == 2024
    assert data["left"] == 30
    assert data["wait"] == "P14D"


def test_execute_leaves_only_data_in_the_context(env: SandboxEnvironment) -> None:
    data = run(env, "f = len\nn = len([1, 2])\nr = range(3)", x=1)
    assert data == {"x": 1, "n": 2, "r": range(3)}  # no __builtins__, no helper, no callable


def test_evaluate_does_not_change_the_context(env: SandboxEnvironment) -> None:
    context = {"x": 2}
    assert env.evaluate("x * 21", context) == 42
    assert context == {"x": 2}


def test_external_context_is_visible_but_not_written_back(env: SandboxEnvironment) -> None:
    assert env.evaluate("limit - x", {"x": 2}, external_context={"limit": 10}) == 8
    data = {"x": 2}
    env.execute("y = limit + x", data, external_context={"limit": 10})
    assert data == {"x": 2, "y": 12}
    with pytest.raises(ValueError, match="overwrites"):
        env.execute("y = 1", {"limit": 1}, external_context={"limit": 10})


def test_compiled_code_is_cached() -> None:
    assert compile_script("a_cached == 1", "eval") is compile_script("a_cached == 1", "eval")


def test_service_calls_do_not_go_through_the_script_engine(env: SandboxEnvironment) -> None:
    with pytest.raises(NotImplementedError):
        env.call_service({}, operation_name="mail")


# --- escapes are rejected before anything runs --------------------------------------------

ESCAPES = [
    "().__class__.__base__.__subclasses__()",
    "__import__('os')",
    "import os",
    "from os import system",
    "open('/etc/passwd')",
    "eval('1')",
    "exec('x=1')",
    "getattr(x, '__class__')",
    '"{0.__class__}".format(1)',
    '"{x}".format_map({})',
    "(lambda: 1)()",
    "[c for c in ().__class__.__bases__]",
    "globals()",
    "vars()",
    "type(1)",
    "x.__dict__",
    'f"{x.__class__}"',
    "(c for c in []).gi_frame",
    "str.mro()",
    "dict.fromkeys([1])",
    "_ = 1",
    "x.year = 1",
    "del x.year",
    "def f(): pass",
    "class A: pass",
    "try:\n    pass\nexcept Exception:\n    pass",
    "with x:\n    pass",
    "global x",
    "(y := 1)",
    "dict(__class__=1)",
    "data['f']()",
    "f'{x:{width}}'",
    "f'{x:>1000000000}'",
    "l[0:2] = [1]",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_escapes_are_rejected(source: str, env: SandboxEnvironment) -> None:
    with pytest.raises(ScriptRejected):
        validate(source, "exec")
    with pytest.raises(ScriptRejected):
        env.execute(source, {"x": 1, "data": {}, "l": [1, 2]})


@pytest.mark.parametrize("source", ["().__class__", "open('/etc/passwd')", 'f"{x.__class__}"', "type(1)"])
def test_escapes_are_rejected_in_expressions(source: str, env: SandboxEnvironment) -> None:
    with pytest.raises(ScriptRejected):
        validate(source, "eval")
    with pytest.raises(ScriptRejected):
        env.evaluate(source, {"x": 1})


def test_rejection_names_the_construct_and_line() -> None:
    with pytest.raises(ScriptRejected) as info:
        validate("a = 1\nb = 2\nc = a.__class__\n")
    assert info.value.lineno == 3
    assert "'__class__'" in str(info.value) and "line 3" in str(info.value)
    with pytest.raises(ScriptRejected, match="import statement"):
        validate("x = 1\nimport os")
    with pytest.raises(ScriptRejected, match="while loop"):
        validate("while True:\n    pass")
    with pytest.raises(ScriptRejected, match=r"calling open\(\)"):
        validate("open('x')", "eval")


def test_unparseable_source_is_a_plain_syntax_error() -> None:
    with pytest.raises(SyntaxError) as info:
        validate("x = = 1")
    assert not isinstance(info.value, ScriptRejected)


@pytest.mark.parametrize("source", ["a\ud800b", "x == '\udfff'"])
def test_a_lone_surrogate_is_a_plain_syntax_error(source: str) -> None:
    """ast.parse raises UnicodeEncodeError (a ValueError) for it: the studio's condition check
    answered a 500 for a lone surrogate in its JSON."""
    with pytest.raises(SyntaxError, match="not text") as info:
        validate(source, "eval")
    assert not isinstance(info.value, ScriptRejected)
    assert not any("\ud800" <= c <= "\udfff" for c in str(info.value))


def test_underscore_names_in_task_data_cannot_reach_internals(env: SandboxEnvironment) -> None:
    # Task data keys are only reachable as names, and '_' names never validate.
    with pytest.raises(ScriptRejected):
        env.evaluate("__builtins__", {"__builtins__": {}})


# --- resource limits ----------------------------------------------------------------------

LIMITED = [
    "for i in range(10**9):\n    pass",
    "x = sum(range(10**12))",
    "x = 'a' * 10**9",
    "x = [0] * 10**9",
    "x = 10**9 * [0]",
    "x = 2**10**10",
    "x = 1 << 10**9",
    "x = round(5, -10**9)",
    "x = '%0999999999d' % 1",
    "x = 'a'\nx *= 10**9",
    "x = 'ab'\nfor i in range(60):\n    x = x + x",
    "x = [1]\nfor i in range(60):\n    x += x",
    "x = [1]\nfor i in range(60):\n    x.extend(x)",
    "x = [1]\nfor i in range(60):\n    x = [*x, *x]",
    "x = 'ab'\nfor i in range(60):\n    x = f'{x}{x}'",
    "x = 'ab'\nfor i in range(60):\n    x = x.replace('a', 'aa')",
    "x = 'ab'\nfor i in range(60):\n    x = ''.join([x, x])",
    "x = 'ab'\nfor i in range(60):\n    x = str.join(x, [x, x])",
    "d = {'k': 'ab'}\nfor i in range(60):\n    d['k'] += d['k']",
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("source", LIMITED)
def test_size_bombs_are_refused_quickly(source: str, env: SandboxEnvironment) -> None:
    """Refused by a size check before the value is built, not run until a time, CPU or memory
    limit stops it (that would take seconds and, in process, the memory). The evaluator
    process is started first: its start-up on a busy machine is not the refusal's time."""
    env.execute("x = 1", {})
    started = time.monotonic()
    with pytest.raises(ScriptLimitExceeded) as refused:
        env.execute(source, {})
    assert "longer than" not in str(refused.value) and "CPU or memory" not in str(refused.value)
    assert time.monotonic() - started < 5


def test_while_true_is_rejected_at_validation() -> None:
    with pytest.raises(ScriptRejected):
        validate("while True: pass")


DEEP_LOOP = "n = 0\nfor i in range(100000):\n    for j in range(100000):\n        n += 1\n"


@pytest.mark.timeout(10)
def test_deep_loop_hits_the_time_limit(env: SandboxEnvironment) -> None:
    before = sys.gettrace()
    started = time.monotonic()
    with pytest.raises(ScriptLimitExceeded, match="longer than"):
        env.execute(DEEP_LOOP, {})
    assert time.monotonic() - started < 2
    assert sys.gettrace() is before  # the tracer is removed again


@pytest.mark.timeout(10)
def test_time_limit_works_in_worker_threads() -> None:
    env = SandboxEnvironment(time_limit=0.2)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            env.evaluate("sum(1 for i in range(100000) for j in range(100000))", {})
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ScriptLimitExceeded)


def test_long_comprehension_in_expression_hits_the_time_limit(env: SandboxEnvironment) -> None:
    with pytest.raises(ScriptLimitExceeded):
        env.evaluate("len([i * j for i in range(100000) for j in range(100000)])", {})


def test_ordinary_sizes_are_fine(env: SandboxEnvironment) -> None:
    data = run(env, "s = '-' * 80\nl = [0] * 1000\nbig = 10**100\nn = len(list(range(100000)))")
    assert len(data["s"]) == 80 and len(data["l"]) == 1000 and data["n"] == 100000


# --- SpiffWorkflow integration ------------------------------------------------------------


def _bpmn(script: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs"
                  targetNamespace="http://certflow.test/sandbox">
  <bpmn:process id="proc_id" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="double">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>{escape(script)}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:exclusiveGateway id="gw">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>to_big</bpmn:outgoing><bpmn:outgoing>to_small</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:endEvent id="end_big"><bpmn:incoming>to_big</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="end_small"><bpmn:incoming>to_small</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="double"/>
    <bpmn:sequenceFlow id="f2" sourceRef="double" targetRef="gw"/>
    <bpmn:sequenceFlow id="to_big" sourceRef="gw" targetRef="end_big">
      <bpmn:conditionExpression>y &gt; 5</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="to_small" sourceRef="gw" targetRef="end_small">
      <bpmn:conditionExpression>y &lt;= 5</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
  </bpmn:process>
</bpmn:definitions>
""".encode()


def _run_workflow(x: int, script: str = "y = x * 2") -> BpmnWorkflow:
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(_bpmn(script), filename="sandbox_test.bpmn")
    workflow = BpmnWorkflow(parser.get_spec("proc_id"), script_engine=SandboxScriptEngine(now=lambda: FIXED_NOW))
    workflow.get_tasks(state=TaskState.READY)[0].data["x"] = x
    workflow.do_engine_steps()
    return workflow


def _reached(workflow: BpmnWorkflow) -> set[str]:
    completed = workflow.get_tasks(state=TaskState.COMPLETED)
    return {t.task_spec.bpmn_id for t in completed} & {"end_big", "end_small"}


@pytest.mark.parametrize(("x", "end", "y"), [(4, "end_big", 8), (2, "end_small", 4)])
def test_spiff_workflow_runs_scripts_and_conditions_in_the_sandbox(x: int, end: str, y: int) -> None:
    workflow = _run_workflow(x)
    assert workflow.is_completed()
    assert _reached(workflow) == {end}
    assert workflow.data["y"] == y
    assert "__builtins__" not in workflow.data


def test_spiff_workflow_reports_rejected_scripts_with_their_line() -> None:
    with pytest.raises(WorkflowTaskException) as info:
        _run_workflow(4, script="y = x * 2\nz = y.__class__")
    assert info.value.line_number == 2


def test_spiff_workflow_stops_runaway_scripts() -> None:
    with pytest.raises(WorkflowTaskException) as info:
        _run_workflow(4, script="y = 'a' * 10**9")
    assert info.value.error_type == "ScriptLimitExceeded"
    assert isinstance(info.value.__cause__ or info.value.__context__, ScriptLimitExceeded)


def test_script_engine_validate() -> None:
    engine = SandboxScriptEngine(now=lambda: FIXED_NOW)
    engine.validate("y > 5")
    with pytest.raises(ScriptRejected):
        engine.validate("__import__('os').system('id')")
    with pytest.raises(NotImplementedError):
        engine.call_service(_FakeTask(), operation_name="mail")


class _FakeTask:
    data: dict[str, Any] = {}
