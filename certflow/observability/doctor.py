"""``certflow doctor``: every check an operator would otherwise do by hand, each with what is
wrong and how to fix it. ``fail`` means the system is not working as it should (the command
exits 1); ``warn`` is worth a look but not broken."""

from __future__ import annotations

import smtplib
import ssl
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from certflow.clock import CLOCK
from certflow.observability.checks import Check, broker, database, guarded, migrations
from certflow.settings import DEV_SECRET, Settings
from certflow.store.db import session_scope
from certflow.store.models import Incident, Instance, Job

if TYPE_CHECKING:
    from certflow.engine.facade import Engine


@guarded("smtp", "check CERTFLOW_SMTP_HOST/PORT/TLS/USER/PASSWORD and that the mail server accepts us")
def smtp(settings: Settings) -> Check:
    if not settings.smtp_host:
        where = settings.var_dir / "mail"
        if settings.env == "production":
            return Check("smtp", "fail", f"no CERTFLOW_SMTP_HOST: mail goes to {where}, nobody receives it",
                         "set CERTFLOW_SMTP_HOST (and PORT, TLS, USER, PASSWORD) to the mail relay")
        return Check("smtp", "ok", f"mail is written to the Maildir {where} (development)")
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=5) as server:
        server.ehlo()
        if settings.smtp_tls:
            server.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            server.login(settings.smtp_user, settings.smtp_password)
    return Check("smtp", "ok", f"{settings.smtp_host}:{settings.smtp_port} accepts a session")


def production_settings(settings: Settings) -> list[Check]:
    """What is unsafe in production (Settings already refuses the worst at start)."""
    if settings.env != "production":
        return [Check("settings", "warn", f"CERTFLOW_ENV={settings.env}: development defaults allowed",
                      "set CERTFLOW_ENV=production on a real deployment")]
    found = []
    if settings.is_sqlite:
        found.append(Check("settings", "fail", "production on SQLite", "set DATABASE_URL to PostgreSQL"))
    if not settings.redis_url:
        found.append(Check("settings", "fail", "production on the SQLite broker", "set REDIS_URL"))
    if settings.secret_key == DEV_SECRET or len(settings.secret_key) < 32:
        found.append(Check("settings", "fail", "CERTFLOW_SECRET_KEY is short or the default",
                           "set 32+ random characters, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"))
    if "localhost" in settings.public_url or "127.0.0.1" in settings.public_url:
        found.append(Check("settings", "fail", f"CERTFLOW_PUBLIC_URL is {settings.public_url}: links in emails lead nowhere",
                           "set CERTFLOW_PUBLIC_URL to the address people use, e.g. https://mijn.example.nl"))
    if not settings.metrics_token:
        found.append(Check("settings", "warn", "/metrics answers anyone who can reach the web port",
                           "set CERTFLOW_METRICS_TOKEN or keep /metrics off the public proxy"))
    return found or [Check("settings", "ok", "production settings look safe")]


def processes(engine: "Engine") -> Check:
    from certflow.engine.errors import DeployError

    try:
        plan = engine.deploy_plan()
    except DeployError as exc:
        listed = "; ".join(str(p) for p in exc.problems[:5])
        return Check("processes", "fail", f"processes/ does not deploy: {listed}",
                     "fix the files named (the process owner's last change), then `certflow deploy`")
    except Exception as exc:  # an unreadable folder is a finding, not a crash of the doctor
        return Check("processes", "fail", f"{type(exc).__name__}: {exc}", "check CERTFLOW_PROCESSES_DIR")
    differ = [f"{name} ({state})" for name, state in plan if state != "unchanged"]
    if differ:
        return Check("processes", "fail", f"processes/ differs from what is deployed: {', '.join(differ)}",
                     "run `certflow deploy` (or restart the migrate service) to store the new versions")
    return Check("processes", "ok", f"{len(plan)} definitions and tables, all deployed")


def _age(now: datetime, then: datetime | None) -> float:
    return (now - then).total_seconds() if then is not None else 0.0


def runtime(settings: Settings) -> list[Check]:
    """Stuck jobs, open incidents and timer lag, from the projections."""
    limit = settings.doctor_lag_seconds
    with session_scope() as s:
        CLOCK.refresh(s)
        now = CLOCK.now()
        waiting = s.scalar(select(func.count()).select_from(Job).where(
            Job.status == "queued", Job.available_at < now - timedelta(seconds=limit))) or 0
        lost = s.scalar(select(func.count()).select_from(Job).where(
            Job.status == "running",
            Job.published_at < now - timedelta(seconds=settings.running_lost_after_seconds))) or 0
        incidents = s.scalar(select(func.count()).select_from(Incident).where(Incident.status == "open")) or 0
        oldest_due = s.scalar(select(func.min(Instance.next_due_at)).where(
            Instance.status == "running", Instance.next_due_at <= now))
    found = []
    if waiting:
        found.append(Check("jobs", "fail", f"{waiting} job(s) due for more than {limit:.0f}s and not taken",
                           "start a worker (`certflow worker`, or scale the worker service); check its log"))
    if lost:
        found.append(Check("jobs", "warn", f"{lost} job(s) taken by a worker that never finished them",
                           "a worker died mid-job; beat re-publishes them; if it repeats, read the worker logs"))
    if not waiting and not lost:
        found.append(Check("jobs", "ok", "no stuck jobs"))
    if incidents:
        found.append(Check("incidents", "fail", f"{incidents} open incident(s)",
                           "`certflow incidents` lists them; fix the cause, then `--retry ID` or `--skip ID`"))
    else:
        found.append(Check("incidents", "ok", "no open incidents"))
    lag = _age(now, oldest_due)
    if lag > limit:
        found.append(Check("timers", "fail", f"the oldest due timer is {lag:.0f}s late",
                           "start beat (`certflow beat`, exactly one) and a worker; check beat's log"))
    else:
        found.append(Check("timers", "ok", f"timer lag {lag:.0f}s"))
    return found


def diagnose(settings: Settings, engine: "Engine | None" = None) -> list[Check]:
    found = [database(settings)]
    found.append(migrations(settings))
    found += [broker(settings), smtp(settings)]
    found += production_settings(settings)
    if found[0].ok and found[1].ok:  # the rest reads tables that must exist
        if engine is not None:
            found.append(processes(engine))
        found += _runtime_checks(settings)
    return found


def _runtime_checks(settings: Settings) -> list[Check]:
    try:
        return runtime(settings)
    except Exception as exc:  # reported, like every other check
        return [Check("runtime", "fail", f"{type(exc).__name__}: {exc}", "see the database check")]
