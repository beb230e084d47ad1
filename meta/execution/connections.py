"""The one connection resolver: which database a ``sql`` task or a ``warehouse_load`` talks to.

A connection ``NAME`` is the SQLAlchemy URL in ``META_CONN_<NAME>`` (``meta.settings.connection``). The name
``warehouse`` (and no name at all) falls back to a DuckDB file in the state directory, so the examples run with no
setup. ``${secret:...}`` references in a URL are resolved here, the password is marked sensitive (so it is redacted
from logs and errors even when written literally), and a bare ``postgresql://`` gets meta's driver, psycopg 3.
URLs carry credentials, so they are never printed: errors name the variable instead.
"""

from __future__ import annotations

from pathlib import Path

from meta import settings
from meta.execution import secrets
from meta.spec.errors import MetaError

DEFAULT_WAREHOUSE = "warehouse"
EXAMPLE_URLS = "e.g. postgresql://user:${secret:PG_PASSWORD}@host/db or duckdb:///path/file.duckdb"


class ConnectionNotFound(MetaError, LookupError):
    """A named connection is not configured."""


def connection_url(name: str | None = DEFAULT_WAREHOUSE, url: str | None = None) -> str:
    """The SQLAlchemy URL to use: ``url`` if given, else connection ``name``; secrets resolved, driver chosen.

    Raises ConnectionNotFound naming the variable to set when ``name`` is not configured (and is not ``warehouse``).
    """
    if url is None and name is not None:
        url = settings.connection(name)
        if url is None and name != DEFAULT_WAREHOUSE:
            variable = settings.connection_variable(name)
            raise ConnectionNotFound(
                f"connection {name!r} is not configured: set the environment variable {variable} to a "
                f"SQLAlchemy URL ({EXAMPLE_URLS})"
            )
    if url is None:
        return default_warehouse_url()
    resolved = str(secrets.resolve(url))  # e.g. postgresql+psycopg://etl:${secret:PG_PASSWORD}@db/warehouse
    _mark_password(resolved)
    return with_driver(resolved)


def default_warehouse_url() -> str:
    """DuckDB at ``<state dir>/warehouse.duckdb`` (the directory is created)."""
    path = settings.state_dir().resolve() / "warehouse.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"duckdb:///{Path(path).as_posix()}"


def with_driver(url: str) -> str:
    """psycopg 3 is meta's PostgreSQL driver; SQLAlchemy's default for a bare ``postgresql://`` is psycopg2."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _mark_password(url: str) -> None:
    from sqlalchemy.engine import make_url

    try:
        secrets.mark_sensitive(make_url(url).password)
    except Exception:  # not a URL at all: create_engine reports it, and the whole string stays hidden
        secrets.mark_sensitive(url)
