"""The fee table in Chromium: deploying shows first which rows and cells change against the live
version, and deploys only on confirm; the table's versions page then compares two versions
row by row. On an app of its own: a deployed fee change would reprice the other tests' invoices."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Callable

import pytest

from tests.browser.conftest import UI, App, running_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    with running_app(tmp_path_factory) as the_app:
        yield the_app


def test_table_deploy_shows_the_changed_cells_then_versions_compare(app: App, ui: Callable[..., UI]) -> None:
    app.person("table_owner", ["process_owner"], is_staff=True)
    owner = ui("table_owner")
    page = owner.page
    owner.visit("/studio/shared/fees.dmn")
    page.wait_for_selector("#dmn-editor[data-ready='true']")
    # What the decision table editor writes into the form on a cell edit.
    page.evaluate("""() => { const c = document.getElementById('content');
        c.value = c.value.replace('<text>650.00</text>', '<text>690.00</text>'); }""")
    page.get_by_role("button", name="Tabelconcepten uitrollen").click()
    page.wait_for_selector("[data-table-diff]")
    row = page.locator("tr", has_text="690.00")
    assert "650.00" in row.inner_text() and "net" in row.inner_text()
    assert "0 rijen toegevoegd, 0 verwijderd, 1 gewijzigd." in page.content()
    owner.check("studio-table-deploy-review")

    page.get_by_role("button", name="Uitrollen", exact=True).click()
    page.wait_for_selector("text=Versie 2 is live")
    page.get_by_role("link", name="Versies vergelijken").click()
    compare = page.locator("[data-compare]")
    compare.wait_for()
    assert "Van versie 1 naar versie 2" in compare.inner_text()
    assert "650.00" in compare.inner_text() and "690.00" in compare.inner_text()
    owner.check("studio-table-versions")
