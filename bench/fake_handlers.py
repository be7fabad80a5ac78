"""Fast stand-ins for the real handlers, swapped in by name (like Temporal's mocked
activities), so the engine benchmark measures the engine, not PDF rendering or SMTP.
Each keeps the real handler's input model, so deploy validation is unchanged."""

from __future__ import annotations

from typing import Any

import handlers

FAKE_RESULTS: dict[str, dict[str, Any]] = {
    "invoicing/create_invoice": {"invoice_id": "i", "invoice_number": "2026-000001", "total": "786.50",
                                 "net": "650.00", "vat": "136.50", "payment_reference": "1000000000000001",
                                 "issue_date": "2026-11-28", "due_date": "2026-12-28"},
    "certificates/issue": {"certificate_id": "c", "register_number": "RL-2026-00001",
                           "valid_from": "2026-11-28", "valid_until": "2029-11-28"},
}


def _fake(name: str) -> Any:
    def run(ctx: handlers.HandlerContext, data: Any) -> dict[str, Any]:
        result = dict(FAKE_RESULTS.get(name, {"ok": True}))
        if name == "invoicing/create_invoice":
            result["invoice_number"] = f"INV-{ctx.business_key}"
        return result

    return run


def install() -> None:
    registry = handlers.load_all()
    for name in list(registry):
        registry.replace(name, _fake(name))


install()
