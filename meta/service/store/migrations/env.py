"""Alembic environment: the engine comes from ``meta.service.store.db`` (config.attributes), never from a file."""

from __future__ import annotations

from alembic import context

from meta.service.store.orm import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
