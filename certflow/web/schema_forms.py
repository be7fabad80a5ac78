"""Task forms from their JSON Schema: fields for a template, posted text back to typed JSON,
and validation errors back onto the fields they concern.

Process owners write the forms in processes/*/forms/*.json; this module must render every
construct they use (strings, textareas, enums, booleans, ``const: true`` confirmations,
numbers, integers, dates, arrays, nested objects, untyped properties) without per-form code.
Titles and descriptions are written "Nederlands / English"; the page's language picks a half.
The server validates with the same schema the facade enforces, so errors come back per field
in words a person can act on; the facade stays the authority (its refusal is mapped too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from certflow.web.schema_messages import message_for

# A string field gets a one-line input up to this many characters, a textarea beyond.
TEXTAREA_FROM = 200
FORM_LEVEL = "_form"
_REQUIRED = re.compile(r"^'([^']+)' is a required property$")
_DUTCH_DATE = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")


@dataclass
class FormField:
    """One input as a template draws it. ``widget`` is one of: text, textarea, number,
    integer, date, yesno (boolean radios), confirm (a ``const: true`` checkbox), radio and
    select (enums), checkboxes (array of enum), lines (array of text), group (nested object)."""

    name: str
    label: str
    hint: str
    widget: str
    required: bool
    value: Any = None
    options: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    children: list["FormField"] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return "f-" + self.name.replace(".", "-")


def pick(text: str | None, language: str) -> str:
    """"Nederlands / English" -> the half for the language (the whole when not split)."""
    if not text:
        return ""
    parts = [p.strip() for p in text.split(" / ")]
    if len(parts) == 2:
        return parts[1] if language == "en" else parts[0]
    return text.strip()


def humanise(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


def enum_labels(values: list[Any], description: str | None, language: str) -> list[tuple[str, str]]:
    """Option labels from "a = label a, b = label b" in the description, else the values."""
    found: dict[str, str] = {}
    text = pick(description, language) + " " + pick(description, "nl")
    for value in values:
        match = re.search(rf"(?<![\w]){re.escape(str(value))} = ([^,;.]+)", text)
        if match and str(value) not in found:
            found[str(value)] = match.group(1).strip()
    return [(str(v), found.get(str(v)) or humanise(str(v))) for v in values]


def widget_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if schema.get("const") is True:
        return "confirm"
    if kind == "boolean":
        return "yesno"
    if "enum" in schema:
        return "radio" if len(schema["enum"]) <= 5 else "select"
    if kind == "integer":
        return "integer"
    if kind == "number":
        return "number"
    if kind == "object":
        return "group"
    if kind == "array":
        return "checkboxes" if "enum" in (schema.get("items") or {}) else "lines"
    if schema.get("format") == "date":
        return "date"
    if kind == "string" and (schema.get("maxLength") or 10**9) <= TEXTAREA_FROM:
        return "text"
    return "textarea" if kind == "string" else "text"


def fields(schema: dict[str, Any], values: dict[str, Any] | None = None,
           errors: dict[str, str] | None = None, language: str = "nl", prefix: str = "") -> list[FormField]:
    """The form's inputs in schema order, filled with ``values`` and marked with ``errors``."""
    values, errors = values or {}, errors or {}
    required = set(schema.get("required") or [])
    result = []
    for name, prop in (schema.get("properties") or {}).items():
        prop = prop if isinstance(prop, dict) else {}
        path = f"{prefix}{name}"
        widget = widget_of(prop)
        item = FormField(
            name=path, label=pick(prop.get("title"), language) or humanise(name),
            hint=pick(prop.get("description"), language), widget=widget,
            required=name in required, value=values.get(name), error=errors.get(path),
            attrs=_attrs(prop),
        )
        if "enum" in prop:
            item.options = enum_labels(prop["enum"], prop.get("description"), language)
        elif widget == "checkboxes":
            item.options = enum_labels(prop["items"]["enum"], prop.get("description"), language)
        elif widget == "group":
            nested = values.get(name) if isinstance(values.get(name), dict) else {}
            item.children = fields(prop, nested, errors, language, prefix=f"{path}.")
        result.append(item)
    return result


