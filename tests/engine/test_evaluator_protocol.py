"""The isolated evaluator: the errors a process owner sees for each way a script can end in it,
the limits it puts on itself, and the pool handing evaluators out. Most of it runs here, in
this process (the child's request handling, the parent's reading of replies, the pool with
stand-in evaluators); a few tests start real evaluator processes."""

from __future__ import annotations

import io
import os
import pickle
import resource
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from certflow.engine import evaluator, sandbox
from certflow.engine.sandbox_builtins import ScriptLimitExceeded

pytestmark = [pytest.mark.usefixtures("fresh_script_caches"),  # rules computed, not recalled
              pytest.mark.timeout(20)]  # a pool that waits for ever fails in seconds, not minutes
FIXED_NOW = datetime(2024, 1, 31, 23, 30, tzinfo=timezone.utc)


# --- replies become the errors a process owner sees ----------------------------------------


def test_a_value_comes_back_as_it_was() -> None:
    assert evaluator.raise_reply(("ok", {"y": 2})) == {"y": 2}


def test_a_limit_comes_back_as_a_limit_with_its_message() -> None:
    with pytest.raises(ScriptLimitExceeded) as info:
        evaluator.raise_reply(("error", "limit", "MemoryError", "script exceeded its memory limit", 0))
    assert str(info.value) == "script exceeded its memory limit"


def test_data_that_is_not_data_comes_back_as_a_type_error() -> None:
    with pytest.raises(TypeError) as info:
        evaluator.raise_reply(("error", "data", "TypeError", "holds a zip object", 0))
    assert str(info.value) == "holds a zip object"


@pytest.mark.parametrize("name", ["NameError", "TypeError", "ValueError", "KeyError", "IndexError",
                                  "ZeroDivisionError", "AttributeError", "ArithmeticError",
                                  "OverflowError", "LookupError", "RecursionError", "UnboundLocalError"])
def test_a_script_error_keeps_its_type(name: str) -> None:
    with pytest.raises(Exception) as info:  # noqa: PT011 - the type is what is checked
        evaluator.raise_reply(("error", "raised", name, "boom", 0))
    assert type(info.value).__name__ == name
    assert info.value.args == ("boom",)


def test_other_errors_become_runtime_errors_naming_the_original() -> None:
    with pytest.raises(RuntimeError) as info:
        evaluator.raise_reply(("error", "raised", "StopIteration", "boom", 0))
    assert type(info.value) is RuntimeError and str(info.value) == "StopIteration: boom"


@pytest.mark.parametrize("line", [1, 3])
def test_a_script_error_is_raised_at_the_scripts_line(line: int) -> None:
    # SpiffWorkflow finds the failing line in the last "<string>" frame of the traceback.
    with pytest.raises(ZeroDivisionError) as info:
        evaluator.raise_reply(("error", "raised", "ZeroDivisionError", "division by zero", line))
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (last.filename, last.lineno) == (sandbox.SCRIPT_FILENAME, line)


def test_an_error_without_a_line_is_not_placed_in_the_script() -> None:
    with pytest.raises(KeyError) as info:
        evaluator.raise_reply(("error", "raised", "KeyError", "'x'", 0))
    assert all(f.filename != sandbox.SCRIPT_FILENAME for f in traceback.extract_tb(info.value.__traceback__))


# --- the parent reads only plain data --------------------------------------------------------


def _unpickle(value: Any) -> Any:
    return evaluator._DataUnpickler(io.BytesIO(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))).load()


def test_the_parent_takes_plain_data_back() -> None:
    data = {"d": date(2024, 1, 31), "t": FIXED_NOW, "z": datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Amsterdam")),
            "n": Decimal("1.50"), "s": {1}, "f": frozenset({2}), "r": range(3), "c": 1j, "x": slice(1, 2)}
    assert _unpickle(data) == data


def test_a_datetime_in_dutch_time_comes_back() -> None:
    stamp = datetime(2024, 7, 1, 9, tzinfo=ZoneInfo("Europe/Amsterdam"))
    got = evaluator._DataUnpickler(io.BytesIO(pickle.dumps(stamp, protocol=pickle.HIGHEST_PROTOCOL))).load()
    assert got == stamp and got.tzinfo is ZoneInfo("Europe/Amsterdam")


