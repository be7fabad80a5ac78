"""The diagram scripts' hard limits, pinned at their edges: what a process owner's script may do
exactly at a limit and is refused one step past it, with the error naming the limit, and where
each snippet runs (in this process when provably cheap, else in an evaluator process).

All in-process and quick: the evaluator's own tests are in test_sandbox_isolation.py and
test_evaluator_protocol.py."""

from __future__ import annotations

import ast
import copy
import sys
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from certflow.engine import evaluator
from certflow.engine.sandbox import (
    MAX_SOURCE_LENGTH,
    SandboxEnvironment,
    SandboxScriptEngine,
    ScriptLimitExceeded,
    ScriptRejected,
    run_here,
    runs_in_process,
    validate,
)
from certflow.engine.sandbox_bounds import (
    MAX_BOUNDED_NODES,
    MAX_DATA_SIZE,
    MAX_DEPTH,
    DataLimitExceeded,
    NotData,
    check_data,
)

pytestmark = pytest.mark.usefixtures("fresh_script_caches")  # rules computed, not recalled
FIXED_NOW = datetime(2024, 1, 31, 23, 30, tzinfo=timezone.utc)


def here(**kwargs: Any) -> SandboxEnvironment:
    return SandboxEnvironment(now=lambda: FIXED_NOW, isolated=False, **kwargs)


def rejected(source: str, mode: str = "exec") -> ScriptRejected:
    with pytest.raises(ScriptRejected) as info:
        validate(source, mode)
    return info.value


# --- what is refused, and the message the process owner reads ------------------------------


@pytest.mark.parametrize(("source", "message"), [
    ("x = 1\ny = a.__class__", "attribute '__class__' is not allowed (names starting with '_' are reserved) (line 2)"),
    ("_x = 1", "name '_x' is not allowed (names starting with '_' are reserved) (line 1)"),
    ("y = dict(_k=1)", "keyword argument '_k' is not allowed (names starting with '_' are reserved) (line 1)"),
    ("y = '{}'.format(1)", "str.format() is not allowed; use an f-string (line 1)"),
    ("y = '{a}'.format_map(d)", "str.format_map() is not allowed; use an f-string (line 1)"),
    ("y = d.fromkeys([1])", "attribute 'fromkeys' is not allowed (line 1)"),
    ("d.year = 2024", "assigning or deleting attribute 'year' is not allowed (line 1)"),
    ("del d.year", "assigning or deleting attribute 'year' is not allowed (line 1)"),
    ("y = open('f')", "calling open() is not allowed (line 1)"),
    ("y = _x()", "name '_x' is not allowed (names starting with '_' are reserved) (line 1)"),
    ("y = d['f']()", "only whitelisted functions and methods can be called (line 1)"),
    ("y = f'{x:{w}}'", "f-string format specs must be literal (no nested {...}) (line 1)"),
    ("y = f'{x:>1000}'", "f-string format width/precision must be below 1000 (line 1)"),
    ("y = f'{x:.1000f}'", "f-string format width/precision must be below 1000 (line 1)"),
    ("while x:\n    pass", "a while loop (use 'for ... in range(...)') is not allowed (line 1)"),
    ("x = 1\n\ny = a @ b", "the @ operator is not allowed (line 3)"),
    ("y = [x async for x in z]", "async comprehensions are not allowed (line 1)"),
    ("l[0:2] = [1]", "assigning to a slice is not allowed (line 1)"),
    ("l[0:2] += [1]", "assigning to a slice is not allowed (line 1)"),
])
def test_a_refusal_names_what_and_where(source: str, message: str) -> None:
    error = rejected(source)
    assert str(error) == message
    assert error.filename == "<string>"  # where SpiffWorkflow looks for the failing line


def test_a_refusal_on_a_later_line_of_a_statement_names_that_line() -> None:
    assert rejected("y = (1 +\n     a.__class__)").lineno == 2
    assert rejected("y = [1,\n     2,\n     open('f')]").lineno == 3


def test_a_refusal_without_a_line_reads_as_its_message() -> None:
    assert str(ScriptRejected("too long")) == "too long"


