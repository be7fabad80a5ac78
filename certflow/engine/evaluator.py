"""Isolated evaluator processes: where diagram scripts run under limits the OS enforces.

The sandbox's own limits (a tracer checking the clock between Python steps, guards refusing
big results) cannot stop one long C-level operation: comparing or printing a structure built
by repetition runs to its end, holding the GIL. So every snippet that is not provably cheap
(see ``sandbox_bounds.is_bounded``) runs in a separate evaluator process:

* each evaluator is ``python -m certflow.engine.evaluator``, started on first use and reused;
  the pool grows to ``POOL_SIZE`` per process (web threads, CLI, each Celery child) and callers
  wait for a free one;
* the child caps its own address space (``RLIMIT_AS``, ``MEMORY_LIMIT`` above what it needs
  after start) and, before every call, its CPU time (``RLIMIT_CPU``: the kernel kills it with
  SIGXCPU when a call uses more than ``time_limit + 1`` CPU seconds);
* the parent waits at most ``time_limit + WALL_GRACE`` seconds of wall time, then kills it;
* results and the task data a script leaves behind are checked in the child
  (``check_data``: size and depth) before they are sent, and the parent unpickles only
  plain data types (``_DataUnpickler``), so a compromised child cannot make the parent run code.

A child that hit a limit, crashed or was killed is discarded; the caller gets
``ScriptLimitExceeded`` with a message saying which limit, and the next call starts a fresh
child. Requests and replies are length-prefixed pickles over the child's stdin/stdout.
"""

from __future__ import annotations

import atexit
import io
import math
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

from certflow.engine.sandbox_bounds import NotData
from certflow.engine.sandbox_builtins import ScriptLimitExceeded

POOL_SIZE = 4
MEMORY_LIMIT = 512 * 1024 * 1024  # bytes of address space a child may add after start-up
WALL_GRACE = 2.0  # seconds beyond the script time limit before the parent kills the child
SPAWN_TIMEOUT = 60.0  # seconds an evaluator may take to start (a loaded machine is slow)
MAX_FRAME = 64 * 1024 * 1024
_HEADER = struct.Struct("!I")

# Exceptions a snippet may raise that are re-raised in the parent under their own type, so
# SpiffWorkflow reports e.g. a NameError as a NameError; anything else becomes RuntimeError.
_PASSED_ON: dict[str, type[Exception]] = {
    cls.__name__: cls for cls in (
        NameError, TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, AttributeError,
        ArithmeticError, OverflowError, LookupError, RecursionError, UnboundLocalError,
    )
}
_SAFE_GLOBALS = {
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "range"), ("builtins", "complex"),
    ("builtins", "slice"), ("datetime", "date"), ("datetime", "datetime"), ("datetime", "time"),
    ("datetime", "timedelta"), ("datetime", "timezone"), ("decimal", "Decimal"),
    ("zoneinfo", "ZoneInfo"), ("zoneinfo", "_unpickle"), ("zoneinfo._zoneinfo", "ZoneInfo"),
}


def _zoneinfo_unpickle(owner: Any, name: str) -> Any:
    """The one ``getattr`` a reply needs: pickle protocol 4+ writes a ``ZoneInfo`` (a
    datetime in Dutch time) as ``getattr(ZoneInfo, "_unpickle")(key, from_cache)``."""
    from zoneinfo import ZoneInfo

    if owner is not ZoneInfo or name != "_unpickle":
        raise pickle.UnpicklingError(f"evaluator sent a getattr of {name!r}, which is not data")
    return ZoneInfo._unpickle  # type: ignore[attr-defined]


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("builtins", "getattr"):
            return _zoneinfo_unpickle
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"evaluator sent a {module}.{name}, which is not data")
        return super().find_class(module, name)


def _send(stream: IO[bytes], value: Any) -> None:
    body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, left = [], size
    while left:
        if deadline is not None:
            timeout = deadline - _monotonic()
            if timeout <= 0 or not select.select([fd], [], [], timeout)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _monotonic() -> float:
    import time

    return time.monotonic()


