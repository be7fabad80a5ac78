"""Words for the codes the engine and the services use (process ids, groups, messages), so a
page never shows ``office`` or ``recertification_written`` where a person reads. The labels
are marked with ``N_`` and translated where they are shown (the ``process``, ``group`` and
``who`` template filters in rendering.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

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

# What a finished case came to (CaseProgress.outcome, the end event's id), as its candidate
# reads it; "process:end" where one end id means different things in different processes.
OUTCOMES = {
    "end_certified": N_("You are certified. Your certificate is under Certificates."),
    "end_not_granted": N_("The certificate was not granted."),
    "recertification_written:end_not_granted": N_("You were not recertified."),
    "recertification_supervisor:end_not_granted": N_("You were not recertified."),
    "end_recertified": N_("You are recertified. Your new certificate is under Certificates."),
    "end_rejected": N_("Your application was not admitted."),
    "end_cancelled": N_("Cancelled, because the invoice was not paid in time."),
    "end_cancelled_credited": N_("Your application was cancelled and the invoice credited."),
    "end_terminated": N_("Your application was ended."),
    "end_english_delivered": N_("Your English certificate has been delivered."),
    "end_book_shipped": N_("Your book has been sent."),
    "end_anonymised": N_("Your data have been erased."),
    "end_refused": N_("Your request was refused."),
    "end_lapsed": N_("Your certificate has lapsed."),
    "end_paid": N_("Paid."),
}
# The processes whose business key is the candidate's own reference ("Your reference" when
# they sent it). Others' keys are internal (``lifecycle-cas``, ``erasure-cas``): never shown.
REFERENCE_PROCESSES = frozenset({"certification", "recertification_written",
                                 "recertification_supervisor", "orders"})


def outcome_label(process_id: str, outcome: str | None) -> str | None:
    if not outcome:
        return None
    return OUTCOMES.get(f"{process_id}:{outcome}") or OUTCOMES.get(outcome)

# Case data no task form asks for (a start form's, filled in on Mijn CMI's own pages): the
# words a task's case context shows for them, and for their coded values.
VARIABLE_LABELS = {
    "candidate": N_("Candidate"),
    "customer": N_("Customer"),
    "eligibility_route": N_("How the candidate shows HBO level"),
    "motivation": N_("Motivation"),
}
CHOICE_LABELS = {
    "eligibility_route": {
        "hbo_diploma": N_("A completed 3-year full-time HBO (bachelor) diploma"),
        "evc": N_("An EVC (recognition of prior learning) at HBO level"),
        "cotan_assessment": N_("An assessment of HBO thinking and working level by a recognised (Cotan) bureau"),
    },
}


# Case variables that hold a username: shown with the person's name.
PERSON_VARIABLES = frozenset({"candidate", "customer", "holder", "mentor", "supervisor"})


def shown_value(key: str, value: Any, language: str, names: dict[str, str] | None = None) -> Any:
    """A case variable as a person reads it: a coded choice in words, a date the Dutch (or
    English) way, a username with the person's name (``names``); anything else as it is."""
    if not isinstance(value, str):
        return value
    if key in PERSON_VARIABLES and names and value in names:
        return f"{names[value]} ({value})"
    choice = CHOICE_LABELS.get(key, {}).get(value)
    if choice:
        return gettext(language, choice)
    if len(value) == 10 and value[4:5] == "-" and value[7:8] == "-":
        try:
            return formats.long_date(date.fromisoformat(value), language)
        except ValueError:
            return value
    return value


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