class _Sneaky:
    def __reduce__(self) -> Any:
        return getattr, (date, "today")  # date is data; its methods are not


class _SneakyName:
    def __reduce__(self) -> Any:
        return getattr, (date, "_unpickle")  # the right name on the wrong class


@pytest.mark.parametrize(("thing", "name"), [(os.system, "posix.system"), (ScriptLimitExceeded, "certflow"),
                                             (_Sneaky(), "getattr of 'today'"), (_SneakyName(), "getattr of '_unpickle'")])
def test_a_compromised_evaluator_cannot_make_the_parent_run_code(thing: Any, name: str) -> None:
    with pytest.raises(pickle.UnpicklingError, match=f"evaluator sent a {name}.*, which is not data"):
        _unpickle(thing)


# --- framing ------------------------------------------------------------------------------


@pytest.fixture
def pipe() -> Iterator[tuple[int, Any]]:
    read, write = os.pipe()
    with os.fdopen(write, "wb") as out:
        yield read, out
    os.close(read)


def test_a_reply_is_read_whole_even_in_pieces(pipe: tuple[int, Any]) -> None:
    read, out = pipe
    evaluator._send(out, ("ok", "x" * 100))
    (size,) = evaluator._HEADER.unpack(evaluator._read_exact(read, evaluator._HEADER.size, None))
    assert pickle.loads(evaluator._read_exact(read, size, None)) == ("ok", "x" * 100)
    out.write(b"ab")
    out.flush()

    def rest() -> None:
        time.sleep(0.05)
        out.write(b"cd")
        out.flush()

    threading.Thread(target=rest).start()
    assert evaluator._read_exact(read, 4, time.monotonic() + 5) == b"abcd"


def test_a_reply_that_does_not_come_in_time_is_a_timeout(pipe: tuple[int, Any]) -> None:
    read, _ = pipe
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        evaluator._read_exact(read, 4, time.monotonic() + 0.1)
    assert 0.05 < time.monotonic() - started < 2
    with pytest.raises(TimeoutError):
        evaluator._read_exact(read, 4, time.monotonic() - 1)


def test_a_closed_pipe_is_the_end(pipe: tuple[int, Any]) -> None:
    read, out = pipe
    out.write(b"ab")
    out.close()
    with pytest.raises(EOFError):
        evaluator._read_exact(read, 4, time.monotonic() + 5)


# --- the child: each request answered, limits on itself ---------------------------------------


@pytest.fixture
def cpu_limit_restored() -> Iterator[None]:
    before = resource.getrlimit(resource.RLIMIT_CPU)
    yield
    resource.setrlimit(resource.RLIMIT_CPU, before)


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def handle(mode: str, source: str, context: dict[str, Any] | None = None, time_limit: float = 5.0) -> tuple[Any, ...]:
    # _handle limits this process's CPU time to time_limit + 1 s from now (the fixture restores it)
    return evaluator._handle(mode, source, context or {}, {}, FIXED_NOW, time_limit)


@pytest.mark.usefixtures("cpu_limit_restored")
def test_each_call_gets_its_time_limit_plus_a_second_of_cpu() -> None:
    _, hard_before = resource.getrlimit(resource.RLIMIT_CPU)
    evaluator._limit_cpu(2.0)
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    assert 3.0 <= soft - _cpu_used() < 4.0
    assert hard == hard_before  # only the soft limit moves: the next call may raise it again
    handle("eval", "1 + 1", time_limit=0.5)
    soft, _ = resource.getrlimit(resource.RLIMIT_CPU)
    assert 1.5 <= soft - _cpu_used() < 2.5


class _Usage:
    ru_utime, ru_stime = 10_000.25, 500.5  # user and system time both count


