"""Which database a load talks to, and a SQLAlchemy engine for it that gives one real transaction per load."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from meta.execution import secrets
from meta.execution.connections import DEFAULT_WAREHOUSE, ConnectionNotFound, connection_url
from meta.spec.errors import MetaError


class EngineConfigError(MetaError, ValueError):
    """The target database URL is missing or malformed."""


def target_url(url: str | None, conn: str | None) -> str:
    """``url``, else connection ``conn``, else the connection named ``warehouse`` (``META_CONN_WAREHOUSE``, itself
    falling back to the default DuckDB file): ``meta.execution.connections.connection_url``, the resolver ``sql``
    tasks use too (secrets resolved, password marked sensitive, psycopg for PostgreSQL). No ``conn`` means
    ``warehouse`` exactly, so ``meta migrate`` can redirect such a load like any other."""
    try:
        return connection_url(conn or DEFAULT_WAREHOUSE, url)
    except ConnectionNotFound as exc:
        raise EngineConfigError(str(exc)) from None


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
