"""``certflow``: the command line over the engine facade.

Commands act as a user (``--as USERNAME``; default the built-in ``system`` staff account) and
obey the same rules as the HTTP API. Errors print one clear line and exit with status 1.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from datetime import datetime
from functools import wraps
from typing import Any, Callable

import click
from sqlalchemy.exc import DBAPIError

from certflow.engine.dto import to_json
from certflow.errors import CertflowError
from certflow.engine.facade import Actor


def _engine() -> Any:
    from certflow.bootstrap import engine

    return engine()


def _actor(username: str | None) -> Actor:
    if not username:
        return Actor.system()
    try:
        return _engine().actor(username)
    except CertflowError as exc:
        raise click.ClickException(exc.message) from exc


def _print(value: Any) -> None:
    click.echo(json.dumps(to_json(value), indent=2, ensure_ascii=False, default=str))


def _json_arg(text: str | None, what: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise click.BadParameter(f"{what} must be a JSON object")
    return value


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Errors as one clear line: the facade's own, and a database that is missing or unmigrated."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CertflowError as exc:
            raise click.ClickException(exc.message) from exc
        except DBAPIError as exc:
            raise click.ClickException(_database_problem(exc)) from exc

    return wrapper


def _database_problem(exc: DBAPIError) -> str:
    from sqlalchemy import inspect

    from certflow.store.db import get_engine

    first_line = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
    try:
        migrated = inspect(get_engine()).has_table("instances")
    except DBAPIError:
        return f"cannot use the database ({first_line}); check DATABASE_URL"
    if not migrated:
        return "the database has no certflow tables yet: run `certflow migrate` first"
    return f"database error: {first_line}"


as_option = click.option("--as", "as_user", metavar="USERNAME", help="Act as this user (default: system staff).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """certflow: BPMN workflows for certifying career professionals.

    Start here: `certflow run` (everything, embedded), then `certflow tasks --as office`.
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", default=1, show_default=True, help="Celery worker processes.")
def run(host: str, port: int, workers: int) -> None:
    """Migrate, deploy processes/, create demo users, then run web + worker + beat."""
    from certflow.launcher import run_all

    run_all(host, port, workers)


@main.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from certflow.bootstrap import migrate as do_migrate

    do_migrate()
    click.echo("database is up to date")


@main.command()
@click.option("--only", multiple=True, help="Deploy only these process folders.")
@as_option
@friendly
def deploy(only: tuple[str, ...], as_user: str | None) -> None:
    """Validate every folder in processes/ and store changed ones as new versions."""
    for d in _engine().deploy(_actor(as_user), only=list(only) or None):
        click.echo(f"{d.process_id}: version {d.version} ({'new' if d.created else 'unchanged'})")


@main.command()
@click.argument("process_id")
@click.argument("business_key")
@click.option("--data", help="Start data as a JSON object.")
@as_option
@friendly
def start(process_id: str, business_key: str, data: str | None, as_user: str | None) -> None:
    """Start an instance of PROCESS_ID identified by BUSINESS_KEY."""
    _print(_engine().start(_actor(as_user), process_id, business_key, _json_arg(data, "--data")))


@main.command()
@click.option("--process", help="Only this process.")
@click.option("--group", help="Only this candidate group.")
@click.option("--overdue/--not-overdue", default=None)
@as_option
@friendly
def tasks(process: str | None, group: str | None, overdue: bool | None, as_user: str | None) -> None:
    """Your inbox: tasks assigned to you and unassigned ones in your groups, due first."""
    for t in _engine().inbox(_actor(as_user), process, group, overdue):
        due = t.due_at.strftime("%Y-%m-%d") if isinstance(t.due_at, datetime) else "-"
        flag = " OVERDUE" if t.overdue else ""
        click.echo(f"{t.id}  {due}{flag}  [{t.candidate_group}] {t.title} — {t.process_id}/{t.business_key}"
                   f"  ({t.assignee or 'unassigned'})")


