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
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