@pytest.mark.parametrize("source", [
    "a, l[0:0] = 1, l",  # unpacking into a slice
    "for l[0:0] in [l, l]:\n    pass",  # a loop target
    "x = [0 for l[0:0] in [l]]",  # a comprehension target
])
def test_a_slice_is_never_assigned_to(source: str) -> None:
    # Each would double a list in place, past the size guards: refused before anything runs.
    assert str(rejected(source)).startswith("assigning to a slice is not allowed")


def test_reading_and_deleting_slices_stay_allowed() -> None:
    data = {"l": [1, 2, 3, 4]}
    here().execute("head = l[0:2]\ndel l[0:1]", data)
    assert data == {"l": [2, 3, 4], "head": [1, 2]}


def test_format_widths_below_1000_are_fine() -> None:
    data = {"x": 1}
    here().execute("y = f'{x:>999}'\nz = f'{x!r:>5}'", data)
    assert len(data["y"]) == 999 and data["z"] == "    1"


def test_the_calls_diagram_code_needs_are_allowed() -> None:
    for source in ("n = len(x)", "y = x.get('a')", "y = sorted(x, key=str.lower)", "d = today()"):
        validate(source)
    with pytest.raises(ValueError, match=r"mode must be one of \('eval', 'exec'\), not 'single'"):
        validate("x", "single")


def test_source_length_limit_is_exactly_50000_characters() -> None:
    at_limit = "x = 1" + " " * (MAX_SOURCE_LENGTH - 5)
    assert len(at_limit) == MAX_SOURCE_LENGTH == 50_000
    validate(at_limit)
    error = rejected(at_limit + " ")
    assert str(error) == "script is longer than 50000 characters (line 1)"


@pytest.mark.parametrize("depth", [1000, 3000])
def test_deep_nesting_is_refused_with_a_clear_message(depth: int) -> None:
    # 1000: our whitelist walk gives up; 3000: already the parser does.
    assert str(rejected("x = " + "-" * depth + "1")) == "script is nested too deeply (line 1)"


def test_expressions_may_have_surrounding_whitespace_scripts_may_not() -> None:
    validate("  \n a == 1 \n", "eval")
    with pytest.raises(SyntaxError):
        validate("  a = 1", "exec")


# --- the time limit ------------------------------------------------------------------------


LOOP = "n = 0\nfor i in range(100000):\n    for j in range(100000):\n        n += 1\n"


@pytest.mark.timeout(10)
def test_the_time_limit_names_its_seconds() -> None:
    with pytest.raises(ScriptLimitExceeded, match=r"^script ran longer than 0\.2s$"):
        here(time_limit=0.2).execute(LOOP, {})
    engine = SandboxScriptEngine(now=lambda: FIXED_NOW, time_limit=0.1, isolated=False)
    with pytest.raises(ScriptLimitExceeded, match=r"^script ran longer than 0\.1s$"):
        engine.environment.execute(LOOP, {})


@pytest.mark.timeout(10)
def test_an_expression_in_process_has_the_time_limit_too() -> None:
    with pytest.raises(ScriptLimitExceeded, match=r"longer than 0\.2s"):
        here(time_limit=0.2).evaluate("sum(1 for i in range(100000) for j in range(100000))", {})


def test_a_busy_but_short_script_finishes_within_the_limit() -> None:
    data: dict[str, Any] = {}
    here(time_limit=2.0).execute("n = 0\nfor i in range(20000):\n    n += i", data)
    assert data["n"] == sum(range(20000))


def test_the_tracer_is_removed_after_a_script_and_an_expression() -> None:
    before = sys.gettrace()
    env = here()
    env.execute("x = 1", {})
    env.evaluate("x + 1", {"x": 1})
    with pytest.raises(ZeroDivisionError):
        env.execute("x = 1 / 0", {})
    assert sys.gettrace() is before


# --- what a script leaves behind and what an expression returns ---------------------------


def test_a_script_leaves_only_data_and_drops_what_it_deleted() -> None:
    data: dict[str, Any] = {"keep": 1, "gone": 2, "__builtins__": 3}
    assert here().execute("del gone\nf = len\nnew = keep + limit", data, {"limit": 10}) is True
    assert data == {"keep": 1, "new": 11}


