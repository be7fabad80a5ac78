"""Operator ``email/send``: an adapter over ``certflow.services.email`` (templates, languages,
delivery and once-only sending are documented there).

Deploy checks here: a template a diagram names as a literal exists, and every template renders
with its sample context.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from certflow.i18n import Message, N_
from certflow.services import email
from certflow.services.email import SendEmail
from handlers import HandlerContext, deploy_check, handler, shared_check


@handler("email/send", effects="outbox",
         summary=N_("Send an e-mail from a template to a person, in their language, with invoices attached when asked."))
def send_email(ctx: HandlerContext, data: SendEmail) -> dict[str, Any]:
    """Send one templated e-mail to a user, in their language, with invoices attached. The
    process does not wait for the mail server: the task completes as its mail is queued, and
    the worker sends it after that advance commits (retried; an incident when it fails for good),
    unless the task's property wait is true (a later step needs the mail gone first)."""
    return email.send_email(ctx, data)


@deploy_check("email/send")
def _template_exists(literals: dict[str, Any]) -> list[str]:
    template = literals.get("template")
    problem = email.unknown_template(template) if isinstance(template, str) else None
    return [Message("email/send: %(problem)s", problem=problem)] if problem else []


@shared_check("handlers/templates/email")
def _templates_render(processes_dir: Path) -> list[str]:
    return email.check_templates()
