"""Health checks shared by ``/readyz`` and ``certflow doctor``: each says what is wrong and how
to fix it. A check never raises; it returns a ``Check``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from sqlalchemy import text

from certflow.settings import ROOT, Settings
from certflow.store.db import get_engine

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "fail"


def guarded(name: str, fix: str) -> Callable[[Callable[[Settings], Check]], Callable[[Settings], Check]]:
    """Turn an exception inside a check into a failed check that names the fix."""
    def wrap(fn: Callable[[Settings], Check]) -> Callable[[Settings], Check]:
        def run(settings: Settings) -> Check:
            try:
                return fn(settings)
            except Exception as exc:  # a check reports; it never takes the caller down
                return Check(name, "fail", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", fix)
        run.__name__ = fn.__name__
        return run
    return wrap


def safe_url(url: str) -> str:
    """``url`` with its password shown as ``***`` (database and broker URLs alike)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the check itself
        return "(unparsable URL)"


@guarded("database", "check DATABASE_URL and that the database server is running and reachable")
def database(settings: Settings) -> Check:
    with get_engine(settings.database_url).connect() as conn:
        conn.execute(text("select 1"))
    return Check("database", "ok", f"reachable ({safe_url(settings.database_url)})")


@lru_cache(maxsize=1)
def migration_heads() -> tuple[str, ...]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "certflow" / "store" / "migrations"))
    return tuple(sorted(ScriptDirectory.from_config(config).get_heads()))


@guarded("migrations", "run `certflow migrate`")
def migrations(settings: Settings) -> Check:
    from alembic.runtime.migration import MigrationContext

    with get_engine(settings.database_url).connect() as conn:
        current = tuple(sorted(MigrationContext.configure(conn).get_current_heads()))
    heads = migration_heads()
    if current == heads:
        return Check("migrations", "ok", f"at head {', '.join(heads)}")
    shown = ", ".join(current) or "none (an empty or unmanaged database)"
    return Check("migrations", "fail", f"database at {shown}; code expects {', '.join(heads)}",
                 "run `certflow migrate` (or start the migrate service) before web, worker and beat")


@guarded("broker", "check REDIS_URL and that Redis is running and reachable")
def broker(settings: Settings) -> Check:
    if settings.redis_url:
        import redis

        client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
        return Check("broker", "ok", f"Redis answers ({safe_url(settings.redis_url)})")
    from kombu import Connection

    with Connection(settings.broker_url, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1)
    return Check("broker", "ok", f"embedded broker ({settings.broker_url})")


READINESS = (database, migrations, broker)


def readiness(settings: Settings) -> list[Check]:
    return [check(settings) for check in READINESS]
