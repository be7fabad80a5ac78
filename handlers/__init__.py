"""Service-task handlers: thin, typed adapters registered by the operator name a BPMN service
task names (``invoicing/create_invoice``). Each takes a ``HandlerContext`` and one pydantic
input model, calls an application service (``certflow.services``) and returns a JSON-able dict
that becomes the task's result variable.

Handlers know nothing of SpiffWorkflow, Celery or the engine: the registry they register into
(``REGISTRY``) is handed to the engine by the composition root (``certflow.bootstrap``), and
deploy checks every operator, parameter and start guard a diagram names against it.
"""

from __future__ import annotations

import importlib
import pkgutil

from certflow.i18n import N_
from certflow.registry import (
    DeployCheck,
    Guard,
    Handler,
    HandlerContext,
    HandlerError,
    HandlerRegistry,
    PermanentError,
)

__all__ = ["REGISTRY", "DeployCheck", "Guard", "Handler", "HandlerContext", "HandlerError",
           "PermanentError", "deploy_check", "get", "guard", "handler", "load_all"]

# The registry every module of this package registers into when imported.
REGISTRY = HandlerRegistry()
handler = REGISTRY.handler
deploy_check = REGISTRY.deploy_check
shared_check = REGISTRY.shared_check
guard = REGISTRY.guard
conflict_rule = REGISTRY.conflict_rule

# What each parameter a handler takes means, for the process owners who fill it in the studio
# (an expression on the case's data; the examples are the diagrams' own).
REGISTRY.parameter_help.update({
    "holder": N_("The professional, by username: usually candidate or holder."),
    "person": N_("The person, by username: usually candidate."),
    "customer": N_("Who is invoiced, by username: usually candidate or customer."),
    "recipient": N_("Who gets the mail, by username: candidate, holder, supervisor …"),
    "template": N_("The mail's template, e.g. 'certification/invoice_sent' (the studio's E-mails)."),
    "context": N_("What the template may show beyond the case, e.g. {'invoice_number': invoice_number}."),
    "attach_invoices": N_("Invoice numbers to attach as PDF and UBL, e.g. [invoice['invoice_number']]."),
    "product": N_("What is invoiced, e.g. 'certification'; its fee is in the fee table."),
    "quantity": N_("How many; 1 when left empty."),
    "reference": N_("A reference shown on the invoice; none when left empty."),
    "supply_date": N_("The date whose fee applies; today when left empty."),
    "invoice_number": N_("The invoice, by its number, e.g. invoice_number."),
    "reason": N_("Why, in a sentence: it is kept with the change and may be mailed."),
    "certificate_id": N_("The certificate, as an earlier step returned it: certificate['certificate_id']."),
    "level": N_("The certificate's level; RL when left empty."),
    "specialisation": N_("A specialisation printed on the certificate; none when left empty."),
    "valid_from": N_("The first day the certificate is valid; today when left empty."),
    "valid_years": N_("How many years it is valid; the usual term (settings) when left empty."),
    "language": N_("The certificate's language: 'nl' or 'en'."),
    "assessors": N_("The assessors chosen, by username, e.g. [assessor_1, assessor_2]."),
    "mentor": N_("The mentor, by username, e.g. mentor."),
    "supervisor": N_("The supervisor, by username, e.g. supervisor."),
    "year": N_("The fee's year, e.g. year; for the yearly run, the year it is due in when left empty."),
    "due": N_("When the yearly run was due (the timer's moment): a late run invoices that year."),
    "batch_size": N_("How many invoices are started per batch; 1000 when left empty."),
})


def load_all() -> HandlerRegistry:
    """Import every module of this package (and ``settings.handler_modules``); each registers
    its handlers on import. Returns the filled registry."""
    from certflow.settings import get_settings

    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"handlers.{module.name}")
    for extra in filter(None, (m.strip() for m in get_settings().handler_modules.split(","))):
        importlib.import_module(extra)
    return REGISTRY


def get(name: str) -> Handler:  # type: ignore[type-arg]
    return load_all().get(name)
