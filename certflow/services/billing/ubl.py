"""The invoice as a UBL 2.1 e-invoice: Peppol BIS Billing 3.0 for organisations, plain EN 16931
for private persons.

Dutch public bodies and many companies book invoices from UBL directly, delivered over Peppol.
A Peppol document must name the buyer by a Peppol participant id (``EndpointID`` with a scheme
from the Peppol EAS list): an organisation has one, its KvK number (``0106``) or, for a public
body, its OIN (``0190``), taken from the account. A private person has none (an e-mail address
is not a Peppol address, fatal ``PEPPOL-EN16931-CL008``), so their document claims EN 16931 only
(``urn:cen.eu:en16931:2017``) and reaches them by e-mail, never over Peppol.

Elements are emitted in the exact order of the UBL 2.1 schema (tests validate against the OASIS
XSD and CEN's EN 16931 rules). A credit note is a UBL ``CreditNote`` (type 381) with POSITIVE
amounts: the document type carries the sign, while the database and the PDF show credit notes
negative.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from lxml import etree

from certflow.settings import Settings
from certflow.store.billing import Invoice
from certflow.services.billing.totals import amount_text, totals

NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CREDIT = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
EN16931 = "urn:cen.eu:en16931:2017"
PEPPOL_CUSTOMIZATION = f"{EN16931}#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PEPPOL_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
SCHEME_KVK = "0106"  # ISO 6523 ICD / Peppol EAS: Dutch Chamber of Commerce number
SCHEME_OIN = "0190"  # Dutch government organisation number (Organisatie-identificatienummer)
SCHEME_EMAIL = "EM"  # EN 16931 EAS only: not a Peppol scheme
_POSTAL = re.compile(r"^(\d{4}\s?[A-Z]{2})\s+(.+)$")


def _sub(parent: etree._Element, ns: str, tag: str, text: str | None = None,
         **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def _cbc(parent: etree._Element, tag: str, text: str, **attrs: str) -> etree._Element:
    return _sub(parent, CBC, tag, text, **attrs)


def _cac(parent: etree._Element, tag: str) -> etree._Element:
    return _sub(parent, CAC, tag)


def _amount(parent: etree._Element, tag: str, value: Decimal, sign: int) -> None:
    _cbc(parent, tag, amount_text(value * sign), currencyID="EUR")


def _country_code(text: str) -> str:
    text = text.strip()
    return "NL" if text.lower() in ("", "nederland", "the netherlands", "netherlands") else text.upper()[:2]


def supplier_address(settings: Settings) -> dict[str, str]:
    """Split the supplier's one-line address ("Postbus 1234, 3500 AA Utrecht, Nederland")."""
    parts = [p.strip() for p in settings.supplier_address.split(",") if p.strip()]
    street, city, postal, country = (parts[0] if parts else ""), "", "", "NL"
    for part in parts[1:]:
        match = _POSTAL.match(part)
        if match:
            postal, city = match.group(1), match.group(2)
        else:
            country = _country_code(part)
    return {"street": street, "postal_code": postal, "city": city or street, "country": country}


def _address(parent: etree._Element, address: dict[str, Any]) -> None:
    el = _cac(parent, "PostalAddress")
    for key, name in (("street", "StreetName"), ("city", "CityName"), ("postal_code", "PostalZone")):
        if address.get(key):
            _cbc(el, name, str(address[key]))
    _cbc(_cac(el, "Country"), "IdentificationCode", _country_code(str(address.get("country", ""))))


def _tax_scheme(parent: etree._Element) -> None:
    _cbc(_cac(parent, "TaxScheme"), "ID", "VAT")


