"""Operators ``register/*``: adapters over ``certflow.services.register``, the public Register
Loopbaanprofessional and its append-only history (inputs, results and the status rules are
documented there). Each is idempotent by key: a replay returns the first result."""

from __future__ import annotations

from typing import Any

from certflow.i18n import N_
from certflow.services import register
from certflow.services.register import HolderOnly, Relations, WithCertificate, WithReason
from handlers import HandlerContext, handler


@handler("register/enter", effects="database",
         summary=N_("Enter the professional in the public register with the certificate."))
def enter(ctx: HandlerContext, data: WithCertificate) -> dict[str, Any]:
    return register.enter(ctx, data)


@handler("register/extend", effects="database",
         summary=N_("Extend the professional's register entry with the new certificate."))
def extend(ctx: HandlerContext, data: WithCertificate) -> dict[str, Any]:
    return register.extend(ctx, data)


@handler("register/recertification_started", effects="database",
         summary=N_("Mark in the register that recertification has started."))
def recertification_started(ctx: HandlerContext, data: HolderOnly) -> dict[str, Any]:
    return register.recertification_started(ctx, data)


@handler("register/lapse", effects="database",
         summary=N_("Mark the register entry as lapsed: the certificate was not renewed in time."))
def lapse(ctx: HandlerContext, data: HolderOnly) -> dict[str, Any]:
    return register.lapse(ctx, data)


@handler("register/suspend", effects="database",
         summary=N_("Suspend the register entry, with the reason."))
def suspend(ctx: HandlerContext, data: WithReason) -> dict[str, Any]:
    return register.suspend(ctx, data)


@handler("register/withdraw", effects="database",
         summary=N_("Withdraw the register entry, with the reason."))
def withdraw(ctx: HandlerContext, data: WithReason) -> dict[str, Any]:
    return register.withdraw(ctx, data)


@handler("register/set_relations", effects="database",
         summary=N_("Record who guided the professional (mentor, supervisor), to keep them out of the assessment."))
def set_relations(ctx: HandlerContext, data: Relations) -> dict[str, Any]:
    """Who guided the holder (kept to refuse conflicted assessors); a replay changes nothing."""
    return register.set_relations(ctx, data)
