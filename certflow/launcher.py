"""``certflow run``: the whole system from one command, as plain processes.

The same topology as docker-compose.yml (web, worker, beat), started as child processes of
this one; Ctrl-C stops them all. On the embedded default the broker is a SQLite file, so no
server needs to be installed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click

from certflow.observability.checks import safe_url
from certflow.services.demo import DemoLogin
from certflow.settings import get_settings


def prepare() -> tuple[list[DemoLogin], str | None]:
    """Migrate, deploy processes/, create demo users. Returns the new demo logins and their
    password (shown once)."""
    from certflow.bootstrap import engine, migrate
    from certflow.engine.facade import Actor
    from certflow.services.access import wall_now
    from certflow.services.demo import ensure_demo_users
    from certflow.store.db import session_scope

    migrate()
    for d in engine().deploy(Actor.system()):
        click.echo(f"deployed {d.process_id} v{d.version} ({'new' if d.created else 'unchanged'})")
    with session_scope() as session:
        return ensure_demo_users(session, wall_now())


def commands(host: str, port: int, workers: int) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "web": [python, "-m", "certflow.cli", "web", "--host", host, "--port", str(port)],
        "worker": [python, "-m", "certflow.cli", "worker", f"--concurrency={workers}", "--without-gossip",
                   "--without-mingle", "--without-heartbeat"],
        "beat": [python, "-m", "certflow.cli", "beat"],
    }


def die_with_parent() -> None:
    """In a child, before it runs: get SIGTERM when the parent dies, however it dies (Linux's
    PR_SET_PDEATHSIG), so a killed ``certflow run`` (or a killed test that started it) leaves
    no web, worker or beat behind to hold the port and take jobs. Elsewhere: nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def run_all(host: str, port: int, workers: int) -> None:
    settings = get_settings()
    logins, password = prepare()
    base = f"http://{host}:{port}"
    if logins:
        click.echo("\nDemo users (API tokens are shown this once; keep them):")
        for login in logins:
            click.echo(f"  {login.username:<12} {login.token}")
        click.echo(f"\nSign in at {base}/ with a demo e-mail address and this password"
                   " (shown once):")
        click.echo(f"  password: {password}")
        for login in logins:
            click.echo(f"  {login.email}")
    else:
        click.echo("\nDemo users exist already; a new password: "
                   "certflow user office --password --generate-password")
    # Passwords in the URLs stay out of the terminal (and whatever log collects it).
    click.echo(f"\nDatabase: {safe_url(settings.database_url)}\nBroker:   {safe_url(settings.broker_url)}")
    click.echo(f"Pages:    {base}/   (sign in; the public register is at {base}/register)")
    click.echo(f"API:      {base}/docs   (Authorization: Bearer <token>)\n")

    def _stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)  # a supervisor's stop ends the children too
    procs = {name: subprocess.Popen(cmd, env=os.environ.copy(), preexec_fn=die_with_parent)
             for name, cmd in commands(host, port, workers).items()}
    try:
        while all(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
        dead = [n for n, p in procs.items() if p.poll() is not None]
        click.echo(f"{', '.join(dead)} stopped; stopping the rest", err=True)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
