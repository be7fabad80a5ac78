"""Peppol BIS Billing 3.0 and the Dutch NL-R rules on every document kind certflow writes, with
our transcription of the published rules (tests/support_peppol.py; OpenPEPPOL's own Schematron
is not obtainable from the registries CI reaches). Organisations' documents claim Peppol and
must meet both sets; private persons' documents claim EN 16931 only and must meet the NL-R
rules. A broken copy fails with the rule an access point would name."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from certflow.settings import Settings
from certflow.store.billing import Invoice
from tests.handlers._fixtures_records import engine, session, settings  # noqa: F401
from tests.handlers.test_documents import BELGIUM, NAMES, credited, customer, invoiced, with_extra_line
from tests.support_peppol import PEPPOL_CUSTOMIZATION, RULES, peppol_failures


def _documents(session: Session, settings: Settings) -> dict[str, Invoice]:  # noqa: F811
    customer(session, "jan")
    customer(session, "acme", organisation=True, name="Loopbaanpraktijk De Brug B.V.")
    customer(session, "gov", organisation=True, name="Gemeente Utrecht", kvk=None,
             oin="00000001002220647000")
    customer(session, "lea", address=BELGIUM, language="en", name=NAMES)
    customer(session, "bel", organisation=True, address=BELGIUM, name="Loopbaan BV Brussel")
    docs = {
        "person invoice": invoiced(session, settings),
        "organisation invoice": invoiced(session, settings, username="acme"),
        "public body invoice": invoiced(session, settings, "register_fee", username="gov"),
        "organisation book, VAT included": invoiced(session, settings, "book", username="acme", quantity=3),
        "foreign person": invoiced(session, settings, "english_certificate", username="lea"),
        "foreign organisation": invoiced(session, settings, "english_certificate", username="bel"),
    }
    docs["person credit note"] = credited(session, settings, docs["person invoice"])
    docs["organisation credit note"] = credited(session, settings, docs["organisation invoice"])
    docs["organisation, several rates"] = with_extra_line(
        session, settings, invoiced(session, settings, "book", username="acme"), rate="21",
        category="standard", net="22.00")
    docs["organisation, zero-rated line"] = with_extra_line(
        session, settings, invoiced(session, settings, "register_fee", username="acme"), rate="0",
        category="zero", net="10.00")
    return docs


def test_every_document_kind_meets_the_peppol_and_dutch_rules(session: Session,  # noqa: F811
                                                             settings: Settings) -> None:  # noqa: F811
    docs = _documents(session, settings)
    claims = {kind: PEPPOL_CUSTOMIZATION in (doc.ubl_xml or "") for kind, doc in docs.items()}
    assert claims == {kind: not kind.startswith(("person", "foreign person")) for kind in docs}
    failures = {kind: peppol_failures(doc.ubl_xml or "") for kind, doc in docs.items()}
    assert failures == {kind: set() for kind in docs}


def test_broken_copies_fail_with_the_rule_an_access_point_names(session: Session,  # noqa: F811
                                                                settings: Settings) -> None:  # noqa: F811
    docs = _documents(session, settings)
    company = docs["organisation invoice"].ubl_xml or ""
    note = docs["organisation credit note"].ubl_xml or ""
    person = docs["person invoice"].ubl_xml or ""
    broken = {
        "PEPPOL-EN16931-CL008": company.replace('schemeID="0106"', 'schemeID="EM"', 1),
        "PEPPOL-EN16931-R004": company.replace(PEPPOL_CUSTOMIZATION, PEPPOL_CUSTOMIZATION + ":x"),
        "PEPPOL-EN16931-R008": company.replace("</cbc:ID>", "</cbc:ID><cbc:Note></cbc:Note>", 1),
        "NL-R-001": note.replace("<cac:InvoiceDocumentReference>", "<cac:InvoiceDocumentReference><cbc:X>", 1)
                        .replace("</cac:InvoiceDocumentReference>", "</cbc:X></cac:InvoiceDocumentReference>", 1),
        "NL-R-008": re.sub(r"(<cbc:PaymentMeansCode[^>]*>)58<", r"\g<1>1<", person),
    }
    for rule, xml in broken.items():
        assert xml not in (company, note, person), f"{rule}: the document did not change"
        assert rule in peppol_failures(xml), rule
    assert len({r.id for r in RULES}) == len(RULES)
