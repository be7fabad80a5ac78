"""The public register (no sign-in) in pages: a search finds people by name or number, in
pages of a bounded size, so asking for one letter never returns the whole register."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from certflow.store.db import session_scope
from certflow.store.register import Certificate, RegisterEntry
from tests.support import create_user
from tests.web.pages_support import Browser

PEOPLE = 130  # more than a page of the site (50) and of the API (100)


@pytest.fixture
def register(sqlite_url: str) -> list[str]:
    """PEOPLE registered professionals, "Professional 000" … "Professional 129"."""
    now = datetime.now(timezone.utc)
    numbers = []
    with session_scope() as s:
        for n in range(PEOPLE):
            user, number = f"prof{n:03d}", f"RL-2019-{n:05d}"
            create_user(s, user, f"Professional {n:03d}", ["professional"])
            s.add(Certificate(id=f"c{n}", idempotency_key=f"k{n}", holder=user, register_number=number,
                              level="RL", valid_from=date(2026, 3, 15), valid_until=date(2029, 3, 15),
                              status="valid", language="nl", created_at=now))
            s.flush()
            s.add(RegisterEntry(id=f"e{n}", holder=user, register_number=number, certificate_id=f"c{n}",
                                status="valid", valid_until=date(2029, 3, 15), updated_at=now))
            numbers.append(number)
    return numbers


def test_the_api_pages_through_the_register_by_name(register: list[str]) -> None:
    client = Browser().client
    first = client.get("/public/register").json()
    assert [row["register_number"] for row in first] == register[:100]  # by name, a page of 100
    rest = client.get("/public/register", params={"offset": 100}).json()
    assert [row["register_number"] for row in rest] == register[100:]  # shorter: the last page
    small = client.get("/public/register", params={"q": "professional 1", "limit": 5, "offset": 10})
    assert [row["name"] for row in small.json()] == [f"Professional {n}" for n in range(110, 115)]
    for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "many"}):
        refused = client.get("/public/register", params=bad)
        assert refused.status_code == 422, bad


def test_the_page_shows_fifty_and_says_there_are_more(register: list[str]) -> None:
    page = Browser().get("/register", params={"q": "professional"})
    assert page.status_code == 200
    assert page.text.count("RL-2019-") == 50 and "Professional 049" in page.text
    assert "Professional 050" not in page.text
    assert "de eerste 50" in page.text  # "showing the first 50; make your search more specific"
    narrow = Browser().get("/register", params={"q": "professional 12"})
    assert narrow.text.count("RL-2019-") == 10 and "de eerste 50" not in narrow.text
