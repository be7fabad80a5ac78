"""What a diagram script can call, and the AST rewriter guarding it, for ``certflow.engine.sandbox``.

Three groups of callables end up in the sandbox's ``__builtins__``:

* ``SAFE_BUILTINS``: a handful of Python builtins, some wrapped (``range`` is capped, ``round``
  limits ``ndigits``, ``sum`` only adds numbers);
* the date helpers from ``make_date_helpers(now)``, reading time from an injected clock and
  returning ISO strings, since task data must stay JSON-serialisable (``parse_date`` returns a
  ``date`` for comparisons, ``.year`` and ``(a - b).days``: use it, don't store it);
* ``GUARDS``: helpers that the AST rewriter ``Guard`` routes size-sensitive operations through
  (``+ * ** << %``, ``str.join``/``str.replace``/``list.extend``, f-strings, starred displays).
  Their names start with ``_``, so diagram code (where every ``_`` name is rejected) can neither
  call nor shadow them.
"""

from __future__ import annotations

import ast
import calendar
import functools
import operator
import re
import sys
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from typing import Any

from certflow.localtime import at_clock

MAX_ITEMS = 100_000  # longest str/bytes/list/tuple/dict/set a guarded operation may produce
MAX_RANGE = 100_000  # longest range()
INT_LIMIT = 10**100  # largest integer (in absolute value) a guarded operation may produce
MAX_FORMAT_WIDTH_DIGITS = 3  # "%999d" is fine, "%1000d" is refused
MAX_ROUND_DIGITS = 100  # round(5, -10**9) would compute 10**(10**9)

_INT_BITS = INT_LIMIT.bit_length()
_SEQUENCES = (str, bytes, list, tuple)
_SIZED = (str, bytes, list, tuple, dict, set)
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")

BINOP = "_sandbox_binop"
INPLACE = "_sandbox_inplace"
AUG_ITEM = "_sandbox_aug_item"
ATTR = "_sandbox_attr"
SIZED = "_sandbox_sized"


class ScriptLimitExceeded(RuntimeError):
    """A diagram script ran too long or tried to build a value beyond the sandbox's limits."""


def _check_len(length: int, what: str) -> None:
    if length > MAX_ITEMS:
        raise ScriptLimitExceeded(f"{what} would produce {length} items; the limit is {MAX_ITEMS}")


def _check_int(value: Any) -> Any:
    if isinstance(value, int) and abs(value) > INT_LIMIT:
        raise ScriptLimitExceeded("integer result exceeds 10**100")
    return value


def _refuse_bits(bits: int) -> None:
    if bits > _INT_BITS:
        raise ScriptLimitExceeded("integer result exceeds 10**100")


def _pre_add(a: Any, b: Any) -> None:
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
        _check_len(len(a) + len(b), "concatenation")


def _pre_mul(a: Any, b: Any) -> None:
    for seq, times in ((a, b), (b, a)):
        if isinstance(seq, _SEQUENCES) and isinstance(times, int):
            _check_len(len(seq) * max(times, 0), "repetition")
    if isinstance(a, int) and isinstance(b, int):
        _refuse_bits(a.bit_length() + b.bit_length() - 2)


def _pre_pow(a: Any, b: Any) -> None:
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
        _refuse_bits((abs(a).bit_length() - 1) * b)


def _pre_lshift(a: Any, b: Any) -> None:
    if isinstance(a, int) and isinstance(b, int) and a != 0 and b > 0:
        _refuse_bits(a.bit_length() - 1 + b)


def _pre_mod(a: Any, b: Any) -> None:
    if isinstance(a, (str, bytes)):
        text = a.decode("latin-1") if isinstance(a, bytes) else a
        for match in _PERCENT_SPEC.finditer(text):
            for number in match.groups():
                if number == "*" or (number is not None and len(number) > MAX_FORMAT_WIDTH_DIGITS):
                    raise ScriptLimitExceeded("%-format width/precision must be a literal below 1000")


