"""A payment that lands while the application is still between "create invoice" and "wait for
payment" (the invoice email still sending) is kept and moves the application on as soon as it
waits: once, and never answered with "nobody waits" (issue 10, point 6)."""

from __future__ import annotations

from sqlalchemy import select

from certflow.store.db import session_scope
from certflow.store.models import Job
from tests.web.test_api import Api
from tests.web.test_records_api import messages_received, open_tasks, payments, statement, web  # noqa: F401


def _between_invoice_and_wait(api: Api) -> tuple[str, str]:
    """Eligibility done; run jobs one at a time until the invoice exists, no further."""
    instance_id = api.apply()
    task = api.task("olga", "check_eligibility")
    api.post(f"/api/tasks/{task['id']}/claim", "olga")
    done = api.post(f"/api/tasks/{task['id']}/complete", "olga", {"data": {"eligible": True, "remarks": "ok"}})
    assert done.status_code == 200, done.text
    for _ in range(10):
        data = api.get(f"/api/instances/{instance_id}", "olga").json()
        if data["data"].get("invoice_number"):
            assert not data["waiting_for"]  # not waiting for the payment yet
            return instance_id, data["data"]["invoice_number"]
        with session_scope() as s:
            job_id = s.scalar(select(Job.id).where(Job.instance_id == instance_id, Job.status == "queued")
                              .order_by(Job.id).limit(1))
        assert job_id is not None
        api.engine.run_job(job_id)
    raise AssertionError("no invoice number after 10 jobs")


def test_an_api_payment_before_the_wait_is_kept_and_delivered_once(web: Api) -> None:  # noqa: F811
    instance_id, number = _between_invoice_and_wait(web)
    paid = web.post("/api/payments", "olga", {"invoice_number": number, "amount": "786.50", "external_id": "early-1"})
    assert paid.status_code == 201, paid.text
    result = paid.json()
    assert result["payment"]["invoice_paid"] and result["delivered"] is False
    assert result["buffered"] is True and "kept" in result["reason"]
    web.h.run_jobs()  # the invoice email is sent; the process reaches its wait and takes the payment
    assert open_tasks(web, instance_id) == ["assign_mentor"]
    assert (payments(), messages_received(instance_id)) == (1, 1)


def test_a_camt_payment_before_the_wait_is_kept_and_delivered_once(web: Api) -> None:  # noqa: F811
    instance_id, number = _between_invoice_and_wait(web)
    invoice = web.get(f"/api/invoices/{number}", "olga").json()
    xml = statement([("BANK-1", "786.50", invoice["payment_reference"])])
    imported = web.client.post("/api/payments/camt053", content=xml,
                               headers={**web.auth("olga"), "Content-Type": "application/xml"})
    assert imported.status_code == 200, imported.text
    [delivery] = imported.json()["deliveries"]
    assert delivery["delivered"] is False and delivery["buffered"] is True
    web.h.run_jobs()
    assert open_tasks(web, instance_id) == ["assign_mentor"]
    assert messages_received(instance_id) == 1
