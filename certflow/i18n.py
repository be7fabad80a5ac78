"""Languages of the pages: Dutch (default) and English, from Babel message catalogues.

Source strings are English; ``certflow/locale/<lang>/LC_MESSAGES/messages.po`` holds the
translations. The .po files are the only thing committed: they are compiled in memory the
first time a language is asked for, so a fresh clone needs no build step and a stale .mo can
never shadow an edited .po.

Mark a string for translation where it is made but translated later (a service's error
message, a navigation label) with ``N_("...")``; translate it where it is shown with
``translations(lang).gettext(text)``. Update the catalogues after changing texts::

    .venv/bin/pybabel extract -F babel.cfg -k N_ -o certflow/locale/messages.pot .
    .venv/bin/pybabel update -i certflow/locale/messages.pot -d certflow/locale
    (translate the new entries in certflow/locale/nl/LC_MESSAGES/messages.po)

tests/web/test_i18n.py fails when a text on a page has no Dutch translation.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("nl", "en")
DEFAULT_LANGUAGE = "nl"
LANGUAGE_NAMES = {"nl": "Nederlands", "en": "English"}


def N_(text: str) -> str:  # noqa: N802  (the name gettext tools look for)
    """Mark ``text`` for extraction without translating it now."""
    return text


class Message(str):
    """An English message with parameters, translatable later: what the facade, services and
    guards raise or return (``Forbidden(Message(N_("task %(task)s is not yours"), task=id))``).

    It *is* the English text with the parameters filled in, so the API, the CLI, logs and
    tests see what they always saw; a page shows it in the visitor's language with
    ``translate`` (the templates' ``t`` filter), which translates the template and fills in
    the same parameters.
    """

    template: str
    params: dict[str, object]

    def __new__(cls, template: str, /, **params: object) -> "Message":
        made = super().__new__(cls, template % params if params else template)
        made.template, made.params = template, params
        return made

    def __reduce__(self) -> tuple[object, ...]:  # pickles (Celery, multiprocessing) keep it whole
        return (_message, (self.template, self.params))


def joined(parts: list[str], separator: str = "; ") -> str:
    """Several messages as one (each translated on its own where shown)."""
    if len(parts) == 1:
        return parts[0]
    return Message(separator.join(f"%(p{n})s" for n in range(len(parts))),
                   **{f"p{n}": part for n, part in enumerate(parts)})


def _message(template: str, params: dict[str, object]) -> Message:
    return Message(template, **params)


def normalise(language: str | None) -> str:
    """A supported language code for whatever a cookie, header or account says."""
    code = (language or "").strip().lower()[:2]
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> NullTranslations:
    """The compiled catalogue of ``language`` (English is the source: no catalogue needed)."""
    po = LOCALE_DIR / normalise(language) / "LC_MESSAGES" / "messages.po"
    if not po.is_file():
        return NullTranslations()
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=normalise(language))
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer)


Words = dict[str, Callable[[Any, str], str]]


class Day(date):
    """A date inside a ``Message``: written "15 March 2029" in the English text; a page writes
    it in its own language (``translate``'s ``words["date"]``)."""

    def __str__(self) -> str:
        return f"{self.day} {_ENGLISH_MONTHS[self.month - 1]} {self.year}"

    @classmethod
    def of(cls, value: date) -> "Day":
        return cls(value.year, value.month, value.day)


_ENGLISH_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
                   "September", "October", "November", "December")


def translate(language: str, text: str, words: Words | None = None) -> str:
    """``text`` in ``language``: a ``Message`` by its template, its parameters filled in after
    (a parameter named in ``words`` is passed through that function first, to put a code
    such as a group into words; a ``Day`` through ``words["date"]``); any other string as a
    catalogue entry. Text the catalogue does not know stays English."""
    if not isinstance(text, Message):
        return gettext(language, text) if text else ""
    translated = gettext(language, text.template)
    if not text.params:
        return translated
    words = words or {}
    params: dict[str, Any] = {}
    for name, value in text.params.items():
        if isinstance(value, Message):
            value = translate(language, value, words)
        elif isinstance(value, date) and "date" in words:
            value = words["date"](value, language)
        elif name in words and isinstance(value, str):
            value = words[name](value, language)
        params[name] = value
    try:
        return translated % params
    except (KeyError, ValueError, TypeError):  # a translation that lost a parameter
        return str.__str__(text)


def gettext(language: str, text: str) -> str:
    return translations(language).gettext(text)


def pick_language(account_language: str | None, cookie: str | None,
                  accept_language: str | None) -> str:
    """The language of a page: a signed-in person's own language (the switch changes it),
    else the visitor's choice (cookie), else what the browser asks for, else Dutch."""
    for choice in (account_language, cookie):
        if choice and choice[:2].lower() in LANGUAGES:
            return choice[:2].lower()
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE
