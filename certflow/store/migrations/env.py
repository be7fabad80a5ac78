"""Alembic environment: the schema is certflow's models; the URL is certflow's setting."""

from __future__ import annotations

from alembic import context

from certflow.settings import get_settings
from certflow.store.all_models import metadata
from certflow.store.db import get_engine

url = context.config.attributes.get("database_url") or get_settings().database_url


def run() -> None:
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    with get_engine(url).connect() as connection:
        # SQLite changes a table by copying it and dropping the old one (batch mode), which
        # fails while other tables' rows refer to it (instances -> definitions) and foreign
        # keys are on. So they are off while migrating (it cannot be switched inside the
        # transaction: before it, on the driver's connection) and checked once done.
        raw = connection.connection.dbapi_connection if connection.dialect.name == "sqlite" else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")
        if raw is not None:
            broken = raw.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration left rows that refer to nothing: {broken[:5]}")


run()
