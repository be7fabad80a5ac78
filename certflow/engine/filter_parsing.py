"""One parser for the list filters people type or save (the inbox's and the monitor's): a
filter is a frozen dataclass, read from a query string or saved JSON the same way everywhere,
so "blank means any" and "on" meaning true cannot drift apart between the two lists."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from certflow.engine.errors import InvalidInput

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

F = TypeVar("F", bound="DataclassInstance")
TRUE = ("1", "true", "on", "yes")
MAX_TEXT = 200


def parse_filter(cls: type[F], data: Mapping[str, Any], *, numbers: Mapping[str, str] | None = None,
                 flags: tuple[str, ...] = ()) -> F:
    """``cls`` from ``data``: unknown keys ignored, blanks mean "any"; the ``numbers`` fields
    are whole numbers (anything else is refused with that field's message), the ``flags``
    true for 1/true/on/yes, the rest stripped text of at most 200 characters. The dataclass's
    own checks (ranges, allowed values) run as it is made."""
    known = {f.name for f in fields(cls)}
    numbers = numbers or {}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known or value in (None, ""):
            continue
        if key in numbers:
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise InvalidInput(numbers[key], field=key) from None
        elif key in flags:
            value = value if isinstance(value, bool) else str(value).lower() in TRUE
        else:
            value = str(value).strip()[:MAX_TEXT]
        values[key] = value
    return cls(**values)
