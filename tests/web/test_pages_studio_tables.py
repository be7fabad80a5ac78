"""The studio's fee and VAT tables: a process owner edits fees.dmn, sees what an invoice would
be on a given day priced from the edited table, saves a draft that prices nothing, and deploys
it as the next SharedTable version that invoices are priced from. Broken tables (overlapping or
gapped periods, not DMN, a DOCTYPE) are refused with the rule and reason, and nothing changes."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from certflow.engine.facade import Actor
from certflow.services.billing import fees
from certflow.settings import get_settings
from certflow.store.db import session_scope
from certflow.store.models import SharedTable
from certflow.store.studio_texts import StudioSharedDraft
from tests.processes.driver import PROCESSES
from tests.web.pages_support import person
from tests.web.test_pages_studio import Studio, site  # noqa: F401  (fixture)

PAGE = "/studio/shared/fees.dmn"
OLD = ('<inputEntry id="certification_2015_date"><text>[date("2015-01-01")..date("9999-12-31")]'
       '</text></inputEntry>')
NEW_RULE = """
      <rule id="certification_2027">
        <inputEntry id="certification_2027_product"><text>"certification"</text></inputEntry>
        <inputEntry id="certification_2027_date"><text>[date("2027-01-01")..date("9999-12-31")]</text></inputEntry>
        <outputEntry id="certification_2027_net"><text>700.00</text></outputEntry>
        <outputEntry id="certification_2027_cat"><text>"standard"</text></outputEntry>
        <outputEntry id="certification_2027_incl"><text>false</text></outputEntry>
        <outputEntry id="certification_2027_nl"><text>"Certificering"</text></outputEntry>
        <outputEntry id="certification_2027_en"><text>"Certification"</text></outputEntry>
      </rule>
    </decisionTable>"""


def _fees(owner: Studio) -> str:
    page = owner.b.get(PAGE)
    assert page.status_code == 200
    return fees_file()


def fees_file() -> str:
    with session_scope() as session:
        row = session.scalars(select(SharedTable).where(SharedTable.name == "fees.dmn")
                              .order_by(SharedTable.version.desc())).first()
        assert row is not None
        return row.content


def raised(text: str, close: bool = True) -> str:
    """The certification fee 700.00 from 2027 (the 2015 row closed the day before, or not)."""
    if close:
        text = text.replace(OLD, OLD.replace("9999-12-31", "2026-12-31"))
    return text.replace("</decisionTable>", NEW_RULE, 1)


def _post(owner: Studio, url: str, **data: str) -> Any:
    return owner.b.client.post(url, data={"csrf_token": owner.token, **data}, follow_redirects=False)


def _state() -> tuple[int, int]:
    with session_scope() as session:
        versions = session.scalar(select(func.count()).select_from(SharedTable)
                                  .where(SharedTable.name == "fees.dmn")) or 0
        drafts = session.scalar(select(func.count()).select_from(StudioSharedDraft)) or 0
        return int(versions), int(drafts)


def _live_price(on: date) -> Decimal:
    settings = get_settings()
    with session_scope() as session:
        return fees.deployed_tables(session, settings.var_dir, settings.processes_dir).price(
            "certification", on).net


@pytest.mark.parametrize("who", ["cas", "mila", "olga"])
def test_only_process_owners_edit_tables(site: dict[str, Any], who: str) -> None:  # noqa: F811
    other, text = Studio(site, who), raised(fees_file())
    assert other.b.get(PAGE).status_code == 403
    for url in (PAGE, PAGE + "/check", PAGE + "/preview", PAGE + "/deploy", PAGE + "/discard"):
        assert _post(other, url, content=text, product="certification", on="2027-01-01").status_code == 403
    assert _state() == (1, 0)


def test_page_serves_the_decision_table_editor_locally(site: dict[str, Any]) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    page = owner.b.get(PAGE).text
    assert "/static/vendor/dmn-js/dmn-modeler.production.min.js" in page and "cdn" not in page.lower()
    assert owner.b.get("/static/vendor/dmn-js/dmn-modeler.production.min.js").status_code == 200
    assert "€ 786,50" in page  # the sample invoice, priced from the live table


def test_preview_prices_from_the_edited_table(site: dict[str, Any]) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    text = raised(_fees(owner))
    on_2027 = _post(owner, PAGE + "/preview", content=text, product="certification", on="2027-01-01")
    assert on_2027.status_code == 200 and "€ 847,00" in on_2027.text and "€ 147,00" in on_2027.text
    on_2026 = _post(owner, PAGE + "/preview", content=text, product="certification", on="2026-12-31")
    assert "€ 786,50" in on_2026.text
    overlap = _post(owner, PAGE + "/preview", content=raised(fees_file(), close=False),
                    product="certification", on="2027-01-01")
    assert "certification_2027" in overlap.text and "overlapt met regel" in overlap.text
    unknown = _post(owner, PAGE + "/preview", content=text, product="tulip", on="2027-01-01")
    assert "geen tarief voor product &#39;tulip&#39; op 2027-01-01" in unknown.text
    assert _state() == (1, 0)  # previews save nothing


def test_save_check_deploy_makes_the_next_version_invoices_use(site: dict[str, Any]) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    text = raised(_fees(owner))
    checked = _post(owner, PAGE + "/check", content=text)
    assert checked.status_code == 200, checked.text[checked.text.find("data-problems"):][:1500]
    # dmn-js writes the XML anew, without comments: the table's manual is carried over
    saved = _post(owner, PAGE, content=re.sub(r"<!--.*?-->", "", text, flags=re.S))
    assert saved.status_code == 303 and _state() == (1, 1)
    assert _live_price(date(2027, 1, 1)) == Decimal("650.00")  # a draft prices nothing
    page = owner.b.get(saved.headers["location"]).text
    assert "certification_2027" in page and "concept" in page.lower()
    assert "fees, effective-dated" in page

    deployed = _post(owner, PAGE + "/deploy")
    assert deployed.status_code == 303 and "fees.dmn:2" in deployed.headers["location"]
    assert _state() == (2, 0)
    assert _live_price(date(2027, 1, 1)) == Decimal("700.00")
    assert _live_price(date(2026, 12, 31)) == Decimal("650.00")
    assert "Versie 2" in owner.b.get(PAGE).text

    # `certflow deploy` of the files afterwards makes the files' text the newest version again
    # (the files are the source there), without tripping over the text stored as version 1.
    site["engine"].deploy(Actor.system(), PROCESSES, only=["certification"])
    assert _live_price(date(2027, 1, 1)) == Decimal("650.00") and _state() == (2, 0)
    with session_scope() as session:
        assert session.scalars(select(SharedTable.version).where(SharedTable.name == "fees.dmn")
                               .order_by(SharedTable.version.desc())).first() == 3


@pytest.mark.parametrize("kind,reason,status", [
    ("overlap", "overlapt met regel", 422),
    ("gap", "gat voor &#39;certification&#39;", 422),
    ("not_dmn", "geen DMN-bestand", 422),
    ("doctype", "DOCTYPE", 422),
    ("not_xml", "geen geldige XML", 422),
])
def test_broken_tables_are_refused_with_the_reason(
        site: dict[str, Any], kind: str, reason: str, status: int) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    text = _fees(owner)
    broken = {
        "overlap": raised(text, close=False),
        "gap": raised(text).replace('date("2027-01-01")..', 'date("2027-02-01")..'),
        "not_dmn": "<html><body>fees</body></html>",
        "doctype": '<!DOCTYPE d [<!ENTITY e "x">]>' + text.split("?>", 1)[1],
        "not_xml": "fees: 650",
    }[kind]
    checked = _post(owner, PAGE + "/check", content=broken)
    assert checked.status_code == 422 and reason in checked.text and "data-problems" in checked.text
    if kind in ("overlap", "gap"):  # a draft may be work in progress, but is never deployed
        assert _post(owner, PAGE, content=broken).status_code == 303
        refused = _post(owner, PAGE + "/deploy")
        assert refused.status_code == 422 and reason in refused.text
        assert _state() == (1, 1)
    else:
        refused = _post(owner, PAGE, content=broken)
        assert refused.status_code == 422 and reason in refused.text
        assert _state() == (1, 0)
    assert _live_price(date(2027, 1, 1)) == Decimal("650.00")


def test_table_problems_are_said_in_the_owners_language(site: dict[str, Any]) -> None:  # noqa: F811
    """The rule, its row and the dates as the table writes them; the rest in the owner's words."""
    person("pete", ["process_owner"], staff=True, language="en")
    overlap = raised(_fees(Studio(site, "petra")), close=False)
    said = {}
    for who, owner in (("nl", Studio(site, "petra")), ("en", Studio({"pete": "pete@example.org"}, "pete"))):
        checked = _post(owner, PAGE + "/check", content=overlap)
        assert checked.status_code == 422
        said[who] = re.findall(r"<li><code>shared</code>: (.*?)</li>", checked.text)
    assert said == {
        "nl": ["fees.dmn: regel &#39;certification_2027&#39; (rij 6): &#39;certification&#39; vanaf 2027-01-01 "
               "overlapt met regel &#39;certification_2015&#39; (rij 1), die loopt tot en met 9999-12-31"],
        "en": ["fees.dmn: rule &#39;certification_2027&#39; (row 6): &#39;certification&#39; from 2027-01-01 "
               "overlaps rule &#39;certification_2015&#39; (row 1) which runs until 9999-12-31"],
    }


