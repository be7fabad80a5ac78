"""What a person reads when a form field is refused: one sentence saying what to do, in the
page's language, instead of jsonschema's "'' is too short"."""

from __future__ import annotations

from typing import Any

from jsonschema.exceptions import ValidationError

_TEXT: dict[str, dict[str, str]] = {
    "fill": {"nl": "Vul dit veld in.", "en": "Fill in this field."},
    "choose": {"nl": "Kies een antwoord.", "en": "Choose an answer."},
    "confirm": {"nl": "Vink dit aan om te bevestigen.", "en": "Tick this box to confirm."},
    "min_length": {"nl": "Gebruik minstens {n} tekens.", "en": "Use at least {n} characters."},
    "max_length": {"nl": "Gebruik hoogstens {n} tekens (nu {m}).",
                   "en": "Use at most {n} characters (now {m})."},
    "number": {"nl": "Vul een getal in, bijvoorbeeld 12,5.", "en": "Enter a number, for example 12.5."},
    "integer": {"nl": "Vul een geheel getal in, bijvoorbeeld 12.", "en": "Enter a whole number, for example 12."},
    "minimum": {"nl": "Vul een getal van minstens {n} in.", "en": "Enter a number of at least {n}."},
    "maximum": {"nl": "Vul een getal van hoogstens {n} in.", "en": "Enter a number of at most {n}."},
    "date": {"nl": "Vul een datum in als 15-03-2029.", "en": "Enter a date like 15-03-2029."},
    "enum": {"nl": "Kies een van de mogelijkheden.", "en": "Choose one of the options."},
    "pattern": {"nl": "Deze invoer heeft niet de juiste vorm.", "en": "This is not in the expected format."},
    "extra": {"nl": "Het formulier bevat een onbekend veld: {m}.", "en": "The form has an unknown field: {m}."},
    "other": {"nl": "Deze invoer is niet geldig: {m}.", "en": "This is not valid: {m}."},
}


def text(key: str, language: str, **values: Any) -> str:
    return _TEXT[key]["en" if language == "en" else "nl"].format(**values)


def message_for(error: ValidationError, prop: dict[str, Any], language: str) -> str:
    kind, validator = prop.get("type"), error.validator
    if validator == "required":
        if prop.get("const") is True:
            return text("confirm", language)
        return text("choose" if kind == "boolean" or "enum" in prop else "fill", language)
    if validator == "const":
        return text("confirm", language)
    if validator == "minLength":
        limit = int(error.validator_value)
        return text("fill", language) if limit <= 1 else text("min_length", language, n=limit)
    if validator == "maxLength":
        return text("max_length", language, n=error.validator_value, m=len(str(error.instance)))
    if validator == "type":
        if error.validator_value == "integer":
            return text("integer", language)
        if error.validator_value == "number":
            return text("number", language)
        if error.validator_value == "boolean":
            return text("choose", language)
    if validator in ("minimum", "maximum"):
        return text(validator, language, n=_plain(error.validator_value))
    if validator in ("pattern", "format") and prop.get("format") == "date":
        return text("date", language)
    if validator == "enum":
        return text("enum", language)
    if validator == "pattern":
        return text("pattern", language)
    if validator == "additionalProperties":
        return text("extra", language, m=error.message)
    return text("other", language, m=error.message)


def _plain(number: Any) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)
