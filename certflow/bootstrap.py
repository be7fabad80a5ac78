"""The composition root: the one Engine of a process, wired with the handler registry
(``handlers.load_all()``) and the broker publisher when there is one. The only module that
joins engine, handlers and worker; everything else receives what it needs from here."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import inspect

from certflow.engine.facade import Engine
from certflow.engine.runtime import Publisher
from certflow.settings import get_settings
from certflow.store.all_models import metadata
from certflow.store.db import get_engine, session_factory


def build_engine(publisher: Publisher | None = None, database_url: str | None = None) -> Engine:
    import handlers

    from certflow.services.notices import notifier

    settings = get_settings()
    sessions = session_factory(database_url)
    engine = Engine(settings, sessions, publisher, registry=handlers.load_all())
    engine.notify = notifier(sessions, settings, engine.now)
    return engine


def preload() -> None:
    """Import what ``build_engine`` imports (the handler modules, the services they call),
    without building anything: no database connection, no evaluator, no thread. For a parent
    process whose forked children each build their engine (Celery's prefork pool): they
    inherit the modules instead of importing them on their first job."""
    import handlers
    from certflow.services import notices  # noqa: F401

    handlers.load_all()


@lru_cache(maxsize=1)
def engine() -> Engine:
    """The process's engine, publishing jobs to Celery."""
    from worker.app import publish

    return build_engine(publish)


def migrate(database_url: str | None = None) -> None:
    """Bring the schema to head with Alembic."""
    from alembic import command
    from alembic.config import Config

    from certflow.settings import ROOT

    url = database_url or get_settings().database_url
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "certflow" / "store" / "migrations"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")


def create_schema(database_url: str | None = None) -> None:
    """For tests: create every table directly (fast), skipping Alembic."""
    metadata.create_all(get_engine(database_url))


def schema_exists(database_url: str | None = None) -> bool:
    return inspect(get_engine(database_url)).has_table("instances")