def test_the_clock_the_environment_was_given_is_the_scripts_clock() -> None:
    assert here().evaluate("today()", {}) == "2024-01-31"
    engine = SandboxScriptEngine(now=lambda: FIXED_NOW, isolated=False)
    assert engine.environment.evaluate("now()", {}) == "2024-01-31T23:30:00+00:00"


def test_without_a_clock_scripts_read_utc_wall_time() -> None:
    before = datetime.now(timezone.utc)
    stamp = datetime.fromisoformat(SandboxEnvironment(isolated=False).evaluate("now()", {}))
    assert stamp.utcoffset() == timedelta(0)
    assert before <= stamp <= datetime.now(timezone.utc)
    assert SandboxEnvironment().evaluate("today()", {}) == datetime.now(timezone.utc).date().isoformat()


def test_task_data_overrides_nothing_predefined() -> None:
    with pytest.raises(ValueError, match=r"^You have task data that overwrites a predefined function\(s\)\. Please change the "
                                         r"following variable or field name\(s\) to something else: \{'limit'\}$"):
        here().execute("y = 1", {"limit": 1}, {"limit": 10})
    assert here().evaluate("limit", {"limit": 1}, {"limit": 10}) == 1  # an expression reads its data first


def test_the_engine_validates_whole_scripts() -> None:
    engine = SandboxScriptEngine(now=lambda: FIXED_NOW)
    engine.validate("y = 1\nz = y + 1")
    with pytest.raises(ScriptRejected, match="calling open"):
        engine.validate("y = open('x')")


def test_run_here_is_what_an_evaluator_runs() -> None:
    assert run_here("eval", "x * 2", {"x": 21}, {}, FIXED_NOW, 0.5) == 42
    assert run_here("eval", "today()", {}, {}, FIXED_NOW, 0.5) == "2024-01-31"
    left = run_here("exec", "del gone\ny = x + limit\nf = len", {"x": 1, "gone": 0}, {"limit": 2}, FIXED_NOW, 0.5)
    assert left == {"x": 1, "y": 3}
    with pytest.raises(DataLimitExceeded, match=r"^the expression's result is larger than"):
        run_here("eval", "[[0] * 1000] * 1000", {}, {}, FIXED_NOW, 0.5)
    with pytest.raises(DataLimitExceeded, match=r"^the task data the script leaves is larger than"):
        run_here("exec", "x = [[0] * 1000] * 1000", {}, {}, FIXED_NOW, 0.5)
    with pytest.raises(ScriptLimitExceeded, match=r"longer than 0\.1s"):
        run_here("exec", LOOP, {}, {}, FIXED_NOW, 0.1)


# --- where a snippet runs -----------------------------------------------------------------


class FakePool:
    """Stands in for the evaluator processes: records what would be sent, answers ``reply``."""

    def __init__(self, reply: tuple[Any, ...]) -> None:
        self.reply = reply
        self.calls: list[tuple[tuple[Any, ...], float]] = []

    def call(self, request: tuple[Any, ...], wall: float) -> tuple[Any, ...]:
        self.calls.append((copy.deepcopy(request), wall))  # as pickled: what was sent then
        return self.reply


@pytest.fixture
def fake_pool(monkeypatch: pytest.MonkeyPatch) -> FakePool:
    fake = FakePool(("ok", 42))
    monkeypatch.setattr(evaluator, "pool", lambda: fake)
    return fake


def test_a_cheap_condition_never_needs_an_evaluator(fake_pool: FakePool) -> None:
    env = SandboxEnvironment(now=lambda: FIXED_NOW)
    assert env.evaluate("approved == True and fee > 0", {"approved": True, "fee": 5}) is True
    assert fake_pool.calls == []


def test_a_costly_expression_goes_to_an_evaluator_with_its_limits(fake_pool: FakePool) -> None:
    env = SandboxEnvironment(now=lambda: FIXED_NOW, time_limit=0.3)
    assert env.evaluate("sorted(x)", {"x": [2, 1]}, {"limit": 1}) == 42
    assert fake_pool.calls == [(("eval", "sorted(x)", {"x": [2, 1]}, {"limit": 1}, FIXED_NOW, 0.3), 2.3)]


