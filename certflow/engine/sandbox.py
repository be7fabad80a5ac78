"""The script engine for Python snippets inside BPMN diagrams.

Script tasks, gateway conditions, timer expressions, service-task parameters and pre/post
scripts are written by process owners, but certflow treats them as untrusted: a diagram must
not be able to reach the operating system or the interpreter's internals, nor hang a worker.

Why not RestrictedPython: it accepts most of Python and its safety depends on the host wiring
up guard hooks (``_getattr_``, ``_write_``, ``_getiter_`` ...) and builtins correctly; it has
had several published escapes (through generator frames, ``str.format``, shadowed guard
hooks), and one code path that reaches plain ``exec`` lets ``().__class__.__base__
.__subclasses__()`` find ``os.popen``. This module instead accepts a deliberately small
*whitelisted* subset of Python, which is all conditions and small scripts need:

1. ``validate`` parses the source with ``ast`` and rejects every node type, call target and
   attribute not explicitly allowed, and every name/attribute/keyword starting with ``_``
   (``ScriptRejected`` names the construct and line).
2. ``sandbox_builtins.Guard`` rewrites size-sensitive operations into calls of the guards in
   ``sandbox_builtins`` so ``'a' * 10**9`` or ``2 ** 10**10`` are refused before allocating.
3. The code runs with ``{"__builtins__": <small dict>}`` under a ``sys.settrace`` time limit
   (per thread, so it works in worker threads where ``signal.alarm`` cannot).

4. The tracer cannot interrupt one C-level operation, and some can be made slow or large from
   small inputs: comparing, hashing or printing containers with *shared* members
   (``[[[0] * 1000] * 1000] * 1000``). So expressions and scripts not provably cheap
   (``sandbox_bounds.is_bounded``, ``script_is_bounded``) run in an isolated evaluator process
   under OS CPU and memory limits (``certflow.engine.evaluator``); what they return or leave as
   task data is checked for size and depth (``sandbox_bounds.check_data``) before the caller
   sees it. Plain conditions such as ``approved == True``, and scripts of a few such
   assignments (``invoice_number = invoice['invoice_number']``), stay in-process: their cost
   is linear in the data.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from types import CodeType, FrameType
from typing import Any, NoReturn

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from certflow.engine import evaluator
from certflow.engine import sandbox_builtins as sb
from certflow.engine.sandbox_bounds import check_data, is_bounded, script_is_bounded
from certflow.engine.sandbox_builtins import ScriptLimitExceeded
from certflow.i18n import Message, N_

__all__ = [
    "ScriptLimitExceeded", "ScriptRejected", "SandboxEnvironment", "SandboxScriptEngine",
    "SAFE_ATTRIBUTES", "CALLABLE_NAMES", "DEFAULT_TIME_LIMIT", "compile_script", "validate",
]

MODES = ("eval", "exec")  # "eval": one expression (conditions, timers); "exec": a script
DEFAULT_TIME_LIMIT = 0.5  # seconds per evaluate/execute
MAX_SOURCE_LENGTH = 50_000
CODE_CACHE_SIZE = 2048
SCRIPT_FILENAME = "<string>"  # what SpiffWorkflow looks for to report the failing line
_CHECK_EVERY = 32  # trace events between clock reads

SAFE_ATTRIBUTES = frozenset({
    # dict
    "get", "keys", "values", "items", "pop", "update", "setdefault", "copy", "clear",
    # list
    "append", "extend", "insert", "remove", "index", "count", "sort", "reverse",
    # set
    "add", "discard", "union", "intersection", "difference", "issubset", "issuperset",
    # str
    "lower", "upper", "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "join",
    "replace", "startswith", "endswith", "title", "capitalize", "find", "isdigit", "isalpha",
    "isalnum", "isspace", "removeprefix", "removesuffix",
    # date / datetime / timedelta
    "isoformat", "year", "month", "day", "hour", "minute", "second", "weekday", "isoweekday",
    "date", "days", "seconds", "total_seconds",
})
CALLABLE_NAMES = frozenset(sb.SAFE_BUILTINS) | frozenset(sb.DATE_HELPER_NAMES)

_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Module, ast.Expression, ast.Assign, ast.AugAssign, ast.For, ast.If, ast.Expr, ast.Pass,
    ast.Break, ast.Continue, ast.Delete, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare,
    ast.IfExp, ast.Call, ast.keyword, ast.Constant, ast.Name, ast.Attribute, ast.Subscript,
    ast.Slice, ast.Starred, ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp, ast.SetComp,
    ast.DictComp, ast.GeneratorExp, ast.comprehension, ast.JoinedStr, ast.FormattedValue,
    ast.Load, ast.Store, ast.Del, ast.And, ast.Or, ast.Add, ast.Sub, ast.Mult, ast.Div,
    ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift, ast.RShift, ast.BitOr, ast.BitXor, ast.BitAnd,
    ast.UAdd, ast.USub, ast.Not, ast.Invert, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt,
    ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
)
# What a refused construct is called in "... is not allowed" (a process owner's words, translated
# where shown); Python's own keywords stay as they are.
_FRIENDLY = {
    "Import": N_("an import statement"), "ImportFrom": N_("an import statement"), "Lambda": N_("a lambda"),
    "FunctionDef": N_("a function definition"), "AsyncFunctionDef": N_("a function definition"),
    "ClassDef": N_("a class definition"), "While": N_("a while loop (use 'for ... in range(...)')"),
    "Try": N_("a try statement"), "TryStar": N_("a try statement"), "With": N_("a with statement"),
    "AsyncWith": N_("a with statement"), "AsyncFor": N_("an async for loop"), "Global": "'global'",
    "Nonlocal": "'nonlocal'", "Yield": "'yield'", "YieldFrom": "'yield'", "Await": "'await'",
    "NamedExpr": N_("an assignment expression (:=)"), "Return": "'return'", "Raise": "'raise'",
    "Assert": "'assert'", "AnnAssign": N_("an annotated assignment"), "MatMult": N_("the @ operator"),
    "Match": N_("a match statement"),
}
_FORMAT_SPEC = re.compile(r"\d{4,}")
_NO_SERVICES = "service tasks are dispatched by certflow, not the script engine"  # f"{x:>1000000000}" would allocate a huge string


class ScriptRejected(SyntaxError):
    """The script uses a construct outside the sandbox's whitelist.

    A ``SyntaxError`` so that SpiffWorkflow reports its line and DMN's parse probing treats it as
    unparseable; ``msg`` says what was rejected, ``lineno`` where.
    """

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message, (SCRIPT_FILENAME, lineno, None, None))

    def __str__(self) -> str:
        return f"{self.msg} (line {self.lineno})" if self.lineno else str(self.msg)


def rejected(exc: ScriptRejected) -> str:
    """``str(exc)`` as a ``Message``, translatable where a process owner reads it."""
    if not exc.lineno:
        return exc.msg if isinstance(exc.msg, Message) else str(exc.msg)
    return Message(N_("%(reason)s (line %(line)s)"), reason=exc.msg, line=exc.lineno)


def _reject(lineno: int, message: str) -> NoReturn:
    # ``lineno`` is the node's own line, or its statement's for nodes without one (``_check_tree``)
    raise ScriptRejected(message, lineno)


def _check_name(lineno: int, name: str | None, what: str) -> None:
    """``what``: the kind of name, an ``N_`` text ("attribute")."""
    if name is not None and name.startswith("_"):
        _reject(lineno, Message(N_("%(what)s %(name)r is not allowed (names starting with '_' are reserved)"),
                                what=Message(what), name=name))


def _check_attribute(node: ast.Attribute, lineno: int) -> None:
    _check_name(lineno, node.attr, N_("attribute"))
    if node.attr in ("format", "format_map"):
        _reject(lineno, Message(N_("str.%(method)s() is not allowed; use an f-string"), method=node.attr))
    if node.attr not in SAFE_ATTRIBUTES:
        _reject(lineno, Message(N_("attribute %(name)r is not allowed"), name=node.attr))
    if not isinstance(node.ctx, ast.Load):
        _reject(lineno, Message(N_("assigning or deleting attribute %(name)r is not allowed"), name=node.attr))


def _check_call(node: ast.Call, lineno: int) -> None:
    func = node.func
    if isinstance(func, ast.Name) and func.id not in CALLABLE_NAMES and not func.id.startswith("_"):
        _reject(lineno, Message(N_("calling %(function)s() is not allowed"), function=func.id))
    if not isinstance(func, (ast.Name, ast.Attribute)):
        _reject(lineno, Message(N_("only whitelisted functions and methods can be called")))


def _check_format_spec(node: ast.FormattedValue, lineno: int) -> None:
    spec = node.format_spec  # None, or a JoinedStr of str constants and nested {...}
    if not isinstance(spec, ast.JoinedStr):
        return
    texts = [str(p.value) for p in spec.values if isinstance(p, ast.Constant)]
    if len(texts) != len(spec.values):
        _reject(lineno, Message(N_("f-string format specs must be literal (no nested {...})")))
    if any(_FORMAT_SPEC.search(text) for text in texts):
        _reject(lineno, Message(N_("f-string format width/precision must be below 1000")))


def _check_node(node: ast.AST, lineno: int) -> None:
    if not isinstance(node, _ALLOWED_NODES):
        kind = type(node).__name__
        construct = (Message(_FRIENDLY[kind]) if kind in _FRIENDLY
                     else Message(N_("the %(kind)s construct"), kind=kind))
        _reject(lineno, Message(N_("%(construct)s is not allowed"), construct=construct))
    if isinstance(node, ast.Name):
        _check_name(lineno, node.id, N_("name"))
    elif isinstance(node, ast.Attribute):
        _check_attribute(node, lineno)
    elif isinstance(node, ast.Call):
        _check_call(node, lineno)
    elif isinstance(node, ast.keyword):
        _check_name(lineno, node.arg, N_("keyword argument"))
    elif isinstance(node, ast.comprehension) and node.is_async:
        _reject(lineno, Message(N_("async comprehensions are not allowed")))
    elif isinstance(node, ast.FormattedValue):
        _check_format_spec(node, lineno)
    elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice) and isinstance(node.ctx, ast.Store):
        # Every target, not only an assignment's: ``a, l[:0] = 1, l`` or ``for l[:0] in ...``
        # doubles a list in place, past the size guards.
        _reject(lineno, Message(N_("assigning to a slice is not allowed")))


def _check_tree(node: ast.AST, lineno: int = 1) -> None:
    lineno = getattr(node, "lineno", lineno)
    _check_node(node, lineno)
    for child in ast.iter_child_nodes(node):
        _check_tree(child, lineno)


def _parse(source: str, mode: str) -> ast.AST:
    """Parse and whitelist-check; a parse error propagates as a plain ``SyntaxError``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if len(source) > MAX_SOURCE_LENGTH:
        raise ScriptRejected(Message(N_("script is longer than %(limit)s characters"), limit=MAX_SOURCE_LENGTH), 1)
    try:
        # The parser too gives up on deep nesting (``-`` * 3000) with a RecursionError.
        tree = ast.parse(source.strip() if mode == "eval" else source, SCRIPT_FILENAME, mode)
        _check_tree(tree)
    except ValueError:
        # A lone surrogate (JSON's "\ud800", in a condition the studio checks): the parser
        # raises UnicodeEncodeError, a ValueError (as it did for a NUL byte before 3.11.4). The
        # character is not repeated: it would fail again wherever the message is written.
        raise SyntaxError("a character that is not text (a lone surrogate)") from None
    except RecursionError:
        raise ScriptRejected(Message(N_("script is nested too deeply")), 1) from None
    return tree