_PRECHECKS: dict[str, Callable[[Any, Any], None]] = {
    "+": _pre_add, "*": _pre_mul, "**": _pre_pow, "<<": _pre_lshift, "%": _pre_mod,
}
_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "*": operator.mul, "**": operator.pow, "<<": operator.lshift, "%": operator.mod,
}
_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.iadd, "*": operator.imul, "**": operator.ipow, "<<": operator.ilshift, "%": operator.imod,
}
_OP_SYMBOLS: dict[type[ast.operator], str] = {
    ast.Add: "+", ast.Mult: "*", ast.Pow: "**", ast.LShift: "<<", ast.Mod: "%",
}


def guarded_binop(op: str, a: Any, b: Any) -> Any:
    """``a <op> b`` for the operators that can build huge values from small inputs."""
    _PRECHECKS[op](a, b)
    return _check_int(_BINARY[op](a, b))


def guarded_inplace(op: str, a: Any, b: Any) -> Any:
    """``a <op>= b``, keeping in-place semantics (``lst += x`` still extends ``lst``)."""
    _PRECHECKS[op](a, b)
    return _check_int(_INPLACE[op](a, b))


def guarded_aug_item(container: Any, key: Any, op: str, value: Any) -> None:
    """``container[key] <op>= value`` with ``container`` and ``key`` evaluated once."""
    container[key] = guarded_inplace(op, container[key], value)


def guarded_sized(value: Any) -> Any:
    """Refuse an f-string or starred display whose result is too long (stops doubling loops)."""
    if isinstance(value, _SIZED):
        _check_len(len(value), "value")
    return value


def _join(sep: str | bytes, iterable: Iterable[Any]) -> Any:
    items = list(iterable)
    total = sum(len(item) for item in items if isinstance(item, (str, bytes)))
    _check_len(total + len(sep) * max(len(items) - 1, 0), "join")
    return sep.join(items)


def _replace(text: Any, old: Any, new: Any, count: int = -1) -> Any:
    hits = text.count(old)  # an empty ``old`` is found len(text) + 1 times, as replace() inserts it
    if count >= 0:
        hits = min(hits, count)
    _check_len(len(text) + hits * (len(new) - len(old)), "replace")
    return text.replace(old, new, count)


def _extend(target: list[Any], iterable: Iterable[Any]) -> None:
    items = list(iterable)
    _check_len(len(target) + len(items), "extend")
    target.extend(items)


_GUARDED_METHODS: dict[str, tuple[tuple[type, ...], Callable[..., Any]]] = {
    "join": ((str, bytes), _join),
    "replace": ((str, bytes), _replace),
    "extend": ((list,), _extend),
}
GUARDED_ATTRIBUTES = frozenset(_GUARDED_METHODS)


def guarded_attribute(obj: Any, name: str) -> Any:
    """``obj.name`` for methods that can blow up; covers ``s.join`` and unbound ``str.join``."""
    types, method = _GUARDED_METHODS[name]
    if isinstance(obj, types):
        return functools.partial(method, obj)
    if isinstance(obj, type) and issubclass(obj, types):
        return method
    return getattr(obj, name)


def safe_range(*args: int) -> range:
    result = range(*args)
    try:
        length = len(result)
    except OverflowError:
        length = MAX_RANGE + 1
    if length > MAX_RANGE:
        raise ScriptLimitExceeded(f"range() of {length} items; the limit is {MAX_RANGE}")
    return result


def safe_round(number: Any, ndigits: int | None = None) -> Any:
    if ndigits is None:
        return round(number)
    if abs(ndigits) > MAX_ROUND_DIGITS:
        raise ScriptLimitExceeded(f"round() ndigits beyond ±{MAX_ROUND_DIGITS}")
    return round(number, ndigits)


def safe_sum(iterable: Iterable[Any], start: int | float = 0) -> Any:
    if not isinstance(start, (int, float)):
        raise TypeError("sum() adds numbers only; use join() or + for strings and lists")
    return sum(iterable, start)


