"""The studio's form and fee-table editors in Chromium, as a process owner uses them: change a
form field's label and see the assignee's form preview follow; change the certification fee
in the dmn-js decision table and see the invoice preview priced from the edited table. Nothing
is deployed here (the app is shared with other browser tests): drafts are saved, then discarded."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from tests.browser.conftest import UI, App

pytestmark = pytest.mark.browser


def _errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    return errors


def test_form_label_change_shows_in_the_preview(app: App, ui: Callable[..., UI]) -> None:
    app.person("forms_owner", ["process_owner"], is_staff=True)
    owner = ui("forms_owner")
    errors = _errors(owner.page)
    owner.visit("/studio/certification/forms", shot="studio-forms")
    owner.page.get_by_role("link", name="eligibility_check.json").click()
    page = owner.page
    preview = page.locator("#form-preview")
    assert preview.get_by_text("Toelaatbaar", exact=True).count() == 1
    owner.check("studio-form")

    source = page.locator("#schema")
    source.fill(source.input_value().replace('"Toelaatbaar / Eligible"', '"Voldoet aan de eisen / Eligible"'))
    page.locator("#form-preview").get_by_text("Voldoet aan de eisen").wait_for()
    assert page.locator("#form-preview").get_by_text("Toelaatbaar", exact=True).count() == 0
    page.get_by_label("Voorbeeld in").select_option("en")
    page.locator("#form-preview #preview-title:has-text('Eligibility check')").wait_for()
    owner.check("studio-form-preview-en")

    source.fill(source.input_value().replace('"type": "boolean"', '"type": "yes-or-no"', 1))
    page.locator("#form-preview [data-schema-errors]").wait_for()
    assert "geen geldig JSON Schema bij properties → eligible → type" in page.locator("#form-preview").inner_text()
    owner.check("studio-form-schema-error")
    assert not errors, errors


def _cell(page: Any, entry: str) -> Any:
    return page.locator(f'#dmn-editor [data-element-id="{entry}"]')


def test_fee_table_edit_prices_the_preview_invoice(app: App, ui: Callable[..., UI]) -> None:
    app.person("fees_owner", ["process_owner"], is_staff=True)
    owner = ui("fees_owner")
    errors = _errors(owner.page)
    owner.visit("/studio")
    owner.page.get_by_role("link", name="Tarief- en btw-tabellen").click()
    page = owner.page
    page.wait_for_selector("#dmn-editor[data-ready='true']")
    gross = page.locator("#invoice-preview [data-gross]")
    assert gross.inner_text() == "€ 786,50"
    owner.check("studio-fees")

    cell = _cell(page, "certification_2015_net")
    cell.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("700.00")
    page.locator("#invoice-preview [data-gross]:has-text('€ 847,00')").wait_for()
    assert "700.00" in page.locator("#content").input_value()
    owner.check("studio-fees-preview")

    page.get_by_label("Factuurdatum").fill("2014-06-01")
    page.locator("#invoice-preview [data-preview-problems]").wait_for()
    assert "geen tarief voor product 'certification' op 2014-06-01" in page.locator("#invoice-preview").inner_text()

    page.get_by_role("button", name="Concept opslaan").click()
    page.get_by_text("Tabel als concept bewaard").wait_for()
    page.wait_for_selector("#dmn-editor[data-ready='true']")
    assert _cell(page, "certification_2015_net").inner_text().strip() == "700.00"
    owner.check("studio-fees-saved")
    page.get_by_role("button", name="Concept weggooien").click()
    page.wait_for_selector("#dmn-editor[data-ready='true']")
    assert _cell(page, "certification_2015_net").inner_text().strip() == "650.00"
    assert not errors, errors


def test_email_text_change_shows_in_the_mail_preview(app: App, ui: Callable[..., UI]) -> None:
    app.person("mail_owner", ["process_owner"], is_staff=True)
    owner = ui("mail_owner")
    errors = _errors(owner.page)
    owner.visit("/studio/emails", shot="studio-emails")
    owner.page.locator('a[href="/studio/emails/edit/certification/application_received.nl.txt"]').click()
    page = owner.page
    assert "We hebben uw aanvraag" in page.locator("#email-preview [data-subject]").inner_text()
    owner.check("studio-email")
    source = page.locator("#content")
    source.fill(source.input_value().replace("Subject: We hebben uw aanvraag voor certificering ontvangen",
                                             "Subject: Welkom, {{ recipient_name }}"))
    page.locator("#email-preview [data-subject]:has-text('Welkom, Anna de Vries')").wait_for()
    source.fill(source.input_value().replace("{{ recipient_name }}", "{{ nickname }}"))
    page.locator("#email-preview [data-template-errors]").wait_for()
    assert "'nickname' is undefined" in page.locator("#email-preview").inner_text()
    owner.check("studio-email-error")
    assert not errors, errors
