"""Named SQL connections for ``sql`` tasks on the local backend.

A connection ``NAME`` is the SQLAlchemy URL in the environment variable ``META_CONN_<NAME>`` (upper-cased, with
``-`` and ``.`` turned into ``_``). The name ``warehouse`` falls back to a DuckDB file in the state directory so the
example runs with no setup. URLs carry credentials, so they are never printed: errors name the variable instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from meta.settings import state_dir
from meta.spec.errors import MetaError

DEFAULT_WAREHOUSE = "warehouse"


class ConnectionNotFound(MetaError, LookupError):
    pass


def env_var_for(name: str) -> str:
    return "META_CONN_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def connection_url(name: str) -> str:
    """The SQLAlchemy URL of connection ``name``; raise ConnectionNotFound naming the variable to set."""
    var = env_var_for(name)
    url = os.environ.get(var)
    if url:
        from meta.execution.attempt import resolve_secrets

        return str(resolve_secrets(url))  # e.g. postgresql+psycopg://etl:${secret:PG_PASSWORD}@db/warehouse
    if name == DEFAULT_WAREHOUSE:
        return default_warehouse_url()
    raise ConnectionNotFound(
        f"no connection named {name!r}: set the environment variable {var} to a SQLAlchemy URL "
        f"(e.g. postgresql+psycopg://user@host/db or duckdb:///path/file.duckdb)"
    )


def default_warehouse_url() -> str:
    path = state_dir().resolve() / "warehouse.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"duckdb:///{Path(path).as_posix()}"
