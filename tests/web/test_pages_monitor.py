"""The monitor pages (in-process browser): who gets in, the filtered list, an instance with its
markers, timeline and data (values for the office, names only for a process owner), skip an
incident, cancel with a reason and a confirmation, and move to the newest version."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import certflow.bootstrap
from certflow.bootstrap import build_engine
from certflow.engine.facade import Actor
from tests.engine.test_monitor import INSERT_STEP, review_renamed
from tests.engine.test_runtime import edited, failing_flow, start
from tests.support import FLOW_DIR, Harness
from tests.web.pages_support import Browser, person


@pytest.fixture
def h(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Harness:
    harness = Harness(build_engine())
    monkeypatch.setattr(certflow.bootstrap, "engine", lambda: harness.engine)
    harness.engine.deploy(Actor.system(), FLOW_DIR)
    for who, roles in (("olga", ["office"]), ("pim", ["process_owner"]), ("cert", ["certifier"])):
        person(who, roles, staff=True)
    person("cas", ["candidate"])
    return harness


def signed_in(who: str) -> Browser:
    b = Browser()
    b.sign_in(f"{who}@example.org")
    return b


def markers(html: str) -> dict[str, list[str]]:
    found = re.search(r'<script type="application/json" id="markers">(.*?)</script>', html, re.S)
    assert found
    return dict(json.loads(found.group(1)))


def test_who_gets_in_and_the_menu(h: Harness) -> None:
    office = signed_in("olga")
    page = office.get("/monitor")
    assert page.status_code == 200 and 'href="/monitor"' in page.text  # in the menu
    for outsider in ("cas", "cert"):
        b = signed_in(outsider)
        assert b.get("/monitor").status_code == 403
        assert 'href="/monitor"' not in b.get("/account").text
    assert Browser().get("/monitor", follow_redirects=False).status_code == 303  # sign in first


def test_list_filters_in_dutch(h: Harness) -> None:
    ids = [start(h, f"APP-{n}") for n in range(3)]
    start(h, "ZZZ-1")
    h.run_jobs()
    h.engine.cancel(h.staff, ids[0], "dubbel")
    b = signed_in("olga")
    page = b.get("/monitor?business_key=APP-&status=running")
    assert "APP-1" in page.text and "APP-2" in page.text
    assert "APP-0" not in page.text and "ZZZ-1" not in page.text
    assert "Loopt" in page.text and "Review request" in page.text  # where it stands
    bad = b.get("/monitor?version=2")
    assert bad.status_code == 422 and "Kies een proces" in bad.text
    assert "ZZZ-1" in bad.text  # the unfiltered list still shows


def test_instance_page_markers_timeline_and_data(h: Harness) -> None:
    instance_id = start(h)
    h.run_jobs()
    office = signed_in("olga").get(f"/monitor/instances/{instance_id}")
    assert office.status_code == 200
    marks = markers(office.text)
    assert "review" in marks["active"] and "make_ref" in marks["done"]
    assert "Tijdlijn" in office.text and "Zaak gestart" in office.text
    assert 'id="data"' in office.text and "K1" in office.text
    assert "bpmn-navigated-viewer.production.min.js" in office.text
    person("emma", ["office"], staff=True, language="en")
    english = signed_in("emma")
    assert "Monitor: all cases" in english.get("/monitor").text
    owner = signed_in("pim").get(f"/monitor/instances/{instance_id}")
    assert 'id="data-keys"' in owner.text and 'id="data"' not in owner.text
    xml = signed_in("olga").get(f"/monitor/instances/{instance_id}/diagram.bpmn")
    assert xml.status_code == 200 and 'id="review"' in xml.text
    assert "sandbox" in xml.headers["content-security-policy"]
    assert signed_in("cas").get(f"/monitor/instances/{instance_id}/diagram.bpmn").status_code == 403


def test_skip_an_incident(h: Harness, tmp_path: Path) -> None:
    failing_flow(h, tmp_path)
    instance_id = start(h)
    h.run_jobs()
    for _ in range(4):
        h.advance("PT1H")
        h.run_jobs()
    b = signed_in("olga")
    page = b.get(f"/monitor/instances/{instance_id}")
    assert "the service is down" in page.text and markers(page.text)["incident"] == ["make_ref"]
    [incident] = h.engine.incidents(h.staff)
    done = b.post(f"/monitor/instances/{instance_id}/incidents/{incident.id}/skip", {},
                  form_page=f"/monitor/instances/{instance_id}")
    assert done.status_code == 200 and "De stap is overgeslagen" in done.text
    assert markers(done.text)["incident"] == [] and "review" in markers(done.text)["active"]
    again = b.post(f"/monitor/instances/{instance_id}/incidents/{incident.id}/skip", {},
                   form_page=f"/monitor/instances/{instance_id}")
    assert again.status_code == 409 and "al afgehandeld (skipped)" in again.text


def test_a_mail_incident_says_the_case_went_on_and_do_not_send_leaves_it_unsent(
        h: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An outbox job's incident (certflow.engine.outbox): the case did not wait for the mail, so
    the page does not offer "skip this step" as if the case still waited."""
    from tests.engine.test_outbox import chain, emails, to_review

    h.engine.publisher = h.published.extend
    h.engine.deploy(h.staff, chain(tmp_path))
    instance_id, c_job = to_review(h)
    monkeypatch.setenv("CERTFLOW_TEST_NOTIFY_FAILS", "permanent")
    assert h.engine.run_job(c_job, detached=True) == "incident"
    b = signed_in("olga")
    page = b.get(f"/monitor/instances/{instance_id}")
    assert "no such address" in page.text and "Niet versturen" in page.text
    assert "niet op dit bericht gewacht" in page.text and "Deze stap overslaan" not in page.text
    assert "review" in markers(page.text)["active"]
    assert "Klaargezet om te versturen; de zaak gaat verder" in page.text  # the timeline's line for it
    [incident] = h.engine.incidents(h.staff)
    assert incident.detached
    done = b.post(f"/monitor/instances/{instance_id}/incidents/{incident.id}/skip", {},
                  form_page=f"/monitor/instances/{instance_id}")
    assert done.status_code == 200 and markers(done.text)["incident"] == []
    assert h.run_jobs() == [] and emails() == []


