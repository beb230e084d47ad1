"""Real servers for the operator tests, started once per session on free loopback ports: the alert sinks of
tests/fixtures/alert_sinks.py (a Slack-like webhook and aiosmtpd with TLS and AUTH, shared with the control plane's
SLA tests) and scratch schemas in the PostgreSQL at 127.0.0.1:5432."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.fixtures.alert_sinks import (  # noqa: F401 - pytest fixtures and names the operator tests import from here
    SMTP_PASSWORD,
    SMTP_USER,
    Hook,
    SmtpServers,
    WebhookServer,
    free_port,
    self_signed,
    smtp_servers,
    webhook_server,
)

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


# ---------------------------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A scratch schema, dropped afterwards."""
    schema = f"meta_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()