@pytest.mark.parametrize(("limits", "expected"), [
    ((resource.RLIM_INFINITY, resource.RLIM_INFINITY), (10_504, resource.RLIM_INFINITY)),  # 10,500.75 + 2 + 1, rounded up
    ((resource.RLIM_INFINITY, 10_000), (10_000, 10_000)),  # never above a hard limit
    ((10_400, 20_000), (10_504, 20_000)),  # the last call's soft limit does not count
])
def test_the_cpu_limit_is_the_time_used_plus_the_time_limit_plus_a_second(
        monkeypatch: pytest.MonkeyPatch, limits: tuple[int, int], expected: tuple[int, int]) -> None:
    calls: list[tuple[int, tuple[int, int]]] = []
    monkeypatch.setattr(resource, "getrusage", lambda who: _Usage())
    monkeypatch.setattr(resource, "getrlimit", lambda which: limits)
    monkeypatch.setattr(resource, "setrlimit", lambda which, value: calls.append((which, value)))
    evaluator._limit_cpu(2.0)
    assert calls == [(resource.RLIMIT_CPU, expected)]


def test_the_cpu_limit_stays_under_a_hard_limit() -> None:
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the forked child
        used = int(_cpu_used())
        resource.setrlimit(resource.RLIMIT_CPU, (used + 5, used + 5))
        evaluator._limit_cpu(60.0)
        os.write(write, repr((resource.getrlimit(resource.RLIMIT_CPU), used)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as got:
        (soft, hard), used = eval(got.read())  # noqa: S307 - our own child's repr
    assert soft == hard == used + 5


@pytest.mark.usefixtures("cpu_limit_restored")
def test_the_child_answers_each_outcome() -> None:
    assert handle("eval", "x * 2", {"x": 21}) == ("ok", 42)
    assert handle("exec", "y = x + 1", {"x": 1}) == ("ok", {"x": 1, "y": 2})
    assert handle("exec", "a = 1\n\nb = a / 0") == ("error", "raised", "ZeroDivisionError", "division by zero", 3)
    assert handle("eval", "d['k']", {"d": {}}) == ("error", "raised", "KeyError", "'k'", 1)
    # inside a comprehension spread over lines: the line of the failing part, not of the statement
    assert handle("exec", "z = [\n    1 / x\n    for x in [0]\n]")[4] == 2
    assert handle("eval", "today()") == ("ok", "2024-01-31")  # the parent's clock
    assert handle("exec", "p = zip([1], [2])") == (
        "error", "data", "TypeError", "the task data the script leaves holds a zip object; task data must be "
        "plain values (text, numbers, lists, dicts, dates)", 0)
    # a script the parent did not check is refused here too, with no line in the script to point at
    assert handle("exec", "import os") == (
        "error", "raised", "ScriptRejected", "an import statement is not allowed (line 1)", 0)
    kind, name, message = handle("exec", "x = 'a' * 10 ** 9")[1:4]
    assert (kind, name, message) == ("limit", "ScriptLimitExceeded", "repetition would produce 1000000000 items; the limit is 100000")
    loop = "for i in range(100000):\n    for j in range(100000):\n        pass"
    assert handle("exec", loop, time_limit=0.1) == ("error", "limit", "ScriptLimitExceeded", "script ran longer than 0.1s", 0)
    assert handle("exec", "x = [[0] * 1000] * 1000")[:3] == ("error", "limit", "DataLimitExceeded")


@pytest.mark.usefixtures("cpu_limit_restored")
def test_running_out_of_memory_is_reported_as_the_memory_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_memory(*args: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr(sandbox, "run_here", out_of_memory)
    reply = handle("exec", "x = 1")
    assert reply == ("error", "limit", "MemoryError", "script exceeded its memory limit", 0)
    with pytest.raises(ScriptLimitExceeded, match="^script exceeded its memory limit$"):
        evaluator.raise_reply(reply)


def _frames(*values: Any) -> bytes:
    out = io.BytesIO()
    for value in values:
        evaluator._send(out, value)
    return out.getvalue()


def _replies(data: bytes) -> list[Any]:
    stream, replies = io.BytesIO(data), []
    while header := stream.read(evaluator._HEADER.size):
        (size,) = evaluator._HEADER.unpack(header)
        replies.append(pickle.loads(stream.read(size)))
    return replies


class _Stream:
    def __init__(self, data: bytes = b"") -> None:
        self.buffer = io.BytesIO(data)


@pytest.mark.usefixtures("cpu_limit_restored")
def test_the_child_says_ready_answers_in_order_and_stops_after_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    requests = _frames(("eval", "1 + 1", {}, {}, FIXED_NOW, 0.5), ("exec", "x = 'a' * 10 ** 9", {}, {}, FIXED_NOW, 0.5),
                       ("eval", "2 + 2", {}, {}, FIXED_NOW, 0.5))
    stdout = _Stream()
    monkeypatch.setattr(sys, "stdin", _Stream(requests))
    monkeypatch.setattr(sys, "stdout", stdout)
    evaluator._serve(evaluator._handle)
    replies = _replies(stdout.buffer.getvalue())
    assert [r[:2] for r in replies] == [("ready",), ("ok", 2), ("error", "limit")]  # never 2 + 2


@pytest.mark.usefixtures("cpu_limit_restored")
def test_the_child_goes_on_after_an_ordinary_error(monkeypatch: pytest.MonkeyPatch) -> None:
    requests = _frames(("eval", "1 / 0", {}, {}, FIXED_NOW, 5.0), ("eval", "2 + 2", {}, {}, FIXED_NOW, 5.0))
    stdout = _Stream()
    monkeypatch.setattr(sys, "stdin", _Stream(requests))
    monkeypatch.setattr(sys, "stdout", stdout)
    evaluator._serve(evaluator._handle)
    assert [r[:2] for r in _replies(stdout.buffer.getvalue())] == [("ready",), ("error", "raised"), ("ok", 4)]
    assert sys.stdout is sys.stderr  # a print in the child cannot corrupt the replies


@pytest.mark.usefixtures("cpu_limit_restored")
def test_the_child_stops_when_the_parent_goes_away(monkeypatch: pytest.MonkeyPatch) -> None:
    stdout = _Stream()
    monkeypatch.setattr(sys, "stdin", _Stream(_frames(("eval", "1", {}, {}, FIXED_NOW, 0.5))[:3]))
    monkeypatch.setattr(sys, "stdout", stdout)
    evaluator._serve(evaluator._handle)
    assert _replies(stdout.buffer.getvalue()) == [("ready",)]


def test_the_child_caps_its_memory_at_512_mb_above_its_size_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, tuple[int, int]]] = []
    monkeypatch.setattr(resource, "setrlimit", lambda which, limits: calls.append((which, limits)))
    with open("/proc/self/statm") as statm:
        size = int(statm.read().split()[0]) * resource.getpagesize()
    evaluator._set_limits()
    [(which, (soft, hard))] = calls
    assert which == resource.RLIMIT_AS and soft == hard
    assert 0 <= soft - size - 512 * 1024 * 1024 < 16 * 1024 * 1024


def test_the_child_warms_the_calendar_then_limits_itself_then_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[str] = []
    monkeypatch.setattr(evaluator, "_warm_calendar", lambda: steps.append("calendar"))
    monkeypatch.setattr(evaluator, "_set_limits", lambda: steps.append("limits"))
    monkeypatch.setattr(evaluator, "_serve", lambda handle: steps.append(f"serve {handle.__name__}"))
    evaluator.main()
    assert steps == ["calendar", "limits", "serve _handle"]


def test_the_child_computes_the_holiday_years_before_it_is_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    # Last year to five years ahead (certificates run 3 to 4 years): a script's first
    # working_day() no longer pays for them inside its time limit.
    from certflow import workdays
    from certflow.engine import sandbox_builtins

    fresh = workdays.Calendar()
    monkeypatch.setattr(sandbox_builtins, "_calendar", lambda: fresh)
    evaluator._warm_calendar()
    this_year = date.today().year
    assert sorted(fresh._years) == list(range(this_year - 1, this_year + 6))


def test_warming_the_calendar_survives_a_broken_calendar(monkeypatch: pytest.MonkeyPatch) -> None:
    from certflow.engine import sandbox_builtins

    evaluator._warm_calendar()  # the real one: builds it

    def broken() -> Any:
        raise ValueError("closing_days.json: bad date")

    monkeypatch.setattr(sandbox_builtins, "_calendar", broken)
    evaluator._warm_calendar()


def test_an_evaluator_finds_certflow_first(monkeypatch: pytest.MonkeyPatch) -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(evaluator.__file__)))
    root = os.path.dirname(root)
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    assert evaluator._pythonpath() == f"{root}{os.pathsep}/elsewhere"
    monkeypatch.delenv("PYTHONPATH")
    assert evaluator._pythonpath() == root


