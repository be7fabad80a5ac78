"""The composition root: the one Engine of a process, wired with the handler registry
(``handlers.load_all()``) and the broker publisher when there is one. The only module that
joins engine, handlers and worker; everything else receives what it needs from here."""

from __future__ import annotations

import gc
from functools import lru_cache

from sqlalchemy import inspect

from certflow.engine.facade import Engine
from certflow.engine.runtime import Publisher
from certflow.settings import Settings, get_settings
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


def preload(settings: Settings) -> None:
    """Import what ``build_engine`` imports (the handler modules, the services they call) and
    what a first job loads lazily, without building anything: no database connection, no
    evaluator, no thread. For a parent process whose forked children each build their engine
    (Celery's prefork pool): they inherit all of it instead of loading it on their first job.

    The lazy parts: the database driver (psycopg and its type adapters, imported when the
    engine is created), the ORM's mapper configuration, the metrics library, and the Dutch
    public holidays of this year and the next (the holidays package imports every country's
    module and reads their translations on first use). A child's first job took ~260 ms CPU,
    most of it these, paid again by every replaced child."""
    from datetime import date

    import prometheus_client  # noqa: F401
    from sqlalchemy.engine import make_url
    from sqlalchemy.orm import configure_mappers

    import handlers
    from certflow import workdays
    from certflow.services import notices  # noqa: F401

    handlers.load_all()
    make_url(settings.database_url).get_dialect().import_dbapi()
    configure_mappers()  # otherwise done by the first query
    calendar = workdays.calendar(settings.processes_dir)
    for year in (date.today().year, date.today().year + 1):
        calendar.is_working_day(date(year, 1, 1))


def freeze_heap() -> None:
    """What this process has loaded so far, out of the cyclic garbage collector's passes for
    good (its garbage collected first, so none of it is kept). For a serving process once it
    has started (the web's, a worker's): its modules, SpiffWorkflow's and SQLAlchemy's, and
    the engine live as long as the process, yet every older-generation pass walked all of
    them again, about 70 ms CPU each and a few percent of an advance's CPU (bench/engine.py).
    Frozen objects are still freed when their last reference goes; only a reference cycle
    among them would stay."""
    gc.collect()
    gc.freeze()


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
