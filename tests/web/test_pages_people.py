"""The People pages as the office and admins use them: an admin deactivates an account (the
person cannot sign in, their open session ends, their API token stops working) and reactivates
it; nobody else can; the office sets who is invoiced (person or organisation with KvK number,
OIN, VAT number), checked field by field, and bad input changes nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from certflow.services import accounts
from certflow.store.db import session_scope
from certflow.web.app import create_app
from tests.web.pages_support import ADDRESS, PASSWORD, Browser, person
from tests.support import create_user


@pytest.fixture
def people(sqlite_url: str) -> dict[str, str]:
    found = {"ada": person("ada", ["admin"], staff=True), "olga": person("olga", ["office"], staff=True),
             "cas": person("cas", ["candidate"], address=ADDRESS)}
    with session_scope() as s:
        create_user(s, "tim", "Tim Script", ["office"], is_staff=True, token="token-tim",
                    password=PASSWORD)
    found["tim"] = "tim@example.org"
    return found


def signed_in(email: str) -> Browser:
    b = Browser()
    b.sign_in(email)
    return b


def _account(username: str) -> accounts.Account:
    with session_scope() as s:
        return accounts.get(s, username)


def test_an_admin_deactivates_and_reactivates_an_account(people: dict[str, str]) -> None:
    admin = signed_in(people["ada"])
    tim = signed_in(people["tim"])
    api = TestClient(create_app())
    assert api.get("/api/inbox", headers={"Authorization": "Bearer token-tim"}).status_code == 200
    page = admin.get("/admin/people/tim").text
    assert "Account deactiveren" in page
    done = admin.post("/admin/people/tim/active", {"active": "0"}, form_page="/admin/people/tim",
                      follow_redirects=True)
    assert done.status_code == 200 and "Het account is gedeactiveerd" in done.text
    assert not _account("tim").is_active
    # Their open session is over, their token refused, and they cannot sign in again.
    assert tim.get("/inbox", follow_redirects=False).status_code == 303
    assert api.get("/api/inbox", headers={"Authorization": "Bearer token-tim"}).status_code == 403
    again = Browser()
    refused = again.post("/sign-in", {"email": people["tim"], "password": PASSWORD},
                         follow_redirects=False)
    assert refused.status_code != 303
    assert "gedeactiveerd" in admin.get("/admin/people").text
    # Reactivated: signing in and the token work again.
    back = admin.post("/admin/people/tim/active", {"active": "1"}, form_page="/admin/people/tim",
                      follow_redirects=True)
    assert "weer actief" in back.text and _account("tim").is_active
    assert api.get("/api/inbox", headers={"Authorization": "Bearer token-tim"}).status_code == 200
    signed_in(people["tim"])


def test_only_admins_deactivate_and_not_themselves(people: dict[str, str]) -> None:
    office = signed_in(people["olga"])
    assert "Account deactiveren" not in office.get("/admin/people/tim").text
    refused = office.post("/admin/people/tim/active", {"active": "0"}, form_page="/admin/people/tim")
    assert refused.status_code == 403 and _account("tim").is_active
    admin = signed_in(people["ada"])
    assert "Account deactiveren" not in admin.get("/admin/people/ada").text
    own = admin.post("/admin/people/ada/active", {"active": "0"}, form_page="/admin/people/ada")
    assert own.status_code == 422 and "eigen account" in own.text
    assert _account("ada").is_active


def _person_form(account: accounts.Account, **changes: str) -> dict[str, str]:
    values = {"display_name": account.display_name, "email": account.email, "language": "nl",
              "street": ADDRESS["street"], "postal_code": ADDRESS["postal_code"],
              "city": ADDRESS["city"], "country": "NL", "customer_type": "person",
              "kvk_number": "", "oin": "", "vat_id": ""}
    return {**values, **changes}


def test_the_office_sets_who_is_invoiced(people: dict[str, str]) -> None:
    office = signed_in(people["olga"])
    page = office.get("/admin/people/cas").text
    assert 'name="customer_type"' in page and 'name="kvk_number"' in page and 'name="vat_id"' in page
    form = _person_form(_account("cas"), customer_type="organisation", kvk_number="1234 5678",
                        vat_id="nl 0044.95.445.B01")
    saved = office.post("/admin/people/cas", form, form_page="/admin/people/cas", follow_redirects=True)
    assert saved.status_code == 200 and "opgeslagen" in saved.text
    cas = _account("cas")
    assert (cas.customer_type, cas.kvk_number, cas.vat_id) == ("organisation", "12345678", "NL004495445B01")
    assert 'value="12345678"' in saved.text


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"customer_type": "organisation"}, "kvk_number", "KvK-nummer of het OIN"),
    ({"customer_type": "organisation", "kvk_number": "1234"}, "kvk_number", "8 cijfers"),
    ({"customer_type": "organisation", "oin": "123"}, "oin", "20 cijfers"),
    ({"customer_type": "organisation", "kvk_number": "12345678", "vat_id": "NL123456789B99"},
     "vat_id", "geen geldig btw-nummer"),
    ({"customer_type": "person", "kvk_number": "12345678"}, "customer_type", "Alleen een organisatie"),
    ({"customer_type": "company"}, "customer_type", "particulier of een organisatie"),
])
def test_bad_customer_data_is_refused_per_field_and_changes_nothing(
        people: dict[str, str], changes: dict[str, str], field: str, message: str) -> None:
    office = signed_in(people["olga"])
    before = _account("cas")
    refused = office.post("/admin/people/cas", _person_form(before, **changes),
                          form_page="/admin/people/cas")
    assert refused.status_code == 422
    assert f'id="{field}-error"' in refused.text and message in refused.text
    assert _account("cas") == before


def test_an_oin_alone_is_enough_for_an_organisation(people: dict[str, str]) -> None:
    office = signed_in(people["olga"])
    form = _person_form(_account("cas"), customer_type="organisation", oin="00000001003214345000")
    assert office.post("/admin/people/cas", form, form_page="/admin/people/cas").status_code == 200
    assert _account("cas").oin == "00000001003214345000"


def test_only_an_admin_changes_a_staff_accounts_e_mail_address(people: dict[str, str]) -> None:
    """The address is where a reset link goes: the office changing an admin's would hand the
    office the admin's account. The office still completes the rest, and a candidate's address."""
    office = signed_in(people["olga"])
    page = office.get("/admin/people/ada").text
    assert 'name="email"' not in page and people["ada"] in page
    ada = _account("ada")
    refused = office.post("/admin/people/ada", _person_form(ada, email="olga.private@example.net"),
                          form_page="/admin/people/ada")
    assert refused.status_code == 422 and "Alleen een beheerder" in refused.text
    assert _account("ada").email == ada.email
    saved = office.post("/admin/people/ada", {k: v for k, v in _person_form(ada, city="Zwolle").items()
                                              if k != "email"}, form_page="/admin/people/ada", follow_redirects=False)
    assert saved.status_code == 303, saved.text
    assert (_account("ada").email, _account("ada").address["city"]) == (ada.email, "Zwolle")
    cas = _account("cas")
    moved = office.post("/admin/people/cas", _person_form(cas, email="cas.new@example.org"),
                        form_page="/admin/people/cas", follow_redirects=False)
    assert moved.status_code == 303 and _account("cas").email == "cas.new@example.org"
    admin = signed_in(people["ada"])
    assert 'name="email"' in admin.get("/admin/people/olga").text
    olga = _account("olga")
    done = admin.post("/admin/people/olga", _person_form(olga, email="olga.new@example.org", roles="office"),
                      form_page="/admin/people/olga", follow_redirects=False)
    assert done.status_code == 303 and _account("olga").email == "olga.new@example.org"


def test_a_reset_link_asked_for_before_an_e_mail_change_is_void_after_it(people: dict[str, str]) -> None:
    from certflow.services import access
    from certflow.settings import get_settings

    with session_scope() as s:
        _, token = access.request_reset(s, get_settings(), people["cas"])  # type: ignore[misc]
    with session_scope() as s:
        assert access.reset_account(s, token) is not None
        accounts.update(s, "cas", {"email": "cas.elsewhere@example.org"})
    with session_scope() as s:
        assert access.reset_account(s, token) is None


@pytest.mark.parametrize("roles", [["assessor", "committee"], ["mentor"], ["supervisor"]])
def test_the_office_cannot_change_the_address_of_someone_who_judges_cases(
        people: dict[str, str], roles: list[str]) -> None:
    """An assessor, committee member, mentor or supervisor is no staff, but their verdicts
    decide certifications: the office setting their address to its own, then asking a reset
    link, signed in as them. An admin's to change, as a staff member's."""
    person("eva", roles)
    office = signed_in(people["olga"])
    assert 'name="email"' not in office.get("/admin/people/eva").text
    eva = _account("eva")
    refused = office.post("/admin/people/eva", _person_form(eva, email="olga.private@example.net"),
                          form_page="/admin/people/eva")
    assert refused.status_code == 422 and "Alleen een beheerder" in refused.text
    assert _account("eva").email == eva.email
    admin = signed_in(people["ada"])
    moved = admin.post("/admin/people/eva", _person_form(eva, email="eva.new@example.org", roles=roles[0]),
                       form_page="/admin/people/eva", follow_redirects=False)
    assert moved.status_code == 303 and _account("eva").email == "eva.new@example.org"