def test_a_script_goes_to_an_evaluator_and_its_data_replaces_the_task_data(fake_pool: FakePool) -> None:
    fake_pool.reply = ("ok", {"y": 2})
    env = SandboxEnvironment(now=lambda: FIXED_NOW)
    data: dict[str, Any] = {"x": 1}
    assert env.execute("y = x + 1\ndel x", data) is True
    assert data == {"y": 2}
    assert fake_pool.calls == [(("exec", "y = x + 1\ndel x", {"x": 1}, {}, FIXED_NOW, 0.5), 2.5)]


def test_an_evaluators_error_reaches_the_caller_and_leaves_the_data(fake_pool: FakePool) -> None:
    fake_pool.reply = ("error", "limit", "MemoryError", "script exceeded its memory limit", 0)
    data = {"x": 1}
    with pytest.raises(ScriptLimitExceeded, match="memory limit"):
        SandboxEnvironment(now=lambda: FIXED_NOW).execute("y = sorted(x)", data)  # not run in-process
    assert data == {"x": 1}


def test_a_refused_script_never_reaches_an_evaluator(fake_pool: FakePool) -> None:
    with pytest.raises(ScriptRejected):
        SandboxEnvironment().execute("import os", {})
    with pytest.raises(ScriptRejected):
        SandboxEnvironment().evaluate("open('x')", {})
    assert fake_pool.calls == []


# --- which expressions count as cheap -------------------------------------------------------


def _nodes(source: str) -> int:
    return len(list(ast.walk(ast.parse(source, mode="eval"))))


def test_an_expression_of_40_nodes_runs_here_and_of_41_not() -> None:
    names = " and ".join(f"a{i}" for i in range(18))
    at_limit, over = names + " and 1", names + " and a18"
    assert (_nodes(at_limit), _nodes(over)) == (MAX_BOUNDED_NODES, MAX_BOUNDED_NODES + 1) == (40, 41)
    assert runs_in_process(at_limit)
    assert not runs_in_process(over)


@pytest.mark.parametrize("source", [
    "len(x) > 0", "x.get('a') == 1", "x['a'] in ('b', 'c')", "not x and -y < +z", "a / b // c - d",
    "str(x).lower().startswith('a')", "x if y else z", "[a, b] == [1, {'k': c}]", "x is None",
    "deadline('10 werkdagen')", "max(a, b)", "x.year",
])
def test_cheap_expressions(source: str) -> None:
    assert runs_in_process(source)


@pytest.mark.parametrize("source", [
    "sorted(x)", "x.count(1)", "max(a, default=0)", "x * 2", "x % 2", "x ** 2", "x << 2",
    "f'{x}'", "[i for i in x]", "{a, b}", "x[1:2]", "(a, *b)", "x | y", "range(5)",
    "x.sort == sorted(y)", "x.get(sorted(y))", "len(x, key=y)",
])
def test_costly_expressions(source: str) -> None:
    assert not runs_in_process(source)


# --- the data bounds, counted as JSON would meet them --------------------------------------


@pytest.mark.parametrize(("value", "size"), [
    ("abc", 5),  # the text and its quotes
    (b"ab", 4),
    (1.5, 8), (None, 8), (Decimal("1.5"), 8), (date(2024, 1, 1), 8), (timedelta(days=1), 8),
    (range(3), 8),
    (True, 1), (7, 2), (10**6, 7),  # digits: about a third of the bits
    ([1, 2], 6),  # brackets and separators, then the items
    ((1, 2), 6), ({"ab"}, 7), (frozenset({"ab"}), 7),
    ({"a": 1}, 7),
])
def test_each_value_costs_what_it_would_as_json(value: Any, size: int) -> None:
    check_data(value, "v", limit=size)
    with pytest.raises(DataLimitExceeded, match=f"^v is larger than the limit of {size - 1:,} characters as JSON$"):
        check_data(value, "v", limit=size - 1)


def test_task_data_of_exactly_two_million_characters_is_fine() -> None:
    assert MAX_DATA_SIZE == 2_000_000
    check_data("x" * (MAX_DATA_SIZE - 2), "the task data")
    with pytest.raises(DataLimitExceeded, match="^the task data is larger than the limit of 2,000,000 characters as JSON$"):
        check_data("x" * (MAX_DATA_SIZE - 1), "the task data")


