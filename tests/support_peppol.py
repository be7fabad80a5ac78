"""Peppol BIS Billing 3.0 and Dutch national (NL-R) rules, transcribed from their published
rule texts into XPath and Python: OpenPEPPOL's own Schematron is not obtainable here (see
tests/data/en16931/README.md), so this is our reading of the rules, not the official artefact.
Only rules that certflow's documents can meet or break are here; each keeps its official id and
message, so a failure reads like an access point's rejection.

``peppol_failures(xml)`` returns the ids of the rules one UBL document breaks. Peppol rules
apply to documents whose customization mentions Peppol; the NL-R rules to every document whose seller is
in the Netherlands (they are in Peppol BIS 3.0's national rules, and NLCIUS asks the same).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from lxml import etree

NS = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
      "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}
PEPPOL_CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
# Electronic Address Scheme codes certflow may use; all are in the Peppol EAS code list
# (0106 KvK, 0190 Dutch OIN, 9944 Dutch VAT number, 0088 GLN).
EAS_USED = {"0106", "0190", "9944", "0088"}
NL_LEGAL = {"0106", "0190"}
NL_PAYMENT_MEANS = {"30", "48", "49", "57", "58", "59"}
SUPPLIER = "cac:AccountingSupplierParty/cac:Party"
CUSTOMER = "cac:AccountingCustomerParty/cac:Party"


@dataclass(frozen=True)
class Rule:
    id: str
    message: str
    scope: str  # "peppol" or "nl"
    holds: Callable[[etree._Element], bool]


def _x(expression: str) -> Callable[[etree._Element], bool]:
    return lambda root: bool(root.xpath(f"boolean({expression})", namespaces=NS))


def _dates(root: etree._Element) -> bool:
    return all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", (d.text or ""))
               for d in root.xpath("//cbc:*[substring(local-name(), string-length(local-name()) - 3) = 'Date']",
                                   namespaces=NS))


def _line_amounts(root: etree._Element) -> bool:
    """R120: line net amount = quantity × (price ÷ base quantity) + charges − allowances."""
    for line in root.xpath("cac:InvoiceLine | cac:CreditNoteLine", namespaces=NS):
        def num(path: str, default: str = "0") -> Decimal:
            found = line.xpath(f"string({path})", namespaces=NS)
            return Decimal(found) if found else Decimal(default)
        quantity = num("cbc:InvoicedQuantity | cbc:CreditedQuantity")
        price, base = num("cac:Price/cbc:PriceAmount"), num("cac:Price/cbc:BaseQuantity", "1")
        charges = sum((Decimal(v) for v in line.xpath(
            "cac:AllowanceCharge[cbc:ChargeIndicator = 'true']/cbc:Amount/text()", namespaces=NS)), Decimal(0))
        allowances = sum((Decimal(v) for v in line.xpath(
            "cac:AllowanceCharge[cbc:ChargeIndicator = 'false']/cbc:Amount/text()", namespaces=NS)), Decimal(0))
        expected = (quantity * price / base + charges - allowances).quantize(Decimal("0.01"), ROUND_HALF_UP)
        if num("cbc:LineExtensionAmount") != expected:
            return False
    return True


RULES = [
    Rule("PEPPOL-EN16931-R001", "Business process MUST be provided.", "peppol",
         _x("normalize-space(/*/cbc:ProfileID) != ''")),
    Rule("PEPPOL-EN16931-R002", "No more than one note is allowed on document level.", "peppol",
         _x("count(/*/cbc:Note) <= 1")),
    Rule("PEPPOL-EN16931-R003", "A buyer reference or purchase order reference MUST be provided.",
         "peppol", _x("normalize-space(/*/cbc:BuyerReference) != '' or "
                      "normalize-space(/*/cac:OrderReference/cbc:ID) != ''")),
    Rule("PEPPOL-EN16931-R004", "Specification identifier MUST have the value "
         f"'{PEPPOL_CUSTOMIZATION}'.", "peppol",
         _x(f"/*/cbc:CustomizationID = '{PEPPOL_CUSTOMIZATION}'")),
    Rule("PEPPOL-EN16931-R005", "VAT accounting currency code MUST be different from invoice "
         "currency code when provided.", "peppol",
         _x("not(/*/cbc:TaxCurrencyCode) or /*/cbc:TaxCurrencyCode != /*/cbc:DocumentCurrencyCode")),
    Rule("PEPPOL-EN16931-R007", "Business process MUST be in the format "
         "'urn:fdc:peppol.eu:2017:poacc:billing:NN:1.0'.", "peppol",
         _x("starts-with(/*/cbc:ProfileID, 'urn:fdc:peppol.eu:2017:poacc:billing:') and "
            "substring(/*/cbc:ProfileID, string-length(/*/cbc:ProfileID) - 3) = ':1.0'")),
    Rule("PEPPOL-EN16931-R008", "Document MUST not contain empty elements.", "peppol",
         _x("not(//*[not(*) and normalize-space(.) = ''])")),
    Rule("PEPPOL-EN16931-R010", "Buyer electronic address MUST be provided.", "peppol",
         _x(f"normalize-space(/*/{CUSTOMER}/cbc:EndpointID) != ''")),
    Rule("PEPPOL-EN16931-R020", "Seller electronic address MUST be provided.", "peppol",
         _x(f"normalize-space(/*/{SUPPLIER}/cbc:EndpointID) != ''")),
    Rule("PEPPOL-EN16931-R053", "Only one tax total with tax subtotals MUST be provided.", "peppol",
         _x("count(/*/cac:TaxTotal[cac:TaxSubtotal]) = 1")),
    Rule("PEPPOL-EN16931-R054", "Only one tax total without tax subtotals MUST be provided when "
         "tax currency code is provided.", "peppol",
         _x("(/*/cbc:TaxCurrencyCode and count(/*/cac:TaxTotal[not(cac:TaxSubtotal)]) = 1) or "
            "(not(/*/cbc:TaxCurrencyCode) and count(/*/cac:TaxTotal[not(cac:TaxSubtotal)]) = 0)")),
    Rule("PEPPOL-EN16931-R061", "Mandate reference MUST be provided for direct debit.", "peppol",
         _x("not(/*/cac:PaymentMeans[cbc:PaymentMeansCode = '59']) or "
            "/*/cac:PaymentMeans/cac:PaymentMandate/cbc:ID")),
    Rule("PEPPOL-EN16931-R120", "Invoice line net amount MUST equal (Invoiced quantity * (Item net "
         "price/item price base quantity) + Sum of invoice line charge amount - sum of invoice "
         "line allowance amount.", "peppol", _line_amounts),
    Rule("PEPPOL-EN16931-R121", "Base quantity MUST be a positive number above zero.", "peppol",
         _x("not(//cac:Price/cbc:BaseQuantity[number(.) <= 0])")),
    Rule("PEPPOL-EN16931-R130", "Unit code of price base quantity MUST be same as invoiced "
         "quantity.", "peppol",
         _x("not(//cac:InvoiceLine[cac:Price/cbc:BaseQuantity/@unitCode != cbc:InvoicedQuantity/@unitCode]) "
            "and not(//cac:CreditNoteLine[cac:Price/cbc:BaseQuantity/@unitCode != cbc:CreditedQuantity/@unitCode])")),
    Rule("PEPPOL-EN16931-F001", "A date MUST be formatted YYYY-MM-DD.", "peppol", _dates),
    Rule("PEPPOL-EN16931-CL008", "Electronic address identifier scheme must be from the codelist "
         "'Electronic Address Identifier Scheme'", "peppol",
         lambda root: set(root.xpath("//cbc:EndpointID/@schemeID", namespaces=NS)) <= EAS_USED),
    Rule("NL-R-001", "For suppliers in the Netherlands, if the document is a creditnote, the "
         "document MUST contain an invoice reference (cac:BillingReference/"
         "cac:InvoiceDocumentReference/cbc:ID)", "nl",
         _x("local-name(/*) != 'CreditNote' or "
            "normalize-space(/*/cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID) != ''")),
    Rule("NL-R-002", "For suppliers in the Netherlands the supplier's address (cac:AccountingSupplierParty"
         "/cac:Party/cac:PostalAddress) MUST contain street name (cbc:StreetName), city (cbc:CityName) "
         "and post code (cbc:PostalZone)", "nl",
         _x(f"/*/{SUPPLIER}/cac:PostalAddress[normalize-space(cbc:StreetName) != '' and "
            "normalize-space(cbc:CityName) != '' and normalize-space(cbc:PostalZone) != '']")),
    Rule("NL-R-003", "For suppliers in the Netherlands, the legal entity identifier MUST be either "
         "a KVK or OIN number (schemeID 0106 or 0190)", "nl",
         _x(f"/*/{SUPPLIER}/cac:PartyLegalEntity/cbc:CompanyID[@schemeID = '0106' or @schemeID = '0190']")),
    Rule("NL-R-004", "For suppliers in the Netherlands, if the customer is in the Netherlands, the "
         "customer address (cac:AccountingCustomerParty/cac:Party/cac:PostalAddress) MUST contain "
         "the street name (cbc:StreetName), the city (cbc:CityName) and post code (cbc:PostalZone)",
         "nl", _x(f"/*/{CUSTOMER}/cac:PostalAddress/cac:Country/cbc:IdentificationCode != 'NL' or "
                  f"/*/{CUSTOMER}/cac:PostalAddress[normalize-space(cbc:StreetName) != '' and "
                  "normalize-space(cbc:CityName) != '' and normalize-space(cbc:PostalZone) != '']")),
    Rule("NL-R-005", "For suppliers in the Netherlands, if the customer is in the Netherlands, the "
         "customer's legal entity identifier MUST be either a KVK or OIN number (schemeID 0106 or "
         "0190)", "nl",
         _x(f"/*/{CUSTOMER}/cac:PostalAddress/cac:Country/cbc:IdentificationCode != 'NL' or "
            f"not(/*/{CUSTOMER}/cac:PartyLegalEntity/cbc:CompanyID) or "
            f"/*/{CUSTOMER}/cac:PartyLegalEntity/cbc:CompanyID[@schemeID = '0106' or @schemeID = '0190']")),
    Rule("NL-R-007", "For suppliers in the Netherlands, the supplier MUST provide a means of "
         "payment (cac:PaymentMeans) if the payment is from customer to supplier", "nl",
         _x("local-name(/*) = 'CreditNote' or number(/*/cac:LegalMonetaryTotal/cbc:PayableAmount) <= 0 "
            "or /*/cac:PaymentMeans")),
    Rule("NL-R-008", "For suppliers in the Netherlands, if a payment means is provided, the payment "
         "means code MUST be one of 30, 48, 49, 57, 58 or 59", "nl",
         lambda root: set(root.xpath("/*/cac:PaymentMeans/cbc:PaymentMeansCode/text()",
                                     namespaces=NS)) <= NL_PAYMENT_MEANS),
    Rule("NL-R-009", "For suppliers in the Netherlands, if an order line reference (cac:OrderLineReference"
         "/cbc:LineID) is used, there must be an order reference on the document level "
         "(cac:OrderReference/cbc:ID)", "nl",
         _x("not(//cac:OrderLineReference/cbc:LineID) or /*/cac:OrderReference/cbc:ID")),
]


def peppol_failures(xml: str) -> set[str]:
    root = etree.fromstring(xml.encode())
    # A document that mentions Peppol in its customization claims it (and R004 checks the claim).
    peppol = "peppol" in root.xpath("string(/*/cbc:CustomizationID)", namespaces=NS)
    dutch_seller = root.xpath(
        f"string(/*/{SUPPLIER}/cac:PostalAddress/cac:Country/cbc:IdentificationCode)", namespaces=NS) == "NL"
    return {rule.id for rule in RULES
            if (rule.scope == "peppol" and peppol or rule.scope == "nl" and dutch_seller)
            and not rule.holds(root)}