SAFE_BUILTINS: dict[str, Any] = {
    "len": len, "min": min, "max": max, "sum": safe_sum, "abs": abs, "round": safe_round,
    "sorted": sorted, "any": any, "all": all, "int": int, "float": float, "str": str,
    "bool": bool, "list": list, "dict": dict, "set": set, "tuple": tuple, "range": safe_range,
    "enumerate": enumerate, "zip": zip,
}

GUARDS: dict[str, Callable[..., Any]] = {
    BINOP: guarded_binop, INPLACE: guarded_inplace, AUG_ITEM: guarded_aug_item,
    ATTR: guarded_attribute, SIZED: guarded_sized,
}


def _call(where: ast.AST, helper: str, *args: ast.expr) -> ast.Call:
    call = ast.Call(func=ast.Name(id=helper, ctx=ast.Load()), args=list(args), keywords=[])
    return ast.copy_location(call, where)


class Guard(ast.NodeTransformer):
    """The AST rewriter: route operations that can build huge values from small inputs through
    the guards above. Runs after validation, so the ``_sandbox_*`` names it adds are unreachable
    from diagram code."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        symbol = _OP_SYMBOLS.get(type(node.op))
        if symbol is None:
            return node
        return _call(node, BINOP, ast.Constant(symbol), node.left, node.right)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt:
        self.generic_visit(node)
        symbol = _OP_SYMBOLS.get(type(node.op))
        target = node.target
        if symbol is None:
            return node
        if isinstance(target, ast.Subscript):
            call = _call(node, AUG_ITEM, target.value, target.slice, ast.Constant(symbol), node.value)
            return ast.copy_location(ast.Expr(call), node)
        assert isinstance(target, ast.Name)  # attribute targets were rejected by validation
        value = _call(node, INPLACE, ast.Constant(symbol), ast.Name(id=target.id, ctx=ast.Load()), node.value)
        return ast.copy_location(ast.Assign(targets=[target], value=value), node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        self.generic_visit(node)
        if node.attr in GUARDED_ATTRIBUTES:
            return _call(node, ATTR, node.value, ast.Constant(node.attr))
        return node

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.FormattedValue:
        node.value = self.visit(node.value)  # leave the (literal) format spec alone
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.expr:
        self.generic_visit(node)
        return _call(node, SIZED, node)

    def _starred_display(self, node: ast.List | ast.Tuple | ast.Set) -> ast.expr:
        self.generic_visit(node)
        loading = not isinstance(node, (ast.List, ast.Tuple)) or isinstance(node.ctx, ast.Load)
        if loading and any(isinstance(e, ast.Starred) for e in node.elts):
            return _call(node, SIZED, node)
        return node

    visit_List = visit_Tuple = visit_Set = _starred_display


def parse_date(value: str | date) -> date:
    """``"2025-03-01"``, ``"2025-03-01T09:30:00+01:00"`` or a date → ``date`` (not JSON: don't store it)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO date string, got {type(value).__name__}")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return datetime.fromisoformat(value.strip()).date()


def add_days(value: str | date, days: int) -> str:
    return (parse_date(value) + timedelta(days=days)).isoformat()


def add_months(value: str | date, months: int) -> str:
    """Calendar months; the day is clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    start = parse_date(value)
    year, month0 = divmod(start.year * 12 + start.month - 1 + months, 12)
    if not 1 <= year <= 9999:
        raise ValueError(f"add_months() result year {year} is out of range")
    day = min(start.day, calendar.monthrange(year, month0 + 1)[1])
    return date(year, month0 + 1, day).isoformat()


def add_years(value: str | date, years: int) -> str:
    return add_months(value, 12 * years)


def iso_duration_days(days: int) -> str:
    """``14`` → ``"P14D"``, e.g. for timer durations."""
    count = int(days)
    if count < 0:
        raise ValueError("iso_duration_days() needs a non-negative number of days")
    return f"P{count}D"


DATE_HELPER_NAMES = ("today", "now", "parse_date", "add_days", "add_months", "add_years", "iso_duration_days",
                     "deadline", "working_day", "term_end", "at_local")


def _untraced(helper: Callable[..., Any]) -> Callable[..., Any]:
    """Run a trusted helper without the sandbox's tracer: the working-day calendar is built
    (once per year, by the ``holidays`` package) inside the first call, which traced would
    count thousands of library lines against the script's time. The helper's own work is
    bounded (at most 9999 working days, ``workdays.parse_term``)."""

    @functools.wraps(helper)
    def call(*args: Any, **kwargs: Any) -> Any:
        tracer = sys.gettrace()
        sys.settrace(None)
        try:
            return helper(*args, **kwargs)
        finally:
            sys.settrace(tracer)
    return call


def _calendar() -> Any:
    # The process owners' calendar (equated and closing days), read when a helper needs it.
    from certflow import workdays
    from certflow.settings import get_settings

    return workdays.calendar(get_settings().processes_dir)


def working_day(value: Any) -> str:
    """The date itself when it is a Dutch working day, else the first working day after it
    (Algemene termijnenwet plus the closing days): ``at_local(working_day(d), '09:00')``."""
    return str(_calendar().next_working_day(parse_date(value)).isoformat())


def term_end(value: Any) -> str:
    """When a term whose last day is ``value`` ends, as an ISO moment (a timer's ``timeDate``):
    the end of that day, Dutch time, or the end of the next working day when it is not one
    (the act's rule for candidates' terms): ``term_end(valid_until)``."""
    return str(_calendar().term_end(parse_date(value)).isoformat())


def at_local(value: Any, clock: Any = "09:00") -> str:
    """The date ``value`` at Dutch wall-clock time ``clock`` (``"09:00"``), as an ISO moment
    with the offset Amsterdam has on that day, for a timer's ``timeDate``: ``at_local(invite_at,
    '09:00')`` fires at 09:00 Dutch time in summer and winter alike (a fixed ``+01:00`` would
    fire at 10:00 in summer)."""
    if not isinstance(clock, str):
        raise TypeError(f"at_local() needs the time as text such as '09:00', got {type(clock).__name__}")
    parsed = time.fromisoformat(clock.strip())
    if parsed.tzinfo is not None:
        raise ValueError(f"at_local() takes a Dutch wall-clock time without an offset, got {clock!r}")
    return at_clock(parse_date(value), parsed).isoformat()


def make_date_helpers(now: Callable[[], datetime]) -> dict[str, Callable[..., Any]]:
    """The date helpers, with ``today()``/``now()`` reading the injected clock."""

    def today() -> str:
        return now().date().isoformat()

    def now_iso() -> str:
        return now().isoformat()

    def deadline(term: Any, move_to_working_day: bool = False) -> str:
        """When ``term`` from now ends, as an ISO moment (a timer's ``timeDate``): ``10
        werkdagen`` ends at the end of the 10th working day; a calendar term (``P45D``) ends
        that much later, or with ``move_to_working_day`` at the end of the next working day
        when it falls on a day that is not one (the act's rule for candidates' terms)."""
        from certflow import workdays

        try:
            parsed = workdays.parse_term(str(term))
        except workdays.TermError as exc:
            raise ValueError(str(exc)) from None
        return str(_calendar().deadline(now(), parsed, bool(move_to_working_day)).isoformat())

    return {
        "today": today, "now": now_iso, "parse_date": parse_date, "add_days": add_days,
        "add_months": add_months, "add_years": add_years, "iso_duration_days": iso_duration_days,
        "deadline": _untraced(deadline), "working_day": _untraced(working_day),
        "term_end": _untraced(term_end), "at_local": at_local,
    }


def make_builtins(now: Callable[[], datetime]) -> dict[str, Any]:
    """A fresh ``__builtins__`` dict for one sandbox environment."""
    return {**SAFE_BUILTINS, **make_date_helpers(now), **GUARDS}