@main.command()
@click.argument("task_id")
@as_option
@friendly
def claim(task_id: str, as_user: str | None) -> None:
    """Claim a task so that only you work on it."""
    _print(_engine().claim(_actor(as_user), task_id))


@main.command()
@click.argument("task_id")
@click.option("--data", required=True, help="Form data as a JSON object.")
@as_option
@friendly
def complete(task_id: str, data: str, as_user: str | None) -> None:
    """Complete a task with its form data (checked against the task's form)."""
    _print(_engine().complete(_actor(as_user), task_id, _json_arg(data, "--data")))


@main.command()
@click.argument("name")
@click.option("--correlate", help="KEY=VALUE the waiting instance is correlated on.")
@click.option("--business-key", help="Correlate on the business key instead.")
@click.option("--payload", help="Message payload as a JSON object.")
@as_option
@friendly
def message(name: str, correlate: str | None, business_key: str | None, payload: str | None, as_user: str | None) -> None:
    """Deliver message NAME (e.g. payment_received --correlate invoice_number=2026-000001)."""
    if correlate and "=" not in correlate:
        raise click.BadParameter("use KEY=VALUE, e.g. invoice_number=2026-000001", param_hint="--correlate")
    correlation = dict([correlate.split("=", 1)]) if correlate else None
    ids = _engine().deliver_message(_actor(as_user), name, _json_arg(payload, "--payload"), correlation, business_key)
    click.echo(f"delivered to {', '.join(ids)}")


@main.command()
@click.option("--process")
@click.option("--status", type=click.Choice(["running", "completed", "cancelled"]))
@click.argument("instance_id", required=False)
@as_option
@friendly
def instances(process: str | None, status: str | None, instance_id: str | None, as_user: str | None) -> None:
    """List instances, or show one (state, open tasks, history) with INSTANCE_ID."""
    eng, actor = _engine(), _actor(as_user)
    if instance_id:
        _print({"instance": eng.instance(actor, instance_id), "history": eng.history(actor, instance_id)})
        return
    for row in eng.instances(actor, process, status):
        click.echo(f"{row['id']}  {row['status']:<9} {row['process_id']}/{row['business_key']}"
                   f"{'  INCIDENT' if row['has_incident'] else ''}")


@main.command()
@click.option("--retry", "retry_id", type=int, help="Retry the service task of this incident.")
@click.option("--skip", "skip_id", type=int, help="Skip the service task of this incident.")
@as_option
@friendly
def incidents(retry_id: int | None, skip_id: int | None, as_user: str | None) -> None:
    """Open incidents (failed service tasks), or retry/skip one."""
    eng, actor = _engine(), _actor(as_user)
    if retry_id is not None or skip_id is not None:
        incident = retry_id if retry_id is not None else skip_id
        click.echo(eng.resolve_incident(actor, incident, "retry" if retry_id is not None else "skip"))
        return
    for i in eng.incidents(actor):
        click.echo(f"#{i.id} {i.instance_id} {i.element_id} {i.operator}: {i.error} (attempts {i.attempts})")


@main.group()
def clock() -> None:
    """Show or move the shared clock (tests and the demo only)."""


@clock.command("now")
@friendly
def clock_now() -> None:
    from certflow.clock import CLOCK
    from certflow.store.db import session_scope

    with session_scope() as session:
        CLOCK.refresh(session)
    click.echo(CLOCK.now().isoformat())


@clock.command("advance")
@click.argument("duration")
@friendly
def clock_advance(duration: str) -> None:
    """Move time forward by an ISO duration (P30D, PT2H) and fire what became due."""
    from certflow.clock import CLOCK, ClockError, parse_duration
    from certflow.settings import get_settings
    from certflow.store.db import session_scope

    try:
        with session_scope() as session:
            now = CLOCK.advance(session, parse_duration(duration), allowed=get_settings().clock_controllable)
    except ClockError as exc:
        raise click.ClickException(str(exc)) from exc
    fired = _engine().fire_due_timers()
    click.echo(f"now {now.isoformat()}; {fired} instance(s) had due timers")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", default=1, show_default=True, help="uvicorn worker processes.")
