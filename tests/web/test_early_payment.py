"""A payment that lands as soon as the invoice exists, while the invoice e-mail is still on its
way, moves the application on at once: the invoice, the queued mail and the wait for the payment
are one advance (the mail is an outbox task: certflow.engine.outbox), so there is no moment in
which the invoice exists and nobody waits for its payment (issue 10, point 6: such a payment was
kept for the wait then). It is delivered once, by the API and by a CAMT.053 import alike."""

from __future__ import annotations

from sqlalchemy import select

from certflow.store.communications import EmailMessage
from certflow.store.db import session_scope
from certflow.store.models import Job
from tests.web.test_api import Api
from tests.web.test_records_api import messages_received, open_tasks, payments, statement, web  # noqa: F401


def _invoice_made(api: Api) -> tuple[str, str]:
    """Eligibility done; run jobs one at a time until the invoice exists, no further."""
    instance_id = api.apply()
    task = api.task("olga", "check_eligibility")
    api.post(f"/api/tasks/{task['id']}/claim", "olga")
    done = api.post(f"/api/tasks/{task['id']}/complete", "olga", {"data": {"eligible": True, "remarks": "ok"}})
    assert done.status_code == 200, done.text
    for _ in range(10):
        data = api.get(f"/api/instances/{instance_id}", "olga").json()
        if data["data"].get("invoice_number"):
            number = data["data"]["invoice_number"]
            # Waiting for the payment already, with the invoice mail queued and not yet sent.
            assert data["waiting_for"] == [f"payment_received (invoice_number={number})"]
            with session_scope() as s:
                assert s.scalars(select(Job.operator).where(Job.instance_id == instance_id,
                                                            Job.status == "queued")).all() == ["email/send"]
                assert "certification/invoice_sent" not in s.scalars(select(EmailMessage.template)).all()
            return instance_id, number
        with session_scope() as s:
            job_id = s.scalar(select(Job.id).where(Job.instance_id == instance_id, Job.status == "queued")
                              .order_by(Job.id).limit(1))
        assert job_id is not None
        api.engine.run_job(job_id)
    raise AssertionError("no invoice number after 10 jobs")


def test_an_api_payment_before_the_invoice_mail_is_sent_moves_the_application_on(web: Api) -> None:  # noqa: F811
    instance_id, number = _invoice_made(web)
    paid = web.post("/api/payments", "olga", {"invoice_number": number, "amount": "786.50", "external_id": "early-1"})
    assert paid.status_code == 201, paid.text
    result = paid.json()
    assert result["payment"]["invoice_paid"] and result["delivered"] is True
    assert open_tasks(web, instance_id) == ["assign_mentor"]
    web.h.run_jobs()  # the invoice mail goes out after all; nothing is delivered twice
    assert open_tasks(web, instance_id) == ["assign_mentor"]
    assert (payments(), messages_received(instance_id)) == (1, 1)


def test_a_camt_payment_before_the_invoice_mail_is_sent_moves_the_application_on(web: Api) -> None:  # noqa: F811
    instance_id, number = _invoice_made(web)
    invoice = web.get(f"/api/invoices/{number}", "olga").json()
    xml = statement([("BANK-1", "786.50", invoice["payment_reference"])])
    imported = web.client.post("/api/payments/camt053", content=xml,
                               headers={**web.auth("olga"), "Content-Type": "application/xml"})
    assert imported.status_code == 200, imported.text
    [delivery] = imported.json()["deliveries"]
    assert delivery["delivered"] is True
    web.h.run_jobs()
    assert open_tasks(web, instance_id) == ["assign_mentor"]
    assert messages_received(instance_id) == 1