class Evaluator:
    """One child process; used by one caller at a time (the pool hands it out)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "certflow.engine.evaluator"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": _pythonpath()},
        )
        # Start-up (an interpreter and its imports) is not the script's time: wait for the
        # child's "ready" before any call's clock starts.
        try:
            self._receive(_monotonic() + SPAWN_TIMEOUT)
        except (TimeoutError, EOFError, OSError, pickle.UnpicklingError):
            self.kill()
            raise ScriptLimitExceeded("the script evaluator process did not start") from None

    def _receive(self, deadline: float) -> Any:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
        if size > MAX_FRAME:
            raise EOFError
        return _DataUnpickler(io.BytesIO(_read_exact(fd, size, deadline))).load()

    def call(self, request: tuple[Any, ...], wall_seconds: float) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            _send(self.proc.stdin, request)
            return self._receive(_monotonic() + wall_seconds)
        except TimeoutError:
            self.kill()
            raise ScriptLimitExceeded(f"script ran longer than {wall_seconds:g}s (wall clock) "
                                      "and was stopped") from None
        except (EOFError, BrokenPipeError, OSError, pickle.UnpicklingError):
            self.kill()
            raise ScriptLimitExceeded("script exceeded its CPU or memory limit and was stopped") from None

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except BrokenPipeError:
                    pass  # the unsent rest of a request to a dead child: the pipe is closed all the same


def _pythonpath() -> str:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)


class EvaluatorPool:
    """Up to ``size`` evaluators for this process; re-created after a fork (Celery's prefork
    children must not share their parent's pipes)."""

    def __init__(self, size: int = POOL_SIZE) -> None:
        self.size = size
        self.pid = os.getpid()
        self.idle: list[Evaluator] = []
        self.started = 0
        self.cond = threading.Condition()

    def call(self, request: tuple[Any, ...], wall_seconds: float) -> Any:
        evaluator = self._take()
        try:
            reply = evaluator.call(request, wall_seconds)
        except BaseException:
            self._give_back(None)  # the call killed it
            raise
        if reply[0] == "error" and reply[1] == "limit":
            evaluator.kill()  # it exits after reporting a limit: reap it
            self._give_back(None)
        else:
            self._give_back(evaluator)
        return reply

    def _take(self) -> Evaluator:
        with self.cond:
            while True:
                while self.idle:
                    evaluator = self.idle.pop()
                    if evaluator.alive:
                        return evaluator
                    evaluator.kill()
                    self.started -= 1
                if self.started < self.size:
                    self.started += 1
                    break
                self.cond.wait()
        try:
            return Evaluator()
        except BaseException:
            self._give_back(None)
            raise

    def _give_back(self, evaluator: Evaluator | None) -> None:
        with self.cond:
            if evaluator is None:
                self.started -= 1
            else:
                self.idle.append(evaluator)
            self.cond.notify()

    def close(self) -> None:
        with self.cond:
            for evaluator in self.idle:
                evaluator.kill()
            self.started -= len(self.idle)
            self.idle.clear()


_POOL: EvaluatorPool | None = None
_POOL_LOCK = threading.Lock()


def pool() -> EvaluatorPool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.pid != os.getpid():
            _POOL = EvaluatorPool()
        return _POOL


@atexit.register
def _close_pool() -> None:
    if _POOL is not None and _POOL.pid == os.getpid():
        _POOL.close()


def raise_reply(reply: tuple[Any, ...]) -> Any:
    """Turn a child's reply into the value or the exception it stands for."""
    if reply[0] == "ok":
        return reply[1]
    _, kind, name, message, lineno = reply
    if kind == "limit":
        raise ScriptLimitExceeded(message)
    # "raised" and "data" (a value that is not data: a TypeError, with no line)
    exc = _PASSED_ON.get(name, RuntimeError)(message if name in _PASSED_ON else f"{name}: {message}")
    if lineno:
        _raise_at_line(exc, lineno)
    raise exc


def _raise_at_line(exc: Exception, lineno: int) -> None:
    """Raise ``exc`` from a frame of the script's filename and line, where SpiffWorkflow looks
    for the failing line of a script."""
    from certflow.engine.sandbox import SCRIPT_FILENAME

    code = compile("\n" * (lineno - 1) + "raise exc", SCRIPT_FILENAME, "exec")
    exec(code, {"exc": exc})  # noqa: S102 - a fixed one-line raise


# -- the child -----------------------------------------------------------------------------
def _set_limits() -> None:
    import resource

    with open("/proc/self/statm") as statm:
        size = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (size + MEMORY_LIMIT, size + MEMORY_LIMIT))


def _limit_cpu(seconds: float) -> None:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    # At least a whole second beyond the time limit, so the tracer's "ran longer than" comes
    # first (int() of the sum left as little as a few milliseconds after it).
    soft = math.ceil(used + seconds + 1)
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _serve(handle: Callable[..., tuple[Any, ...]]) -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but replies may reach the pipe
    _send(stdout, ("ready",))
    while True:
        header = stdin.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return  # the parent went away
        (size,) = _HEADER.unpack(header)
        request = pickle.loads(stdin.read(size))  # noqa: S301 - from our own parent
        reply = handle(*request)
        _send(stdout, reply)
        if reply[0] == "error" and reply[1] == "limit":
            return  # memory may be fragmented or a guard tripped: start afresh


def _handle(mode: str, source: str, context: dict[str, Any], external: dict[str, Any],
            now: datetime, time_limit: float) -> tuple[Any, ...]:
    from certflow.engine.sandbox import run_here

    _limit_cpu(time_limit)
    try:
        return ("ok", run_here(mode, source, context, external, now, time_limit))
    except MemoryError:
        return ("error", "limit", "MemoryError", "script exceeded its memory limit", 0)
    except ScriptLimitExceeded as exc:
        return ("error", "limit", type(exc).__name__, str(exc), 0)
    except NotData as exc:
        return ("error", "data", "TypeError", str(exc), 0)
    except Exception as exc:  # noqa: BLE001 - every script error goes back to the parent
        return ("error", "raised", type(exc).__name__, str(exc), _script_line(exc))


def _script_line(exc: BaseException) -> int:
    import traceback

    from certflow.engine.sandbox import SCRIPT_FILENAME

    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == SCRIPT_FILENAME]
    return (lines[-1] or 0) if lines else 0


def _warm_calendar() -> None:
    """Build the working-day calendar (the ``holidays`` package and the closing-days file)
    before the limits and the "ready": a script's first ``working_day``/``term_end`` call paid
    for it otherwise, 1.9 s of its 2.5 s wall limit on a loaded machine, and the lifecycle's
    date script failed under load. Best effort: a broken calendar file fails the call that
    needs it, with its own message, not the evaluator's start."""
    from datetime import date

    from certflow.engine.sandbox_builtins import _calendar

    try:
        calendar = _calendar()
        this_year = date.today().year
        for year in range(this_year - 1, this_year + 6):  # certificates run 3 to 4 years ahead
            calendar.is_working_day(date(year, 1, 1))
    except Exception:  # noqa: BLE001 - see the docstring: the call that needs it reports it
        pass


def main() -> None:
    import certflow.engine.sandbox  # noqa: F401 - import before measuring the baseline

    _warm_calendar()
    _set_limits()
    _serve(_handle)


if __name__ == "__main__":
    main()