# --- the pool, with stand-in evaluators ------------------------------------------------------


class FakeEvaluator:
    made: list[FakeEvaluator] = []

    def __init__(self) -> None:
        self.alive = True
        self.killed = False
        self.replies: list[Any] = []
        FakeEvaluator.made.append(self)

    def call(self, request: tuple[Any, ...], wall: float) -> Any:
        reply = self.replies.pop(0) if self.replies else ("ok", request)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def kill(self) -> None:
        self.killed = True
        self.alive = False


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> list[FakeEvaluator]:
    FakeEvaluator.made = []
    monkeypatch.setattr(evaluator, "Evaluator", FakeEvaluator)
    return FakeEvaluator.made


def test_one_evaluator_serves_call_after_call(fakes: list[FakeEvaluator]) -> None:
    pool = evaluator.EvaluatorPool(size=2)
    assert pool.call(("a",), 1.0) == ("ok", ("a",))
    assert pool.call(("b",), 1.0) == ("ok", ("b",))
    assert len(fakes) == 1 and pool.started == 1 and pool.idle == [fakes[0]]


def test_an_evaluator_that_hit_a_limit_or_failed_is_replaced(fakes: list[FakeEvaluator]) -> None:
    pool = evaluator.EvaluatorPool(size=1)
    pool.call(("a",), 1.0)
    fakes[0].replies = [("error", "limit", "MemoryError", "m", 0)]
    assert pool.call(("b",), 1.0)[1] == "limit"
    assert fakes[0].killed and pool.idle == [] and pool.started == 0
    pool.call(("c",), 1.0)
    fakes[1].replies = [ScriptLimitExceeded("wall")]
    with pytest.raises(ScriptLimitExceeded):
        pool.call(("d",), 1.0)
    assert pool.started == 0 and pool.idle == []
    assert pool.call(("e",), 1.0) == ("ok", ("e",)) and len(fakes) == 3