def _attrs(prop: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for key, attr in (("maxLength", "maxlength"), ("minimum", "min"), ("maximum", "max")):
        if key in prop:
            attrs[attr] = prop[key]
    if prop.get("type") == "number":
        attrs["inputmode"] = "decimal"
    if prop.get("type") == "integer":
        attrs["inputmode"] = "numeric"
    return attrs


def coerce(schema: dict[str, Any], form: dict[str, list[str]], prefix: str = "") -> dict[str, Any]:
    """Posted form fields (every value a string, lists for repeated names) -> the typed JSON
    the schema describes. What cannot be converted is passed on as typed, so validation
    reports it on its field instead of this function guessing."""
    data: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        prop = prop if isinstance(prop, dict) else {}
        path = f"{prefix}{name}"
        widget = widget_of(prop)
        if widget == "group":
            nested = coerce(prop, form, prefix=f"{path}.")
            if nested:
                data[name] = nested
            continue
        raw = form.get(path)
        if widget == "checkboxes":
            data[name] = [v for v in (raw or []) if v]
            continue
        if not raw:
            continue
        value = _scalar(prop, widget, raw[0])
        if value is not None:
            data[name] = value
    return data


def _scalar(prop: dict[str, Any], widget: str, text: str) -> Any:
    text = text.strip()
    if widget == "lines":
        return [_scalar(prop.get("items") or {}, widget_of(prop.get("items") or {}), line)
                for line in text.splitlines() if line.strip()]
    if widget == "confirm":
        return True if text.lower() in ("true", "on", "1", "yes") else None
    if widget == "yesno":
        return {"true": True, "false": False}.get(text.lower(), text or None)
    if widget in ("number", "integer"):
        return _number(text, integer=widget == "integer") if text else None
    if widget == "date":
        return _iso_date(text) if text else None
    if widget in ("radio", "select"):
        return text or None
    return text if text or prop.get("type") == "string" else None


def _number(text: str, integer: bool) -> Any:
    cleaned = text.replace(" ", "")
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")  # Dutch decimal comma
    try:
        number = float(cleaned)
    except ValueError:
        return text
    if number != number or number in (float("inf"), float("-inf")):
        return text
    if number.is_integer():
        return int(number)
    return text if integer else number


def _iso_date(text: str) -> str:
    """Accept 2029-03-15 (the date picker) and 15-03-2029 (typed the Dutch way)."""
    match = _DUTCH_DATE.match(text)
    if match:
        day, month, year = (int(g) for g in match.groups())
        try:
            return date(year, month, day).isoformat()
        except ValueError:
            return text
    return text


def validate(schema: dict[str, Any], data: dict[str, Any], language: str = "nl") -> dict[str, str]:
    """Field name -> what to fix, in the page's language; empty when the data is valid."""
    errors: dict[str, str] = {}
    checker = Draft202012Validator.FORMAT_CHECKER  # as the engine checks: 2026-02-30 is no date
    for error in sorted(Draft202012Validator(schema, format_checker=checker).iter_errors(data), key=_depth):
        name = _field_of(error)
        prop = _prop_at(schema, name)
        errors.setdefault(name, message_for(error, prop, language))
    return errors


def _depth(error: ValidationError) -> tuple[int, str]:
    return (len(error.path), error.validator)


def _field_of(error: ValidationError) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        # jsonschema reports each missing property as its own error, naming it in the message.
        named = _REQUIRED.match(error.message)
        if named:
            return ".".join([*path, named.group(1)])
    # An array item's error belongs to the array's field: that is the input on the page.
    return ".".join(p for p in path if not p.isdigit()) or FORM_LEVEL


def _prop_at(schema: dict[str, Any], name: str) -> dict[str, Any]:
    node: Any = schema
    for part in name.split("."):
        node = (node.get("properties") or {}).get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def facade_errors(fields_by_path: dict[str, str] | None) -> dict[str, str]:
    """The facade's refusal (``{"a/b": message}``, ``(form)`` for the whole) in our names."""
    result = {}
    for path, message in (fields_by_path or {}).items():
        result[FORM_LEVEL if path == "(form)" else path.replace("/", ".")] = message
    return result


def field_labels(forms: dict[str, Any], language: str) -> dict[str, str]:
    """Variable name -> the title a form of the process gives it, for showing case data that
    other tasks collected (a mentor reads the "Kennis" the candidate wrote)."""
    labels: dict[str, str] = {}
    for schema in forms.values():
        for name, prop in ((schema or {}).get("properties") or {}).items():
            if isinstance(prop, dict) and prop.get("title") and name not in labels:
                labels[name] = pick(prop["title"], language)
    return labels
