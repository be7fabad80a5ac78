"""The fee and VAT tables' changes: before a deploy, the rows and cells it changes against the
live versions (and nothing deployed until confirmed); after, any two versions of a table
compared row by row: rows added, removed, and each changed cell with its column."""

from __future__ import annotations

import re
from typing import Any

from certflow.engine import table_diff
from tests.processes.driver import PROCESSES
from tests.web.test_pages_studio import Studio, site  # noqa: F401  (fixture)
from tests.web.test_pages_studio_tables import PAGE, _fees, _post, _state, raised

NET = "<text>650.00</text>"


def _rows(page: str) -> dict[str, list[str]]:
    """The diff table's rows: {rule: [text of each of its rows]}."""
    found: dict[str, list[str]] = {}
    for rule, cells in re.findall(r'<tr data-rule="([^"]+)">(.*?)</tr>', page, re.S):
        found.setdefault(rule, []).append(re.sub(r"<[^>]+>|\s+", " ", cells).split())
    return {k: [" ".join(v) for v in rows] for k, rows in found.items()}


def test_rows_added_removed_and_cells_changed() -> None:
    old = raised(_table_text(), close=True)
    new = old.replace('<outputEntry id="certification_2027_net"><text>700.00</text>',
                      '<outputEntry id="certification_2027_net"><text>710.00</text>')
    new = re.sub(r'\s*<rule id="book_2015">.*?</rule>', "", new, flags=re.S)
    change = table_diff.diff(old, new)
    assert change.counts() == {"added": 0, "removed": 1, "changed": 1}
    [changed] = [r for r in change.rows if r.kind == "changed"]
    assert (changed.rule, changed.cells) == ("certification_2027", {"net": ("700.00", "710.00")})
    [removed] = [r for r in change.rows if r.kind == "removed"]
    assert removed.rule == "book_2015" and removed.cells["product"] == ('"book"', None)
    added = table_diff.diff(_table_text(), old)
    assert {(r.rule, r.kind) for r in added.rows} == {("certification_2015", "changed"), ("certification_2027", "added")}
    assert table_diff.diff(old, old).empty


def _table_text() -> str:
    return (PROCESSES / "shared" / "fees.dmn").read_text(encoding="utf-8")


def test_deploy_review_shows_the_changes_and_deploys_nothing(site: dict[str, Any]) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    text = _fees(owner).replace(NET, "<text>690.00</text>", 1)
    review = _post(owner, PAGE + "/deploy/review", content=text, revision="0")
    assert review.status_code == 200
    rows = _rows(review.text)
    assert rows["certification_2015"] == ["certification_2015 gewijzigd net 650.00 690.00"]
    assert "0 rijen toegevoegd, 0 verwijderd, 1 gewijzigd." in review.text
    assert _state() == (1, 0)  # neither saved nor deployed
    # Confirming deploys exactly what was reviewed.
    done = _post(owner, PAGE + "/deploy", content=text, revision="0")
    assert done.status_code == 303 and _state() == (2, 0)
    # A broken table goes back to the table page with the problem, as deploy would refuse it.
    broken = _post(owner, PAGE + "/deploy/review", content=raised(text, close=False), revision="0")
    assert broken.status_code == 422 and "overlapt met regel" in broken.text


def test_versions_compare_row_by_row(site: dict[str, Any]) -> None:  # noqa: F811
    owner = Studio(site, "petra")
    assert "nog niets te vergelijken" in owner.b.get(PAGE + "/versions").text
    text = raised(_fees(owner))
    assert _post(owner, PAGE + "/deploy", content=text).status_code == 303
    page = owner.b.get(PAGE + "/versions").text  # the newest against the one before
    assert "Van versie 1 naar versie 2" in page
    rows = _rows(page)
    assert rows["certification_2015"] == [
        'certification_2015 gewijzigd date [date("2015-01-01")..date("9999-12-31")] '
        '[date("2015-01-01")..date("2026-12-31")]'.replace('"', "&#34;")]
    assert rows["certification_2027"][0].startswith("certification_2027 toegevoegd product – &#34;certification&#34;")
    assert "1 rijen toegevoegd, 0 verwijderd, 1 gewijzigd." in page
    back = owner.b.get(PAGE + "/versions?old=2&new=1").text
    assert "0 rijen toegevoegd, 1 verwijderd, 1 gewijzigd." in back
    assert owner.b.get(PAGE + "/versions?old=1&new=9").status_code == 404