def web(host: str, port: int, workers: int) -> None:
    """Run the web API (uvicorn); with several workers /metrics adds up all of them."""
    import uvicorn

    from certflow.observability import metrics
    from certflow.settings import get_settings

    if workers > 1 and not metrics.multiprocess_dir():
        metrics.prepare_multiprocess(get_settings().var_dir / "metrics" / f"web-{socket.gethostname()}-{port}")
    # The app configures logging itself (JSON lines); uvicorn's access log is replaced by ours.
    # The factory's app loads and builds what the first request would, then freezes it
    # (certflow.web.app.serve), in each uvicorn worker process.
    uvicorn.run("certflow.web.app:serve", factory=True, host=host, port=port, workers=workers,
                access_log=False, log_config=None)


def _celery_role(role: str) -> None:
    """Before Celery starts: name the process in log lines, and with CERTFLOW_METRICS_PORT serve
    /metrics for this process and (multiprocess mode) its prefork children."""
    from certflow.observability import metrics
    from certflow.settings import get_settings
    from worker import app as worker_app

    worker_app.ROLE["name"] = role
    settings = get_settings()
    if settings.metrics_port:
        # Host name too: replicas share the files volume and a container's pid is often 1.
        metrics.prepare_multiprocess(settings.var_dir / "metrics" / f"{role}-{socket.gethostname()}-{os.getpid()}")
        metrics.start_exporter(settings.metrics_port)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def worker(args: tuple[str, ...]) -> None:
    """Run a Celery worker (extra arguments go to celery)."""
    _celery_role("worker")
    from worker.app import app

    app.worker_main(["worker", "--loglevel=INFO", *args])


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def beat(args: tuple[str, ...]) -> None:
    """Run the scheduler (Celery beat): fires due timers and sweeps the job outbox."""
    from certflow.settings import get_settings

    _celery_role("beat")
    from worker.app import app

    schedule = str(get_settings().var_dir / "celerybeat-schedule")
    app.start(["beat", "--loglevel=INFO", f"--schedule={schedule}", *args])


@main.command()
def doctor() -> None:
    """Check database, migrations, broker, SMTP, processes/, settings, stuck jobs, incidents and
    timer lag; print what is wrong and how to fix it; exit 1 when something is."""
    from pydantic import ValidationError

    from certflow.observability.doctor import diagnose
    from certflow.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            click.echo(f"FAIL settings: {error['msg']}")
        sys.exit(1)
    marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
    found = diagnose(settings, _engine())
    for check in found:
        click.echo(f"{marks[check.status]} {check.name}: {check.detail}")
        if check.fix and check.status != "ok":
            click.echo(f"     fix: {check.fix}")
    failed = [c.name for c in found if c.status == "fail"]
    click.echo(f"\n{len(failed)} problem(s): {', '.join(failed)}" if failed else "\nall checks passed")
    sys.exit(1 if failed else 0)


@main.command()
@click.option("--subject", required=True, help="The issue's subject line.")
@click.option("--template", default="newsletter/issue", show_default=True)
@click.option("--issue", help="Issue id (default: from the subject); a rerun of one issue sends nothing twice.")
@click.option("--context", help="Template variables as a JSON object.")
@friendly
def newsletter(subject: str, template: str, issue: str | None, context: str | None) -> None:
    """Send the newsletter to every account holder who has not opted out."""
    from certflow.clock import CLOCK
    from certflow.settings import get_settings
    from certflow.store.db import session_scope
    from certflow.services.email import send_newsletter

    with session_scope() as session:
        CLOCK.refresh(session)
        sent = send_newsletter(session, CLOCK.now(), get_settings(), subject, template,
                               _json_arg(context, "--context"), issue=issue)
    click.echo(f"sent to {sent} account holder(s)")


from certflow.cli_accounts import token, user  # noqa: E402  (commands register on main)

main.add_command(user)
main.add_command(token)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
