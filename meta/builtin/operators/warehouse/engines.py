"""Which database a load talks to, and a SQLAlchemy engine for it that gives one real transaction per load."""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from meta.execution import secrets
from meta.spec.errors import MetaError


class EngineConfigError(MetaError, ValueError):
    """The target database URL is missing or malformed."""


def target_url(url: str | None, conn: str | None) -> str:
    """``url`` (secrets resolved), else ``META_CONN_<CONN>``, else DuckDB at ``$META_HOME/warehouse.duckdb``."""
    if url is None and conn is not None:
        variable = f"META_CONN_{secrets.env_name(conn)}"
        url = os.environ.get(variable)
        if url is None:
            raise EngineConfigError(
                f"connection {conn!r} is not configured: set the environment variable {variable} to a SQLAlchemy URL "
                "(e.g. postgresql://user:${{secret:PG_PASSWORD}}@host/db)"
            )
    if url is None:
        home = secrets.meta_home()
        home.mkdir(parents=True, exist_ok=True)
        return f"duckdb:///{home / 'warehouse.duckdb'}"
    resolved = secrets.resolve(url)
    try:
        secrets.mark_sensitive(make_url(resolved).password)
    except Exception:  # not a URL at all: create_engine reports it, with the URL hidden
        secrets.mark_sensitive(resolved)
    return _with_driver(resolved)


def _with_driver(url: str) -> str:
    # psycopg 3 is meta's PostgreSQL driver; SQLAlchemy's default for a bare postgresql:// is psycopg2.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def create_engine(url: str) -> sa.Engine:
    """An engine without a pool: a DuckDB file lock or a PostgreSQL session must not outlive the load."""
    try:
        engine = sa.create_engine(url, poolclass=NullPool)
    except Exception as exc:
        raise EngineConfigError(f"cannot use database URL {safe_url(url)}: {secrets.redact(str(exc))}") from None
    if engine.dialect.name == "sqlite":
        _sqlite_real_transactions(engine)
    return engine


def _sqlite_real_transactions(engine: sa.Engine) -> None:
    # pysqlite starts transactions lazily and not before DDL; emit BEGIN ourselves so the whole load (temp staging
    # table included) is one transaction (the recipe from SQLAlchemy's SQLite documentation).
    @sa.event.listens_for(engine, "connect")
    def _no_implicit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN")
