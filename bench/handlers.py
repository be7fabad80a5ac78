"""Handler benchmarks: what one invoice (number, amounts, PDF/A and UBL, and with validation on
the check of that UBL against CEN's EN 16931 rules) and one email cost.

    python bench/handlers.py --n 200 [--no-validate]

Prints figures and asserts nothing about time. The last line is machine-readable:
``bench-handlers: invoice_ms=<x> email_ms=<y>`` (``n/a`` while a part is not written yet).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder comes first on sys.path and this very file would shadow the
# real ``handlers`` package: put the project root first instead.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import certflow.store.all_models  # noqa: E402,F401  (registers every table)
from certflow.settings import Settings  # noqa: E402
from certflow.store.base import Base  # noqa: E402
from certflow.store.billing import Invoice  # noqa: E402
from certflow.store.models import User  # noqa: E402
from handlers import HandlerContext  # noqa: E402
from certflow.services.billing.pdf import render_pdf  # noqa: E402
from certflow.services.billing.invoices import CreateInvoiceInput, create_invoice  # noqa: E402
from certflow.services.billing.ubl import build_ubl  # noqa: E402
from tests.support_documents import en16931_errors  # noqa: E402
from bench.smtp_sink import smtp_sink  # noqa: E402

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
PRODUCTS = ("certification", "recertification", "register_fee", "english_certificate", "book")
WARMUP = 5


def _customer(session: Session) -> None:
    session.add(User(username="bench", display_name="Bea Bench", email="bea@example.nl",
                     address={"street": "Oudegracht 1", "postal_code": "3511 AA",
                              "city": "Utrecht", "country": "NL"},
                     groups=[], created_at=NOW))
    session.commit()


def bench_invoices(n: int, validate: bool = True) -> float:
    """Mean milliseconds per invoice over a batch of ``n``, each in its own committed
    transaction on a SQLite file: lock and number, amounts, PDF/A with QR, UBL, insert; with
    ``validate``, also the UBL checked against the EN 16931 Schematron (Saxon-HE), as a sender
    that refuses to send an invalid e-invoice would."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/bench.sqlite")
        Base.metadata.create_all(engine)
        settings = Settings(_env_file=None, var_dir=Path(tmp))  # type: ignore[call-arg]
        with Session(engine) as session:
            _customer(session)
        # The first of the warm-up rounds, which are not timed, compiles the rules.
        timings, checks, failures = [], [], 0
        for i in range(n + WARMUP):
            started = time.perf_counter()
            with Session(engine) as session:
                ctx = HandlerContext(session=session, now=NOW, idempotency_key=uuid.uuid4().hex,
                                     settings=settings)
                made = create_invoice(ctx, CreateInvoiceInput(
                    customer="bench", product=PRODUCTS[i % len(PRODUCTS)]))
                if validate:
                    checking = time.perf_counter()
                    failures += bool(en16931_errors(
                        session.get_one(Invoice, made["invoice_id"]).ubl_xml or ""))
                    checked = (time.perf_counter() - checking) * 1000
                session.commit()
            if i >= WARMUP:
                timings.append((time.perf_counter() - started) * 1000)
                if validate:
                    checks.append(checked)
        mean = statistics.fmean(timings)
        print(f"invoices: n={n} validate={validate} mean={mean:.2f}ms "
              f"median={statistics.median(timings):.2f}ms "
              f"p95={sorted(timings)[int(len(timings) * 0.95) - 1]:.2f}ms")
        if validate:
            schematron = statistics.fmean(checks)
            print(f"  schematron (EN 16931, Saxon-HE): {schematron:.2f}ms per document "
                  f"({schematron / mean:.0%} of an invoice); documents with fatal errors: "
                  f"{failures}")
        with Session(engine) as session:
            _render_breakdown(session.get_one(Invoice, 1), settings)
        engine.dispose()
    print(f"invoice_ms={mean:.2f}")
    return mean


def _render_breakdown(invoice: Invoice, settings: Settings, rounds: int = 20) -> None:
    """Where an invoice's time goes: the PDF (with its QR image) versus the UBL."""
    renderers: tuple[tuple[str, Callable[[Invoice, Settings], object]], ...] = (
        ("pdf/a", render_pdf), ("ubl", build_ubl),
        ("schematron", lambda inv, st: en16931_errors(inv.ubl_xml or "")))
    for name, render in renderers:
        started = time.perf_counter()
        for _ in range(rounds):
            render(invoice, settings)
        print(f"  {name}: {(time.perf_counter() - started) * 1000 / rounds:.2f}ms per document")


def bench_emails(n: int) -> float | None:
    """Mean milliseconds per email over a batch of ``n``, each in its own committed
    transaction: record (keyed), render NL templates, and send over a real SMTP connection to
    a local aiosmtpd server that accepts everything."""
    from certflow.services.email import SendEmail, send_email

    with smtp_sink() as (sink, port), tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/bench.sqlite")
        Base.metadata.create_all(engine)
        settings = Settings(_env_file=None, var_dir=Path(tmp), smtp_host="127.0.0.1", smtp_port=port)  # type: ignore[call-arg]
        with Session(engine) as session:
            _customer(session)
        data = SendEmail(recipient="bench", template="certification/invoice_sent",
                         context={"invoice_number": "2026-000001", "total": "786.50",
                                  "payment_reference": "4202600000000001"})

        def one(i: int) -> None:
            with Session(engine) as session:
                ctx = HandlerContext(session=session, now=NOW, idempotency_key=f"bench-mail-{i}-{uuid.uuid4().hex}",
                                     settings=settings)
                send_email(ctx, data)
                session.commit()

        for i in range(WARMUP):
            one(-i - 1)
        started = time.perf_counter()
        for i in range(n):
            one(i)
        elapsed = (time.perf_counter() - started) * 1000 / n
    print(f"emails: n={n} mean={elapsed:.2f}ms (SMTP server received {sink.received})")
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="documents per batch (the issue asks for 1,000)")
    parser.add_argument("--no-validate", dest="validate", action="store_false",
                        help="skip the EN 16931 Schematron check of each UBL document")
    args = parser.parse_args(argv)
    invoice_ms = bench_invoices(args.n, args.validate)
    email_ms = bench_emails(args.n)
    email = f"{email_ms:.2f}" if email_ms is not None else "n/a"
    print(f"bench-handlers: invoice_ms={invoice_ms:.2f} email_ms={email}")


if __name__ == "__main__":
    main()
