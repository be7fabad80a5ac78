"""Bounds that hold for every value a diagram snippet can see or leave behind.

Two questions, answered here for ``certflow.engine.sandbox``:

* ``check_data``: is this value (a snippet's result, or the task data a script leaves behind)
  plain data of bounded size and depth? Sizes are counted the way a save would meet them:
  a list holding the same 1,000-item list 1,000 times counts 1,000,000 items, so structures
  that are small in memory but huge as JSON (``[[0] * 1000] * 1000``) are refused before they
  are compared, hashed, formatted or saved. The walk stops as soon as a bound is passed, so it
  costs at most ``MAX_DATA_SIZE`` steps.
* ``is_bounded``: can this expression run in-process? Only if its cost is provably linear in
  the size of the task data it reads: at most ``MAX_BOUNDED_NODES`` nodes, no loops,
  comprehensions, repetition (``*``, ``**``, ``<<``, ``%``) or f-strings, and calls only to
  functions whose work and result are linear in their arguments. Every value such an
  expression meets is then task data (bounded by ``check_data`` on the way in), a literal,
  or a result no larger than the sum of its inputs, so no single C-level operation inside it
  can run long. ``script_is_bounded`` extends that to a script of a few assignments of such
  expressions, none reading what the script assigned. Everything else runs in an isolated
  evaluator process under OS limits (``certflow.engine.evaluator``).
"""

from __future__ import annotations

import ast
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Any

from certflow.engine.sandbox_builtins import ScriptLimitExceeded

MAX_DATA_SIZE = 2_000_000  # about the length of the data as JSON, in characters
MAX_DEPTH = 50  # nesting of lists/dicts inside task data
MAX_BOUNDED_NODES = 40  # AST nodes of an expression allowed to run in-process
MAX_BOUNDED_STATEMENTS = 10  # assignments of a script allowed to run in-process

_SCALARS = (bool, int, float, type(None), Decimal, date, time, timedelta, range)
_SEQUENCES = (list, tuple, set, frozenset)

# Work and result linear in the arguments; none repeats or formats with a width.
_LINEAR_CALLS = frozenset({
    "len", "str", "int", "float", "bool", "abs", "min", "max", "any", "all",
    "today", "now", "parse_date", "add_days", "add_months", "add_years", "iso_duration_days",
    "deadline", "working_day", "term_end",  # at most 9999 working days (workdays.parse_term)
    "at_local",
})
_LINEAR_METHODS = frozenset({
    "get", "keys", "values", "items", "lower", "upper", "strip", "lstrip", "rstrip",
    "startswith", "endswith", "isdigit", "isalpha", "isalnum", "isspace", "title", "capitalize",
    "isoformat", "year", "month", "day", "hour", "minute", "second", "weekday", "isoweekday",
    "date", "days", "seconds", "total_seconds",
})
_BOUNDED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression, ast.Name, ast.Constant, ast.Load, ast.Compare, ast.BoolOp, ast.And, ast.Or,
    ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.IfExp, ast.Attribute, ast.Subscript, ast.Call,
    ast.Tuple, ast.List, ast.Dict, ast.BinOp, ast.Add, ast.Sub, ast.Div, ast.FloorDiv,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
)


class DataLimitExceeded(ScriptLimitExceeded):
    """A value is too big or too deeply nested to be task data."""


class NotData(TypeError):
    """A value that cannot be task data (a function, an iterator, ...)."""


def check_data(value: Any, what: str, limit: int = MAX_DATA_SIZE) -> None:
    """Raise ``DataLimitExceeded`` (or ``NotData``) naming ``what``."""
    budget = [limit, limit]
    _walk(value, what, 0, budget)


def _spend(budget: list[int], amount: int, what: str) -> None:
    budget[0] -= amount
    if budget[0] < 0:
        raise DataLimitExceeded(f"{what} is larger than the limit of {budget[1]:,} characters as JSON")


def _walk(value: Any, what: str, depth: int, budget: list[int]) -> None:
    if isinstance(value, str):
        _spend(budget, len(value) + 2, what)
    elif isinstance(value, _SCALARS):
        _spend(budget, 8 if not isinstance(value, int) else 1 + value.bit_length() // 3, what)
    elif isinstance(value, (dict, *_SEQUENCES)):
        if depth >= MAX_DEPTH:
            raise DataLimitExceeded(f"{what} is nested deeper than {MAX_DEPTH} levels")
        _spend(budget, 2 + len(value), what)
        if isinstance(value, dict):
            for key, item in value.items():
                _walk(key, what, depth + 1, budget)
                _walk(item, what, depth + 1, budget)
        else:
            for item in value:
                _walk(item, what, depth + 1, budget)
    elif isinstance(value, bytes):
        _spend(budget, 2 * len(value), what)
    else:
        raise NotData(f"{what} holds a {type(value).__name__} object; task data must be plain "
                        "values (text, numbers, lists, dicts, dates)")


def is_bounded(tree: ast.AST) -> bool:
    """True when ``tree`` (an already validated eval-mode expression) may run in-process."""
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_BOUNDED_NODES:
        return False
    for node in nodes:
        if not isinstance(node, _BOUNDED_NODES):
            return False
        if isinstance(node, ast.Call) and not _linear_call(node):
            return False
        if isinstance(node, ast.Attribute) and node.attr not in _LINEAR_METHODS:
            return False
    return True


def script_is_bounded(tree: ast.AST) -> bool:
    """True when ``tree`` (an already validated exec-mode script) may run in-process: at most
    ``MAX_BOUNDED_STATEMENTS`` assignments ``name = <expression>``, each expression bounded
    (``is_bounded``) and reading no name an earlier one assigned. So every expression sees
    only the task data it was given (each result linear in it, as for a condition), never a
    result of the script itself: ``a = x + x`` then ``b = a + a`` would double at each step.
    Only plain names are assigned, so nothing in the task data is changed in place."""
    if not isinstance(tree, ast.Module) or not 0 < len(tree.body) <= MAX_BOUNDED_STATEMENTS:
        return False
    assigned: set[str] = set()
    for statement in tree.body:
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)):
            return False
        if not is_bounded(ast.Expression(body=statement.value)):
            return False
        if any(isinstance(n, ast.Name) and n.id in assigned for n in ast.walk(statement.value)):
            return False
        assigned.add(statement.targets[0].id)
    return True


def _linear_call(node: ast.Call) -> bool:
    # A method is judged as the Attribute node it is, keywords as the keyword nodes they are
    # (never bounded); validation allows no other call targets.
    return not isinstance(node.func, ast.Name) or node.func.id in _LINEAR_CALLS
