"""A person changing their own e-mail address on Mijn account, as a browser (in-process) sees
it: the page answers the same whether or not the new address has an account, the address
changes only by the link mailed to it (once, for its owner, not when the address got an
account meanwhile), the old address is told; staff still change someone's address directly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from certflow.services import access, accounts
from certflow.settings import get_settings
from certflow.store.accounts import EmailChange, PendingSignUp
from certflow.store.db import session_scope
from tests.web.pages_support import ADDRESS, PASSWORD, Browser, mailed_link, mails, person

CONFIRM = "/account/email/confirm/"


@pytest.fixture
def people(sqlite_url: str) -> dict[str, str]:
    return {"cas": person("cas", ["candidate"], address=ADDRESS),
            "bea": person("bea", ["candidate"], address=ADDRESS),
            "olga": person("olga", ["office"], staff=True)}


def signed_in(email: str) -> Browser:
    b = Browser()
    b.sign_in(email)
    return b


def _form(username: str, **changes: str) -> dict[str, str]:
    with session_scope() as s:
        account = accounts.get(s, username)
    values = {"display_name": account.display_name, "email": account.email,
              "date_of_birth": "1985-03-15", "language": account.language, **ADDRESS}
    return {**values, **changes}


def _email(username: str) -> str:
    with session_scope() as s:
        return accounts.get(s, username).email


def _link(to: str) -> str:
    return mailed_link(to, CONFIRM)


def _changes() -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(EmailChange)) or 0


def test_the_answer_is_the_same_whether_or_not_the_new_address_has_an_account(
        people: dict[str, str]) -> None:
    """It said 'Er is al een account met dit e-mailadres.' (422) for an address with an account
    and saved (303) one without: any candidate could ask who has an account. And it took the
    address at once, so an account could take a stranger's."""
    taken = signed_in(people["cas"]).post("/account", _form("cas", email=people["olga"]),
                                          follow_redirects=False)
    free = signed_in(people["bea"]).post("/account", _form("bea", email="bea.new@example.org"),
                                         follow_redirects=False)
    assert taken.status_code == free.status_code == 303
    assert taken.headers["location"] == free.headers["location"] == "/account?saved=email"
    assert taken.text == free.text == ""
    assert (_email("cas"), _email("bea")) == (people["cas"], people["bea"])  # not yet
    pages = {who: signed_in(people[who]).get("/account").text for who in ("cas", "bea")}
    assert "Er is al een account" not in pages["cas"]
    for who, new in (("cas", people["olga"]), ("bea", "bea.new@example.org")):
        page = pages[who]
        assert f"Wij hebben een link gestuurd naar {new}; uw adres verandert als u die volgt." in page
        assert "Deze wijziging annuleren" in page
        assert f'name="email" type="email" value="{people[who]}"' in page  # still the old one
    # Only the owners learn more, in their mail: the free address its link, the taken one's
    # owner a notice without one (nothing to confirm: it can never be).
    [(subject, text)] = mails("bea.new@example.org")
    assert subject == "Bevestig uw nieuwe e-mailadres"
    # No name in it: the account's name is typed by its holder, and the address may be a
    # stranger's (as a sign-up's mail).
    assert text.startswith("Beste heer/mevrouw,") and "Bea" not in text
    [(subject, text)] = mails(people["olga"])
    assert subject == "Iemand probeerde uw e-mailadres voor een ander account te gebruiken"
    assert CONFIRM not in text and "cas" not in text.lower()  # nor who asked
    # A second try the same day does not mail the owner again (no flood from a script).
    signed_in(people["cas"]).post("/account", _form("cas", email=people["olga"]))
    assert len(mails(people["olga"])) == 1


