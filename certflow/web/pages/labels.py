"""Words for the codes the engine and the services use (process ids, groups, messages), so a
page never shows ``office`` or ``recertification_written`` where a person reads. The labels
are marked with ``N_`` and translated where they are shown (the ``process``, ``group`` and
``who`` template filters in rendering.py)."""

from __future__ import annotations

from certflow.i18n import N_, Words, gettext
from certflow.services.accounts import ROLE_LABELS
from certflow.web.pages import formats

PROCESS_NAMES = {
    "certification": N_("First certification"),
    "recertification_written": N_("Written recertification"),
    "recertification_supervisor": N_("Recertification with a supervisor"),
    "orders": N_("Order"),
    "data_erasure": N_("Request to erase my data"),
    "certificate_lifecycle": N_("Your certificate"),
    "register_fee": N_("Yearly register fee"),
    "register_fee_run": N_("Yearly register fee run"),
}
# Who is working on a step, as a candidate reads it: "In progress at the office".
GROUP_WHO = {
    "office": N_("the office"), "coordinator": N_("the coordinator"),
    "office_manager": N_("the office manager"), "mentor": N_("your mentor"),
    "assessor": N_("the assessors"), "committee": N_("the certification committee"),
    "certifier": N_("the certifier"), "supervisor": N_("your supervisor"),
    "candidate": N_("you"), "professional": N_("you"),
}
WAITING = {
    "payment_received": N_("We are waiting for your payment of the invoice."),
    "certificate_issued": N_("We are waiting for your certificate to be issued."),
    "recertification_started": N_("We are waiting for your recertification to start."),
    "recertified": N_("We are waiting for your recertification to finish."),
    "register_fee_due": N_("We are waiting for the next yearly register fee."),
}


def humanise(code: str) -> str:
    """The last resort for a code without a label: ``data_erasure`` -> ``Data erasure``."""
    return code.replace("_", " ").strip().capitalize()


def process_label(process_id: str | None) -> str:
    return PROCESS_NAMES.get(process_id or "", humanise(process_id or ""))


def group_label(group: str | None) -> str:
    return ROLE_LABELS.get(group or "", humanise(group or ""))


def group_who(group: str | None) -> str:
    return GROUP_WHO.get(group or "", N_("the office") if not group else humanise(group))


# Parameters of translated messages (certflow.i18n.Message) that are codes: shown in words.
PARAM_WORDS: Words = {
    "group": lambda value, language: gettext(language, group_label(value)),
    "process": lambda value, language: gettext(language, process_label(value)),
    "date": lambda value, language: formats.long_date(value, language),
}