def test_an_ordinary_script_error_keeps_its_evaluator(fakes: list[FakeEvaluator]) -> None:
    pool = evaluator.EvaluatorPool(size=1)
    pool.call(("a",), 1.0)
    fakes[0].replies = [("error", "raised", "KeyError", "'k'", 1), ("error", "data", "TypeError", "t", 0)]
    pool.call(("b",), 1.0)
    pool.call(("c",), 1.0)
    assert len(fakes) == 1 and not fakes[0].killed and pool.idle == [fakes[0]]


def test_an_evaluator_that_died_while_idle_is_not_handed_out(fakes: list[FakeEvaluator]) -> None:
    pool = evaluator.EvaluatorPool(size=1)
    pool.call(("a",), 1.0)
    fakes[0].alive = False
    assert pool.call(("b",), 1.0) == ("ok", ("b",))
    assert fakes[0].killed and len(fakes) == 2 and pool.started == 1


def test_an_evaluator_that_does_not_start_frees_its_place(monkeypatch: pytest.MonkeyPatch) -> None:
    def cannot_start() -> Any:
        raise ScriptLimitExceeded("the script evaluator process did not start")

    monkeypatch.setattr(evaluator, "Evaluator", cannot_start)
    pool = evaluator.EvaluatorPool(size=1)
    for _ in range(2):
        with pytest.raises(ScriptLimitExceeded, match="did not start"):
            pool.call(("a",), 1.0)
    assert pool.started == 0


@pytest.mark.timeout(10)
def test_callers_beyond_the_pool_size_wait_for_a_free_evaluator(fakes: list[FakeEvaluator]) -> None:
    pool = evaluator.EvaluatorPool(size=2)
    first = pool._take()
    second = pool._take()
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(pool._take()))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and len(fakes) == 2  # the third caller waits: no third process
    pool._give_back(second)
    waiter.join(5)
    assert got == [second] and first is not second


