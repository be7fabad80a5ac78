"""Billing: Dutch invoices and credit notes (``invoices``), their numbers and payment
references (``numbers``), totals (``totals``), PDF (``pdf``), UBL e-invoice (``ubl``), and the
deployed fee and VAT tables they are priced from (``fees``)."""
