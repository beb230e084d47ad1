"""A fresh PostgreSQL database for one test session (``meta_cp_<random>`` on 127.0.0.1:5432, dropped at the end),
and a store on it emptied before each test. Tests using them are marked ``postgres``."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from meta.service.store.db import Store, open_store
from meta.service.store.orm import Base

SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL driver (extra meta-orchestrator[postgres])")

    name = f"meta_cp_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(name="pg_store")
def pg_store_fixture(pg_url: str) -> Iterator[Store]:
    """The migrated store, every table emptied (ids restarted) so each test starts clean."""
    store = open_store(pg_url)
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with store.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield store
    store.close()
