"""Alembic environment: migrations always run on a connection handed over by optistock.store."""

from __future__ import annotations

from alembic import context

from optistock.store.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