def test_closing_the_pool_ends_its_idle_evaluators(fakes: list[FakeEvaluator]) -> None:
    pool = evaluator.EvaluatorPool(size=3)
    busy = [pool._take(), pool._take()]
    idle = pool._take()
    pool._give_back(idle)
    pool.close()
    assert idle.killed and not any(b.killed for b in busy) and pool.idle == [] and pool.started == 2


def test_the_default_pool_has_four_evaluators_and_one_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluator, "_POOL", None)
    first = evaluator.pool()
    assert first is evaluator.pool() and first.size == 4 and first.pid == os.getpid()
    first.pid = -1  # as if inherited across a fork
    assert evaluator.pool() is not first


# --- real evaluator processes ------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_real_evaluator_runs_scripts_and_stops_on_the_wall_clock() -> None:
    child = evaluator.Evaluator()
    try:
        assert child.call(("eval", "x + 1", {"x": 1}, {}, FIXED_NOW, 0.5), 30) == ("ok", 2)
        loop = "for i in range(100000):\n    for j in range(100000):\n        pass"
        with pytest.raises(ScriptLimitExceeded, match=r"^script ran longer than 0\.05s \(wall clock\) and was stopped$"):
            child.call(("exec", loop, {}, {}, FIXED_NOW, 5.0), 0.05)
        assert not child.alive
    finally:
        child.kill()


@pytest.mark.timeout(60)
def test_a_dead_evaluator_is_reported_as_a_cpu_or_memory_limit() -> None:
    child = evaluator.Evaluator()
    child.proc.kill()
    child.proc.wait()
    with pytest.raises(ScriptLimitExceeded, match="^script exceeded its CPU or memory limit and was stopped$"):
        child.call(("eval", "1", {}, {}, FIXED_NOW, 0.5), 30)
    assert child.proc.stdin is not None and child.proc.stdin.closed


def test_an_evaluator_runs_this_checkouts_certflow(monkeypatch: pytest.MonkeyPatch) -> None:
    # not whatever certflow another path or an installed package would give it
    started: list[tuple[list[str], dict[str, str]]] = []

    def popen(args: list[str], **kwargs: Any) -> Any:
        started.append((args, kwargs["env"]))
        raise OSError("not started in this test")

    monkeypatch.setattr(evaluator.subprocess, "Popen", popen)
    monkeypatch.setenv("CERTFLOW_SOMETHING", "kept")
    with pytest.raises(OSError):
        evaluator.Evaluator()
    [(args, env)] = started
    assert args == [sys.executable, "-m", "certflow.engine.evaluator"]
    assert env["PYTHONPATH"] == evaluator._pythonpath() and env["CERTFLOW_SOMETHING"] == "kept"


@pytest.mark.timeout(30)
def test_an_evaluator_that_hangs_at_start_is_given_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    hangs = tmp_path / "python"
    hangs.write_text("#!/bin/sh\nexec sleep 30\n")
    hangs.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(hangs))
    monkeypatch.setattr(evaluator, "SPAWN_TIMEOUT", 0.3)
    started = time.monotonic()
    with pytest.raises(ScriptLimitExceeded, match="^the script evaluator process did not start$"):
        evaluator.Evaluator()
    assert time.monotonic() - started < 10


@pytest.mark.timeout(60)
def test_an_evaluator_that_cannot_start_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/bin/true")
    with pytest.raises(ScriptLimitExceeded, match="^the script evaluator process did not start$"):
        evaluator.Evaluator()


@pytest.mark.timeout(60)
def test_a_script_over_the_memory_limit_is_stopped_and_one_under_it_runs() -> None:
    env = sandbox.SandboxEnvironment(now=lambda: FIXED_NOW, time_limit=20.0)
    data: dict[str, Any] = {}
    env.execute("x = len([[0] * 100000 for i in range(300)])", data)  # 240 MB
    assert data == {"x": 300}
    with pytest.raises(ScriptLimitExceeded, match="^script exceeded its memory limit$"):
        env.execute("x = len([[0] * 100000 for i in range(800)])", {})  # 640 MB