def _nested(levels: int, wrap: Any) -> Any:
    value: Any = wrap(None)
    for _ in range(levels - 1):
        value = wrap(value)
    return value


@pytest.mark.parametrize("wrap", [lambda v: [v], lambda v: {"k": v}, lambda v: (v,)])
def test_fifty_levels_of_nesting_are_fine_fifty_one_are_not(wrap: Any) -> None:
    assert MAX_DEPTH == 50
    check_data(_nested(50, wrap), "the data")
    with pytest.raises(DataLimitExceeded, match="^the data is nested deeper than 50 levels$"):
        check_data(_nested(51, wrap), "the data")


def test_nesting_inside_a_key_counts_too() -> None:
    check_data({_nested(49, lambda v: (v,)): 1}, "the data")
    with pytest.raises(DataLimitExceeded, match="^the data is nested deeper than 50 levels$"):
        check_data({_nested(50, lambda v: (v,)): 1}, "the data")


def test_keys_and_values_are_both_counted() -> None:
    check_data({"abcd": "efgh"}, "d", limit=15)
    for data in ({"abcdefgh": ""}, {"": "abcdefgh"}):
        with pytest.raises(DataLimitExceeded, match="^d is larger than the limit of 14 characters as JSON$"):
            check_data(data, "d", limit=14)


@pytest.mark.parametrize(("value", "kind"), [({"f": len}, "builtin_function_or_method"), (iter([]), "list_iterator")])
def test_what_is_not_data_is_named(value: Any, kind: str) -> None:
    with pytest.raises(NotData, match=f"^the result holds a {kind} object; task data must be plain values"):
        check_data(value, "the result")


@pytest.mark.timeout(10)
def test_a_loop_that_calls_nothing_is_stopped_too() -> None:
    started = time.monotonic()
    with pytest.raises(ScriptLimitExceeded, match=r"longer than 0\.2s"):
        # no call inside the loops (range() is one): only the script's own lines count
        here(time_limit=0.2).execute("x = [0] * 100000\nfor i in x:\n    for j in x:\n        pass", {})
    # stopped by the time limit itself, not by the test's timeout (whose signal handler the
    # tracer would see as a call)
    assert time.monotonic() - started < 5


def test_a_debuggers_tracer_is_back_after_a_script() -> None:
    def tracer(frame: Any, event: str, arg: Any) -> None:
        return None

    before = sys.gettrace()
    sys.settrace(tracer)
    try:
        here().execute("x = 1", {})
        inside = sys.gettrace()
    finally:
        sys.settrace(before)
    assert inside is tracer


def test_the_engine_runs_costly_snippets_in_an_evaluator_by_default(fake_pool: FakePool) -> None:
    engine = SandboxScriptEngine(now=lambda: FIXED_NOW, time_limit=0.3)
    assert engine.environment.evaluate("sorted(x)", {"x": [1]}) == 42
    assert fake_pool.calls == [(("eval", "sorted(x)", {"x": [1]}, {}, FIXED_NOW, 0.3), 2.3)]


def test_service_tasks_are_not_the_script_engines_business() -> None:
    with pytest.raises(NotImplementedError, match="^service tasks are dispatched by certflow, not the script engine$"):
        here().call_service({}, operation_name="mail")
    engine = SandboxScriptEngine(now=lambda: FIXED_NOW)
    with pytest.raises(NotImplementedError, match="^service tasks are dispatched by certflow, not the script engine$"):
        engine.call_service(object(), operation_name="mail")


def test_a_cheap_condition_reads_the_external_context_too(fake_pool: FakePool) -> None:
    env = SandboxEnvironment(now=lambda: FIXED_NOW)
    assert env.evaluate("limit > x", {"x": 1}, {"limit": 10}) is True
    assert fake_pool.calls == []


def test_an_engine_asked_to_run_in_process_never_needs_an_evaluator(fake_pool: FakePool) -> None:
    engine = SandboxScriptEngine(now=lambda: FIXED_NOW, isolated=False)
    assert engine.environment.evaluate("sorted(x)", {"x": [2, 1]}) == [1, 2]
    assert fake_pool.calls == []