def validate(source: str, mode: str = "exec") -> None:
    """Raise ``ScriptRejected`` (or ``SyntaxError`` if it does not parse) unless ``source`` is allowed."""
    _parse(source, mode)


@functools.lru_cache(maxsize=CODE_CACHE_SIZE)
def compile_script(source: str, mode: str) -> CodeType:
    """Validate, guard and compile ``source``; cached by (source, mode) since the same
    conditions are evaluated over and over."""
    tree = ast.fix_missing_locations(sb.Guard().visit(_parse(source, mode)))
    return compile(tree, SCRIPT_FILENAME, mode)


class _TimeLimit:
    """A ``sys.settrace`` hook that counts call/line events and checks the clock every few."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.events = 0

    def trace(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        self.events += 1
        if self.events % _CHECK_EVERY == 0 and time.monotonic() > self.deadline:
            raise ScriptLimitExceeded(f"script ran longer than {self.seconds}s")
        return self.trace if frame.f_code.co_filename == SCRIPT_FILENAME else None


def _run(code: CodeType, scope: dict[str, Any], seconds: float) -> Any:
    """Run ``code`` (``eval`` runs exec-mode code too) under the time limit, in this thread."""
    previous = sys.gettrace()
    sys.settrace(_TimeLimit(seconds).trace)
    try:
        return eval(code, scope)  # noqa: S307 - validated, guarded, sandbox builtins only
    finally:
        sys.settrace(previous)


@functools.lru_cache(maxsize=CODE_CACHE_SIZE)
def runs_in_process(source: str) -> bool:
    """Whether the expression ``source`` is cheap enough to evaluate without isolation."""
    return is_bounded(_parse(source, "eval"))


@functools.lru_cache(maxsize=CODE_CACHE_SIZE)
def script_runs_in_process(source: str) -> bool:
    """Whether the script ``source`` is cheap enough to run without isolation
    (``sandbox_bounds.script_is_bounded``: a few assignments of bounded expressions of the
    task data, such as ``invoice_number = invoice['invoice_number']``)."""
    return script_is_bounded(_parse(source, "exec"))


def _data_only(scope: dict[str, Any], external: dict[str, Any]) -> dict[str, Any]:
    """Task data becomes the script's variables, minus builtins, functions and external context."""
    return {
        key: value for key, value in scope.items()
        if key != "__builtins__" and key not in external and not callable(value)
    }


