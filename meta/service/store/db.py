"""Engines, sessions and migrations. ``open_store(url)`` upgrades the database to the newest Alembic revision
first, so every process (``meta serve``, ``meta status`` without a server, tests) sees the same schema.

SQLite runs in WAL mode with a busy timeout (several processes read while ``meta serve`` writes); PostgreSQL uses
the psycopg 3 driver (``postgresql+psycopg://``; plain ``postgresql://`` is rewritten to it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a malformed URL is shown as its scheme only
        return url.split("://", 1)[0] + "://…"


def fingerprint(url: str) -> str:
    """Which store ``url`` names, as 16 hex digits (sha256 of the URL without its password): ``/health`` shows it so
    that a CLI can tell its own workspace's control plane from another one answering on the same port."""
    url = normalise_url(url)
    if url.startswith("sqlite") and "///" in url:
        head, path = url.split("///", 1)
        if path and path != ":memory:":
            url = f"{head}///{Path(path).resolve()}"  # the same file, however it was spelt
    return hashlib.sha256(redact(url).encode()).hexdigest()[:16]


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at each checkpoint, survives SIGKILL
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade to ``revision`` (idempotent: a database already there is left alone)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


@dataclass
class Store:
    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on any error."""
        with self.sessions.begin() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, upgrade: bool = True) -> Store:
    engine = make_engine(url)
    if upgrade:
        migrate(engine)
    return Store(engine, sessionmaker(engine, expire_on_commit=False))
