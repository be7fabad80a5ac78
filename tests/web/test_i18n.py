"""Every text on the pages has a Dutch translation, and the catalogue compiles."""

from __future__ import annotations

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from certflow import i18n
from certflow.settings import ROOT

# handlers/: the start guards' refusals a candidate reads (certflow.i18n.Message).
METHODS = [("certflow/**.py", "python"), ("handlers/**.py", "python"),
           ("certflow/web/templates/**.html", "jinja2")]
OPTIONS = {"certflow/web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def _extracted() -> set[str]:
    ids = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), METHODS, OPTIONS, keywords=KEYWORDS):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


def test_every_page_text_has_a_dutch_translation() -> None:
    with (i18n.LOCALE_DIR / "nl" / "LC_MESSAGES" / "messages.po").open("rb") as fp:
        catalog = read_po(fp, locale="nl")
    translated = {(m.id if isinstance(m.id, str) else m.id[0]) for m in catalog
                  if m.id and (all(m.string) if isinstance(m.string, tuple) else m.string)
                  and "fuzzy" not in m.flags}
    missing = sorted(_extracted() - translated)
    assert not missing, ("no Dutch translation (see certflow/i18n.py for the commands): "
                         + "; ".join(missing))


def test_catalogue_compiles_and_translates() -> None:
    i18n.translations.cache_clear()
    assert i18n.gettext("nl", "Sign in") == "Inloggen"
    assert i18n.gettext("en", "Sign in") == "Sign in"
    assert i18n.translations("nl").ngettext(
        "%(num)d registered professional found", "%(num)d registered professionals found", 2
    ) == "%(num)d geregistreerde professionals gevonden"


def test_language_choice_order() -> None:
    assert i18n.pick_language("en", "nl", "nl") == "en"  # the account's own language first
    assert i18n.pick_language(None, "en", "nl-NL,nl;q=0.9") == "en"
    assert i18n.pick_language(None, None, "en-GB,en;q=0.9") == "en"
    assert i18n.pick_language(None, None, "de-DE") == "nl"


def test_each_text_is_translated_once() -> None:
    """The catalogue is read with the last of two entries for one text winning, so a translator
    who edits the first one sees nothing change ("What to do" had two, and the page showed the
    second). Appending helpers must reuse an existing entry."""
    import re
    from collections import Counter

    po = (ROOT / "certflow" / "locale" / "nl" / "LC_MESSAGES" / "messages.po").read_text()
    keys = Counter(re.findall(r'^(?:msgctxt (".*")\n)?msgid ((?:".*"\n)+)', po, re.M))
    assert [key for key, n in keys.items() if n > 1 and key[1] != '""\n'] == []


def test_page_texts_are_translated_with_their_values_escaped() -> None:
    """``_`` and ``ngettext`` in a page: the Dutch text, the values filled in escaped (a task
    title is typed by a process owner), the plural chosen by the number; in a text template
    nothing is escaped."""
    from certflow.web.pages.rendering import environment

    env = environment("nl")
    page = env.from_string("{{ _('Select %(task)s for %(case)s', task=title, case='APP-1') }} | "
                           "{{ ngettext('%(num)s task, the soonest due first', "
                           "'%(num)s tasks, the soonest due first', n) }} | {{ _('100%% done') }}")
    assert page.render(title="<b>Check</b>", n=1) == (
        "&lt;b&gt;Check&lt;/b&gt; voor APP-1 selecteren | 1 taak, de vroegste termijn eerst | 100% done")
    assert "2 taken, de vroegste termijn eerst" in page.render(title="x", n=2)
    counted = env.from_string("{{ ngettext('%(num)d registered professional found', "
                              "'%(num)d registered professionals found', n) }}")
    assert counted.render(n=12) == "12 geregistreerde professionals gevonden"
    text = env.from_string("{% autoescape false %}{{ _('Select %(task)s for %(case)s', task=title, "
                           "case='APP-1') }}{% endautoescape %}")
    assert text.render(title="<b>Check</b>") == "<b>Check</b> voor APP-1 selecteren"