def test_the_old_address_is_told_and_the_other_fields_save_at_once(people: dict[str, str]) -> None:
    cas = signed_in(people["cas"])
    done = cas.post("/account", _form("cas", email="Cas.New@Example.org", display_name="Cas Nieuw",
                                      city="Zwolle"))
    assert done.status_code == 200 and "Uw wijzigingen zijn opgeslagen." in done.text
    with session_scope() as s:
        account = accounts.get(s, "cas")
    assert (account.display_name, account.address["city"], account.email) == \
        ("Cas Nieuw", "Zwolle", people["cas"])
    [(subject, text)] = mails(people["cas"])
    assert subject == "Er is gevraagd om uw e-mailadres te wijzigen"
    assert "cas.new@example.org" in text and CONFIRM not in text
    assert len(mails("cas.new@example.org")) == 1
    # Saving without a new address asks for nothing and mails nobody.
    cas.post("/account", _form("cas", display_name="Cas Tester", email=people["cas"].upper()))
    assert len(mails(people["cas"])) == 1 and _changes() == 1


def test_the_link_changes_the_address_once_and_only_for_its_owner(people: dict[str, str]) -> None:
    cas = signed_in(people["cas"])
    with session_scope() as s:
        _, reset_token = access.request_reset(s, get_settings(), people["cas"])  # type: ignore[misc]
        # someone else's sign-up waiting with the address cas is moving to
        s.add(PendingSignUp(token_hash="h" * 64, email="cas.new@example.org", display_name="X",
                            language="nl", address={}, date_of_birth=None, password_hash="x",
                            created_at=access.wall_now(),
                            expires_at=access.wall_now() + timedelta(hours=24)))
    cas.post("/account", _form("cas", email="cas.new@example.org"))
    link = _link("cas.new@example.org")
    # Not signed in: to sign in first, and back to the link.
    anonymous = Browser().get(link, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == f"/sign-in?next={link}"
    # Signed in as another account: refused, and the link stays usable for its owner.
    bea = signed_in(people["bea"])
    assert bea.get(link).status_code == 403
    other = bea.post(link, {}, form_page="/account")
    assert other.status_code == 403 and "ander account" in other.text
    assert (_email("bea"), _email("cas")) == (people["bea"], people["cas"])
    # The owner: a page with a button; opening it (a mail scanner does) changes nothing.
    page = cas.get(link)
    assert page.status_code == 200 and "cas.new@example.org" in page.text
    assert ">Bevestigen</button>" in page.text and _email("cas") == people["cas"]
    forged = cas.client.post(link, data={"csrf_token": "forged"})
    assert forged.status_code == 403 and _email("cas") == people["cas"]
    done = cas.post(link, {}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/account?saved=email-changed"
    assert _email("cas") == "cas.new@example.org"
    assert "Uw e-mailadres is gewijzigd." in cas.get(done.headers["location"]).text
    assert cas.get(link).status_code == 410  # used up
    assert cas.post(link, {}, form_page="/account").status_code == 410
    with session_scope() as s:
        assert access.reset_account(s, reset_token) is None  # sent to the old address: void
        assert s.scalars(select(PendingSignUp)).all() == []  # no sign-up waits with an account's address
    Browser().sign_in("cas.new@example.org")
    refused = Browser().post("/sign-in", {"email": people["cas"], "password": PASSWORD})
    assert refused.status_code == 401


def test_an_address_that_got_an_account_meanwhile_changes_nothing(people: dict[str, str]) -> None:
    cas = signed_in(people["cas"])
    cas.post("/account", _form("cas", email="wanted@example.org"))
    link = _link("wanted@example.org")
    person("dirk", ["candidate"], email="wanted@example.org")
    refused = cas.post(link, {}, form_page=link)
    assert refused.status_code == 409
    assert "Uw e-mailadres is niet gewijzigd" in refused.text and people["cas"] in refused.text
    assert (_email("cas"), _email("dirk")) == (people["cas"], "wanted@example.org")
    assert cas.get(link).status_code == 410 and _changes() == 0


def test_a_change_can_be_cancelled_and_a_newer_one_replaces_the_older(people: dict[str, str]) -> None:
    cas = signed_in(people["cas"])
    cas.post("/account", _form("cas", email="first@example.org"))
    first = _link("first@example.org")
    cas.post("/account", _form("cas", email="second@example.org"))
    second = _link("second@example.org")
    assert cas.get(first).status_code == 410 and _changes() == 1
    assert "second@example.org" in cas.get("/account").text
    done = cas.post("/account/email/cancel", {}, form_page="/account")
    assert done.status_code == 200 and "De wijziging van uw e-mailadres is geannuleerd." in done.text
    assert "second@example.org" not in done.text
    assert cas.get(second).status_code == 410 and _email("cas") == people["cas"]
    # An expired one is not shown, does not work, and goes at the next sign-in.
    cas.post("/account", _form("cas", email="third@example.org"))
    with session_scope() as s:
        s.execute(update(EmailChange).values(expires_at=access.wall_now() - timedelta(seconds=1)))
    assert "third@example.org" not in cas.get("/account").text
    assert cas.get(_link("third@example.org")).status_code == 410
    signed_in(people["bea"])
    assert _changes() == 0


def test_the_form_cannot_mail_an_address_over_and_over(people: dict[str, str]) -> None:
    """Limited as the forms anyone may post (access.mail_request, its own kind), alike for an
    address with and without an account: the refusal tells nothing either."""
    limit = get_settings().mail_requests_per_address
    refused = {}
    for who, new in (("cas", people["olga"]), ("bea", "nobody@example.org")):
        b = signed_in(people[who])
        for _ in range(limit):
            assert b.post("/account", _form(who, email=new), follow_redirects=False).status_code == 303
        refused[who] = b.post("/account", _form(who, email=new, display_name="Changed"))
        assert refused[who].status_code == 429 and 'id="email-error"' in refused[who].text
        assert "wacht 60 minuten" in refused[who].text
    assert len(mails("nobody@example.org")) == limit and len(mails(people["olga"])) == 1
    with session_scope() as s:  # nothing of the refused form was saved
        assert accounts.get(s, "cas").display_name == "Cas Tester"


def test_staff_still_change_a_persons_address_directly(people: dict[str, str]) -> None:
    """The office and admins are trusted and see every account: their change takes effect at
    once, and only they are told that an address has an account."""
    office = signed_in(people["olga"])
    form = {**_form("cas", email=people["bea"]), "customer_type": "person", "kvk_number": "",
            "oin": "", "vat_id": ""}
    taken = office.post("/admin/people/cas", form, form_page="/admin/people/cas")
    assert taken.status_code == 422 and "Er is al een account met dit e-mailadres." in taken.text
    with session_scope() as s:
        s.add(PendingSignUp(token_hash="s" * 64, email="cas.office@example.org", display_name="X",
                            language="nl", address={}, date_of_birth=None, password_hash="x",
                            created_at=access.wall_now(),
                            expires_at=access.wall_now() + timedelta(hours=24)))
    moved = office.post("/admin/people/cas", {**form, "email": "cas.office@example.org"},
                        form_page="/admin/people/cas", follow_redirects=False)
    assert moved.status_code == 303 and _email("cas") == "cas.office@example.org"
    assert mails("cas.office@example.org") == [] and _changes() == 0
    # The old address hears where the account's mail goes now; the refused change told nobody.
    [(subject, text)] = mails(people["cas"])
    assert subject == "Uw e-mailadres bij ons is gewijzigd"
    assert "cas.office@example.org" in text and "Antwoord dan op deze e-mail" in text
    # Saving the person again with the same address (any case) tells nobody.
    office.post("/admin/people/cas", {**form, "email": "CAS.office@example.org", "city": "Zwolle"},
                form_page="/admin/people/cas")
    assert len(mails(people["cas"])) == 1 and mails("cas.office@example.org") == []
    with session_scope() as s:
        assert s.scalars(select(PendingSignUp)).all() == []
    # A candidate cannot post the staff form.
    assert signed_in(people["bea"]).post("/admin/people/cas", form, form_page="/account").status_code == 403
