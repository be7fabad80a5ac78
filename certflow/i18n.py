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
from functools import lru_cache
from pathlib import Path

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