def test_unknown_table_and_deploy_without_drafts(site: dict[str, Any]) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    assert owner.b.get("/studio/shared/closing_days.json").status_code == 404
    refused = _post(owner, PAGE + "/deploy")
    assert refused.status_code == 422 and "er is geen concept van de tarieven- of btw-tabel" in refused.text
    assert _state() == (1, 0)


def test_deploy_takes_the_table_as_on_screen_and_refuses_it_whole(site: dict[str, Any]) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    text = _fees(owner)
    refused = _post(owner, PAGE + "/deploy", content=raised(text, close=False))
    assert refused.status_code == 422 and "overlapt met regel" in refused.text
    assert _state() == (1, 0)  # not even a draft
    done = _post(owner, PAGE + "/deploy", content=raised(text))
    assert done.status_code == 303 and _state() == (2, 0)
    assert _live_price(date(2027, 1, 1)) == Decimal("700.00")


def test_a_vat_change_prices_the_preview_and_goes_live_with_deploy(site: dict[str, Any]) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    assert owner.b.get("/studio/shared/vat.dmn").status_code == 200
    with session_scope() as session:
        vat = session.scalars(select(SharedTable.content).where(SharedTable.name == "vat.dmn")).one()
    old = '<inputEntry id="standard_2012_date"><text>[date("2012-10-01")..date("9999-12-31")]</text></inputEntry>'
    assert old in vat
    raised_vat = vat.replace(old, old.replace("9999-12-31", "2026-12-31")).replace("</decisionTable>", """
      <rule id="standard_2027">
        <inputEntry id="standard_2027_category"><text>"standard"</text></inputEntry>
        <inputEntry id="standard_2027_date"><text>[date("2027-01-01")..date("9999-12-31")]</text></inputEntry>
        <outputEntry id="standard_2027_rate"><text>22</text></outputEntry>
      </rule>
    </decisionTable>""", 1)
    shown = _post(owner, "/studio/shared/vat.dmn/preview", content=raised_vat, product="certification",
                  on="2027-01-01")
    assert "€ 793,00" in shown.text and "btw 22%" in shown.text
    assert _post(owner, "/studio/shared/vat.dmn/deploy", content=raised_vat).status_code == 303
    settings = get_settings()
    with session_scope() as session:
        tables = fees.deployed_tables(session, settings.var_dir, settings.processes_dir)
        assert tables.price("certification", date(2027, 1, 1)).vat_rate == Decimal("22")
        assert tables.price("certification", date(2026, 12, 31)).vat_rate == Decimal("21")


def test_comparing_an_over_large_version_is_a_clear_page(site: dict[str, Any]) -> None:  # noqa: F811
    """?old=99999999999999999999 overflowed the driver: a 500."""
    owner = Studio(site, "petra")
    page = owner.b.get("/studio/shared/fees.dmn/versions?old=99999999999999999999&new=1")
    assert page.status_code == 422 and "Dat is niet gelukt" in page.text