def _supplier(root: etree._Element, settings: Settings) -> None:
    party = _cac(_cac(root, "AccountingSupplierParty"), "Party")
    _cbc(party, "EndpointID", settings.supplier_kvk, schemeID=SCHEME_KVK)
    _cbc(_cac(party, "PartyName"), "Name", settings.supplier_name)
    _address(party, supplier_address(settings))
    tax = _cac(party, "PartyTaxScheme")
    _cbc(tax, "CompanyID", settings.supplier_vat_id)
    _tax_scheme(tax)
    legal = _cac(party, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", settings.supplier_name)
    _cbc(legal, "CompanyID", settings.supplier_kvk, schemeID=SCHEME_KVK)


def is_peppol(invoice: Invoice) -> bool:
    """A Peppol document for organisations (they have a participant id), EN 16931 otherwise."""
    return invoice.customer_type == "organisation"


def customer_scheme_id(identifiers: dict[str, Any]) -> tuple[str, str] | None:
    """(scheme, id) under which an organisation is registered: its OIN (public bodies receive on
    their OIN) or else its KvK number; None when it has neither."""
    if identifiers.get("oin"):
        return SCHEME_OIN, str(identifiers["oin"])
    if identifiers.get("kvk"):
        return SCHEME_KVK, str(identifiers["kvk"])
    return None


def _customer(root: etree._Element, invoice: Invoice) -> None:
    party = _cac(_cac(root, "AccountingCustomerParty"), "Party")
    registered = customer_scheme_id(invoice.customer_identifiers or {})
    if is_peppol(invoice) and registered is not None:
        scheme, number = registered
        _cbc(party, "EndpointID", number, schemeID=scheme)
        _cbc(_cac(party, "PartyIdentification"), "ID", number, schemeID=scheme)
    else:  # a private person: reachable by e-mail, identified by their account
        if invoice.customer_email:
            _cbc(party, "EndpointID", invoice.customer_email, schemeID=SCHEME_EMAIL)
        _cbc(_cac(party, "PartyIdentification"), "ID", invoice.customer_username)
    _cbc(_cac(party, "PartyName"), "Name", invoice.customer_name)
    _address(party, invoice.customer_address)
    vat_id = (invoice.customer_identifiers or {}).get("vat_id")
    if vat_id:
        tax = _cac(party, "PartyTaxScheme")
        _cbc(tax, "CompanyID", str(vat_id))
        _tax_scheme(tax)
    legal = _cac(party, "PartyLegalEntity")
    _cbc(legal, "RegistrationName", invoice.customer_name)
    if is_peppol(invoice) and registered is not None:
        _cbc(legal, "CompanyID", registered[1], schemeID=registered[0])
    if invoice.customer_email:
        _cbc(_cac(party, "Contact"), "ElectronicMail", invoice.customer_email)


def _payment_means(root: etree._Element, invoice: Invoice, settings: Settings) -> None:
    means = _cac(root, "PaymentMeans")
    _cbc(means, "PaymentMeansCode", "58", name="SEPA credit transfer")
    _cbc(means, "PaymentID", invoice.payment_reference)
    account = _cac(means, "PayeeFinancialAccount")
    _cbc(account, "ID", settings.supplier_iban.replace(" ", ""))
    _cbc(account, "Name", settings.supplier_name)
    if settings.supplier_bic:
        _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", settings.supplier_bic)
    terms = _cac(root, "PaymentTerms")
    _cbc(terms, "Note", f"Betaling binnen 30 dagen, uiterlijk {invoice.due_date.isoformat()}, "
                        f"o.v.v. betalingskenmerk {invoice.payment_reference}")


def vat_category_code(rate: Decimal) -> str:
    """UNCL 5305: ``S`` for any positive rate (the Dutch 9% is category S with its own
    percentage), ``Z`` for a zero rate."""
    return "Z" if rate == 0 else "S"


def _category(parent: etree._Element, tag: str, rate: Decimal) -> None:
    cat = _cac(parent, tag)
    _cbc(cat, "ID", vat_category_code(rate))
    _cbc(cat, "Percent", f"{rate.normalize():f}")
    _tax_scheme(cat)


def _tax_total(root: etree._Element, invoice: Invoice, sign: int) -> None:
    tax_total = _cac(root, "TaxTotal")
    computed = totals(invoice.lines)
    _amount(tax_total, "TaxAmount", computed.vat, sign)
    for rate in computed.per_rate:
        sub = _cac(tax_total, "TaxSubtotal")
        _amount(sub, "TaxableAmount", rate.net, sign)
        _amount(sub, "TaxAmount", rate.vat, sign)
        _category(sub, "TaxCategory", rate.rate)


def _monetary_total(root: etree._Element, invoice: Invoice, sign: int) -> None:
    total = _cac(root, "LegalMonetaryTotal")
    _amount(total, "LineExtensionAmount", invoice.net_total, sign)
    _amount(total, "TaxExclusiveAmount", invoice.net_total, sign)
    _amount(total, "TaxInclusiveAmount", invoice.gross_total, sign)
    _amount(total, "PayableAmount", invoice.gross_total, sign)


def _lines(root: etree._Element, invoice: Invoice, sign: int, credit: bool) -> None:
    for line in invoice.lines:
        el = _cac(root, "CreditNoteLine" if credit else "InvoiceLine")
        _cbc(el, "ID", str(line.position))
        _cbc(el, "CreditedQuantity" if credit else "InvoicedQuantity", str(line.quantity),
             unitCode="C62")
        _amount(el, "LineExtensionAmount", line.line_net, sign)
        item = _cac(el, "Item")
        _cbc(item, "Name", line.description[:100])
        _cbc(_cac(item, "SellersItemIdentification"), "ID", line.product)
        _category(item, "ClassifiedTaxCategory", line.vat_rate)
        price = _cac(el, "Price")
        _cbc(price, "PriceAmount", f"{(line.unit_net * sign).normalize():f}", currencyID="EUR")


def build_ubl(invoice: Invoice, settings: Settings) -> str:
    """The UBL document as UTF-8 XML text."""
    credit = invoice.kind == "credit_note"
    sign = -1 if credit else 1
    root = etree.Element(f"{{{NS_CREDIT if credit else NS_INVOICE}}}{'CreditNote' if credit else 'Invoice'}",
                         nsmap={None: NS_CREDIT if credit else NS_INVOICE, "cac": CAC, "cbc": CBC})
    if is_peppol(invoice):
        _cbc(root, "CustomizationID", PEPPOL_CUSTOMIZATION)
        _cbc(root, "ProfileID", PEPPOL_PROFILE)
    else:
        _cbc(root, "CustomizationID", EN16931)
    _cbc(root, "ID", invoice.number)
    _cbc(root, "IssueDate", invoice.issue_date.isoformat())
    if not credit:
        _cbc(root, "DueDate", invoice.due_date.isoformat())
    _cbc(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", "381" if credit else "380")
    if invoice.note:
        _cbc(root, "Note", invoice.note)
    _cbc(root, "DocumentCurrencyCode", invoice.currency)
    _cbc(root, "BuyerReference", invoice.reference or invoice.customer_username)
    if credit and invoice.credits_invoice is not None:
        ref = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        _cbc(ref, "ID", invoice.credits_invoice.number)
        _cbc(ref, "IssueDate", invoice.credits_invoice.issue_date.isoformat())
    _supplier(root, settings)
    _customer(root, invoice)
    _cbc(_cac(root, "Delivery"), "ActualDeliveryDate", invoice.supply_date.isoformat())
    if not credit:  # a credit note is settled or refunded, not paid by the customer
        _payment_means(root, invoice, settings)
    _tax_total(root, invoice, sign)
    _monetary_total(root, invoice, sign)
    _lines(root, invoice, sign, credit)
    data: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return data.decode()