def run_here(mode: str, source: str, context: dict[str, Any], external: dict[str, Any],
             now: datetime, time_limit: float) -> Any:
    """Run a snippet in this process (an evaluator child) and return the expression's value,
    or for a script the task data it leaves, both checked by ``check_data``."""
    code = compile_script(source, mode)
    scope = {**external, **context, "__builtins__": sb.make_builtins(lambda: now)}
    result = _run(code, scope, time_limit)
    if mode == "eval":
        check_data(result, "the expression's result")
        return result
    data = _data_only(scope, external)
    check_data(data, "the task data the script leaves")
    return data


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """Evaluates/executes diagram code against task data, like SpiffWorkflow's
    ``TaskDataEnvironment``, but validated, size-guarded, time-limited, with sandbox builtins,
    and (``isolated=True``, the default) in an evaluator process under OS limits unless the
    expression is provably cheap. ``isolated=False`` runs everything in this process, with
    only the in-process limits: for benchmarks and tests of the guards themselves."""

    def __init__(self, now: Callable[[], datetime] | None = None, time_limit: float = DEFAULT_TIME_LIMIT,
                 isolated: bool = True) -> None:
        super().__init__()
        self.time_limit = time_limit
        self.isolated = isolated
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.builtins = sb.make_builtins(self.now)

    def _scope(self, context: dict[str, Any], external_context: dict[str, Any] | None) -> dict[str, Any]:
        scope = {**(external_context or {}), **context}
        scope["__builtins__"] = self.builtins
        return scope

    def _isolated(self, mode: str, source: str, context: dict[str, Any], external: dict[str, Any]) -> Any:
        request = (mode, source, context, external, self.now(), self.time_limit)
        wall = self.time_limit + evaluator.WALL_GRACE
        return evaluator.raise_reply(evaluator.pool().call(request, wall))

    def evaluate(self, expression: str, context: dict[str, Any], external_context: dict[str, Any] | None = None) -> Any:
        code = compile_script(expression, "eval")
        if not self.isolated:
            return _run(code, self._scope(context, external_context), self.time_limit)
        if runs_in_process(expression):
            return eval(code, self._scope(context, external_context))  # noqa: S307 - bounded, see is_bounded
        return self._isolated("eval", expression, context, external_context or {})

    def execute(self, script: str, context: dict[str, Any], external_context: dict[str, Any] | None = None) -> bool:
        external = external_context or {}
        self._check_for_overwrite(context, external)
        code = compile_script(script, "exec")
        if self.isolated and script_runs_in_process(script):
            # As the evaluator does, without its process: the data left is checked, and a
            # failed script leaves the task data as it was.
            scope = self._scope(context, external)
            eval(code, scope)  # noqa: S307 - bounded, see script_is_bounded
            data = _data_only(scope, external)
            check_data(data, "the task data the script leaves")
            context.clear()
            context.update(data)
            return True
        if self.isolated:
            data = self._isolated("exec", script, context, external)
            context.clear()
            context.update(data)
            return True
        scope = self._scope(context, external)
        try:
            _run(code, scope, self.time_limit)
        finally:
            context.clear()
            context.update(_data_only(scope, external))
        return True

    def _check_for_overwrite(self, context: dict[str, Any], external: dict[str, Any]) -> None:
        clashes = set(external) & set(context)
        if clashes:
            raise ValueError(
                "You have task data that overwrites a predefined function(s). Please change the "
                f"following variable or field name(s) to something else: {clashes}"
            )

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        raise NotImplementedError(_NO_SERVICES)


class SandboxScriptEngine(PythonScriptEngine):
    """SpiffWorkflow script engine running every diagram snippet in the sandbox."""

    def __init__(self, now: Callable[[], datetime] | None = None, time_limit: float = DEFAULT_TIME_LIMIT,
                 isolated: bool = True) -> None:
        super().__init__(environment=SandboxEnvironment(now=now, time_limit=time_limit, isolated=isolated))

    def validate(self, expression: str) -> None:
        validate(expression)  # as a script: SpiffWorkflow validates script tasks' text

    def call_service(self, task: Any, **kwargs: Any) -> Any:
        # PythonScriptEngine.call_service's error path references an undefined name; skip it.
        raise NotImplementedError(_NO_SERVICES)
