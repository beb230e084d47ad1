"""The Airflow operator wrappers: built in a real airflow.sdk DAG (validation at parse time), executed against real
DuckDB / the webhook stand-in, and the Airflow secret provider reading connections and variables through Airflow's
own secrets backends (the environment backend: AIRFLOW_CONN_* / AIRFLOW_VAR_*)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow.sdk")

from airflow.sdk import DAG
from meta_airflow.operators import EmailAlertOperator, SlackAlertOperator, WarehouseLoadOperator
from meta_airflow.secret_provider import AirflowSecretProvider, airflow_secrets

from meta.execution import secrets
from tests.integration.operators.conftest import WebhookServer
from tests.unit.operators.loads_model import DDL, execute, table_state

LOGICAL = datetime(2024, 6, 1, tzinfo=UTC)


def context(dag: DAG, run_id: str) -> dict[str, Any]:
    return {"dag": dag, "run_id": run_id, "logical_date": LOGICAL, "params": {}}


def test_operators_are_built_and_validated_at_parse_time(meta_home: Path) -> None:
    with DAG("sales", schedule=None) as dag:
        load = WarehouseLoadOperator(
            task_id="load",
            table="t",
            keys=["id"],
            source={"query": "SELECT 1 AS id"},
            airflow_conn_id="warehouse",
        )
        slack = SlackAlertOperator(task_id="tell", channel="slack:data-team", message="done {{ ds }}")
        email = EmailAlertOperator(task_id="mail", channel="email:oncall", message="done")
        load >> [slack, email]
    assert dag.task_dict["load"].downstream_task_ids == {"tell", "mail"}
    assert load._options().url == "${secret:conn/warehouse}"
    with pytest.raises(ValueError, match="mode 'merge' needs 'keys'"), DAG("bad", schedule=None):
        WarehouseLoadOperator(task_id="load", table="t", source={"rows": []})
    with pytest.raises(ValueError, match=r"needs a 'email:<name>' channel, got 'slack:x'"), DAG("bad2", schedule=None):
        EmailAlertOperator(task_id="mail", channel="slack:x", message="hi")


def test_warehouse_load_operator_reads_the_airflow_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, meta_home: Path
) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    execute(url, DDL.format(table="t"))
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", url)
    with DAG("sales", schedule=None) as dag:
        op = WarehouseLoadOperator(
            task_id="load",
            table="t",
            keys=["id"],
            source={"rows": [{"id": 1, "part": "odd", "v": 1}]},
            airflow_conn_id="warehouse",
            audit=True,
        )
    assert op.execute(context(dag, "manual__1")) == {
        "table": "t",
        "mode": "merge",
        "inserted": 1,
        "updated": 0,
        "deleted": 0,
        "strategy": "on_conflict",
    }
    assert op.execute(context(dag, "manual__1"))["updated"] == 1
    assert table_state(url, "t") == {1: 1}


def test_airflow_secret_provider(monkeypatch: pytest.MonkeyPatch, meta_home: Path) -> None:
    secrets.forget_sensitive()
    monkeypatch.setenv("AIRFLOW_VAR_SLACK_HOOK", "http://hooks.test/abc")
    monkeypatch.setenv("AIRFLOW_CONN_MY_PG", "postgres://loader:pg-secret-9@db.test:5432/wh")
    provider = AirflowSecretProvider()
    assert provider.get("slack_hook") == "http://hooks.test/abc"
    assert provider.get("conn/my_pg/password") == "pg-secret-9"
    assert provider.get("conn/my_pg/host") == "db.test"
    assert provider.get("conn/missing") is None and provider.get("missing_var") is None
    with pytest.raises(secrets.SecretNotFound, match="Airflow variable 'nope'"), airflow_secrets():
        secrets.get_secret("nope")
    with airflow_secrets():
        assert secrets.resolve("${secret:conn/my_pg/password}") == "pg-secret-9"
    assert secrets.redact("pw=pg-secret-9") == "pw=***"


def test_slack_alert_operator_sends_once(
    webhook_server: WebhookServer, monkeypatch: pytest.MonkeyPatch, meta_home: Path
) -> None:
    url, hook = webhook_server.hook()
    monkeypatch.setenv("AIRFLOW_VAR_TEAM_HOOK", url)
    monkeypatch.setenv("META_CHANNEL_SLACK_DATA_TEAM_URL", "${secret:team_hook}")
    with DAG("sales", schedule=None) as dag:
        op = SlackAlertOperator(task_id="tell", channel="slack:data-team", message="sales loaded")
    assert op.execute(context(dag, "manual__7")) == {"alerts": {"slack:data-team": "sent"}}
    assert op.execute(context(dag, "manual__7")) == {"alerts": {"slack:data-team": "duplicate"}}
    assert len(hook.received) == 1 and hook.received[0]["text"].startswith("sales loaded\nrun manual__7")