def test_a_process_owner_cancels_only_what_he_started(h: Harness) -> None:
    """Ending someone's case is for the staff who handle cases: a process owner sees the case
    in the monitor without the form, and a forged post changes nothing; his own try-out he ends."""
    theirs = start(h)
    pim = signed_in("pim")
    url = f"/monitor/instances/{theirs}"
    page = pim.get(url)
    assert page.status_code == 200 and "Zaak annuleren" not in page.text and 'action="' + url + '/cancel"' not in page.text
    forged = pim.post(url + "/cancel", {"reason": "weg ermee", "confirm": "yes"}, form_page="/monitor")
    assert forged.status_code == 403
    assert h.engine.instance(h.staff, theirs).status == "running"
    own = h.engine.start(Actor("pim", ("process_owner",), True), "flow", "TRY-1", {"key": "TRY-1"}).id
    done = pim.post(f"/monitor/instances/{own}/cancel", {"reason": "proef", "confirm": "yes"},
                    form_page=f"/monitor/instances/{own}")
    assert done.status_code == 200 and h.engine.instance(h.staff, own).status == "cancelled"
    assert 'action="' + url + '/cancel"' in signed_in("olga").get(url).text  # the office may


def test_cancel_needs_a_reason_and_a_confirmation(h: Harness) -> None:
    instance_id = start(h)
    b = signed_in("olga")
    url = f"/monitor/instances/{instance_id}"
    refused = b.post(url + "/cancel", {"reason": ""}, form_page=url)
    assert refused.status_code == 422 and "Zeg waarom de zaak wordt geannuleerd." in refused.text
    assert "Vink het vakje aan" in refused.text
    assert h.engine.instance(h.staff, instance_id).status == "running"
    done = b.post(url + "/cancel", {"reason": "aanvraag ingetrokken", "confirm": "yes"}, form_page=url)
    assert done.status_code == 200 and "De zaak is geannuleerd" in done.text
    assert h.engine.instance(h.staff, instance_id).status == "cancelled"
    assert "aanvraag ingetrokken" in done.text  # in the timeline


def test_migrate_from_the_page(h: Harness, tmp_path: Path) -> None:
    instance_id = start(h)
    h.run_jobs()
    h.engine.deploy(h.staff, edited(tmp_path, *INSERT_STEP))
    url = f"/monitor/instances/{instance_id}"
    office = signed_in("olga")
    assert "Naar versie 2" not in office.get(url).text  # not the office's to do
    assert office.post(url + "/migrate", {}, form_page=url).status_code == 403
    owner = signed_in("pim")
    assert "Naar versie 2" in owner.get(url).text
    moved = owner.post(url + "/migrate", {"migrate_reason": "nieuwe stap"}, form_page=url)
    assert moved.status_code == 200 and "De zaak loopt nu op de nieuwste versie" in moved.text
    assert h.engine.instance(h.staff, instance_id).version == 2


def test_a_refused_move_says_which_step_in_dutch(h: Harness, tmp_path: Path) -> None:
    instance_id = start(h)
    h.run_jobs()
    h.engine.deploy(h.staff, review_renamed(tmp_path))
    url = f"/monitor/instances/{instance_id}"
    owner = signed_in("pim")
    page = owner.get(url)
    assert "De open stap Review request (review) bestaat niet in versie 2." in page.text
    assert "Naar versie 2" not in page.text and markers(page.text)["refused"] == ["review"]
    refused = owner.post(url + "/migrate", {}, form_page=url)
    assert refused.status_code == 409 and "De zaak is niet overgezet" in refused.text
    assert h.engine.instance(h.staff, instance_id).version == 1


def test_a_cases_data_reads_as_entered_and_the_automatic_steps_are_folded_away(h: Harness) -> None:
    """The data panel was every variable as stored: English words on a Dutch page, ids, job
    states, ISO dates and codes (``hbo_diploma``). What people entered now comes first, in the
    form's words with a choice's words; what the automatic steps recorded is folded away."""
    from tests.processes.driver import PROCESSES
    from tests.web.pages_support import ADDRESS

    h.engine.deploy(Actor.system(), PROCESSES, only=["certification"])
    person("ria", ["candidate"], address=ADDRESS)
    case = h.engine.start(Actor("ria", ("candidate",)), "certification", "APP-ria",
                          {"candidate": "ria", "eligibility_route": "hbo_diploma", "motivation": "Ik wil"}).id
    h.run_jobs()  # the confirmation mail: a result the monitor showed as "Confirmation email"
    page = signed_in("olga").get(f"/monitor/instances/{case}").text
    entered = re.search(r'<dl class="facts" id="data">(.*?)</dl>', page, re.S).group(1)
    assert "Motivatie" in entered and "Ik wil" in entered
    assert "Een afgeronde driejarige voltijdse hbo-opleiding (bachelordiploma)" in entered
    assert "hbo_diploma" not in entered and "Confirmation email" not in page
    technical = re.search(r'<details class="technical" id="technical-data">(.*?)</details>', page, re.S).group(1)
    assert "confirmation_email" in technical
