"""The one connection resolver (``meta.execution.connections.connection_url``): ``sql`` tasks and warehouse loads
get the same URL, driver and redaction for the same connection; the message for a missing one shows real syntax."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from meta.builtin.operators.warehouse.engines import EngineConfigError, target_url
from meta.execution import secrets
from meta.execution.connections import ConnectionNotFound, connection_url

pytestmark = pytest.mark.usefixtures("clean_secrets")


def test_sql_tasks_and_warehouse_loads_resolve_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_CONN_DW", "postgresql://etl:${secret:PG_PASSWORD}@db.test/wh")
    monkeypatch.setenv("META_SECRET_PG_PASSWORD", "pg-pass-42")
    expected = "postgresql+psycopg://etl:pg-pass-42@db.test/wh"  # psycopg 3, not SQLAlchemy's psycopg2 default
    assert connection_url("dw") == expected
    assert target_url(None, "dw") == expected
    assert target_url("postgres://etl:${secret:PG_PASSWORD}@db.test/wh", None) == expected


def test_a_literal_password_is_redacted_too(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("META_CONN_REPORTING", "postgresql://etl:literal-pw-7@db.test/wh")
    connection_url("reporting")
    with caplog.at_level(logging.INFO):
        logging.getLogger("meta.test").info("connecting with %s", "postgresql://etl:literal-pw-7@db.test/wh")
    assert "literal-pw-7" not in caplog.text and "etl:***@db.test" in caplog.text


def test_the_default_warehouse_is_duckdb_in_the_state_dir(meta_home: Path) -> None:
    expected = f"duckdb:///{(meta_home / 'warehouse.duckdb').resolve().as_posix()}"
    assert connection_url("warehouse") == expected  # a sql task's conn: warehouse
    assert target_url(None, None) == expected  # a load without url or conn
    assert target_url(None, "warehouse") == expected
    assert meta_home.is_dir()


def test_the_state_dir_expands_the_home_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("META_HOME", "~/state")
    assert connection_url() == f"duckdb:///{(tmp_path / 'state' / 'warehouse.duckdb').as_posix()}"
    assert secrets.FileSecretProvider().directory() == tmp_path / "state" / "secrets"


def test_a_missing_connection_names_the_variable_with_real_syntax() -> None:
    with pytest.raises(ConnectionNotFound) as sql_error:
        connection_url("sales-db")
    with pytest.raises(EngineConfigError) as load_error:
        target_url(None, "sales-db")
    variable = "set the environment variable META_CONN_SALES_DB"
    for message in (str(sql_error.value), str(load_error.value)):
        assert message.startswith(f"connection 'sales-db' is not configured: {variable}")
        assert "postgresql://user:${secret:PG_PASSWORD}@host/db" in message  # what the user types: single braces
        assert "{{" not in message
