"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text

from certflow.bootstrap import migrate
from certflow.settings import ROOT
from tests.support import PG_ADMIN, IN_CI


def _config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "certflow" / "store" / "migrations"))
    config.attributes["database_url"] = url
    return config


def _check(url: str) -> None:
    migrate(url)
    command.check(_config(url))  # raises if the models need a migration the repo lacks
    assert {"instances", "jobs", "human_tasks", "invoices", "certificates"} <= set(inspect(create_engine(url)).get_table_names())


def test_sqlite_migrates_to_the_models(tmp_path) -> None:
    _check(f"sqlite:///{tmp_path / 'm.sqlite'}")


@pytest.mark.integration
def test_postgres_migrates_to_the_models() -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS certflow_test_migrations WITH (FORCE)"))
            conn.execute(text("CREATE DATABASE certflow_test_migrations"))
    except Exception as exc:  # noqa: BLE001
        if IN_CI:
            pytest.fail(f"PostgreSQL unreachable: {exc}")
        pytest.skip(str(exc))
    try:
        _check(PG_ADMIN.rsplit("/", 1)[0] + "/certflow_test_migrations")
    finally:
        from certflow.store.db import reset_engines

        reset_engines()
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS certflow_test_migrations WITH (FORCE)"))
