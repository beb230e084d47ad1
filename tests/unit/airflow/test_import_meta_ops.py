"""A DAG written by hand with meta's own Airflow operators imports as the op tasks they run (so it moves to every
backend), parsed by the real Airflow; one reading an Airflow connection is refused with what to write instead."""

from __future__ import annotations

import textwrap
from pathlib import Path

from meta_airflow.importer import import_folder

DAG_FILE = """
from datetime import datetime

from airflow.sdk import DAG

from meta_airflow.operators import SlackAlertOperator, WarehouseLoadOperator

with DAG("loads", schedule=None, start_date=datetime(2026, 1, 1)):
    load = WarehouseLoadOperator(
        task_id="load",
        table="sales.daily",
        mode="merge",
        keys=["day"],
        source={"query": "SELECT '{{ ds }}' AS day, 1 AS n"},
        conn="warehouse",
        audit=True,
    )
    tell = SlackAlertOperator(task_id="tell", channel="slack:data", message="loaded {{ ds }}", dedup_key="k")
    load >> tell

with DAG("airflow_conn", schedule=None, start_date=datetime(2026, 1, 1)):
    WarehouseLoadOperator(task_id="load_wh", table="t", mode="replace", source={"rows": []}, airflow_conn_id="wh")
"""


def test_meta_operators_import_as_their_ops(tmp_path: Path) -> None:
    (tmp_path / "loads.py").write_text(textwrap.dedent(DAG_FILE))
    found = {r.dag_id: r for r in import_folder(tmp_path)}
    loads = found["loads"]
    assert loads.pipeline is not None and loads.status == "full", loads.notes
    tasks = {t.id: t for t in loads.pipeline.tasks}
    assert tasks["load"].action.model_dump(by_alias=True) == {
        "kind": "op",
        "op": "warehouse_load",
        "with": {
            "table": "sales.daily",
            "mode": "merge",
            "source": {"query": "SELECT '{{ ds }}' AS day, 1 AS n"},
            "keys": ["day"],
            "conn": "warehouse",
            "audit": True,
        },
    }
    assert tasks["tell"].action.model_dump(by_alias=True) == {
        "kind": "op",
        "op": "alert",
        "with": {"channel": "slack:data", "message": "loaded {{ ds }}", "dedup_key": "k"},
    }
    assert tasks["tell"].upstream == ("load",)
    refused = found["airflow_conn"]
    assert refused.pipeline is None
    assert "WarehouseLoadOperator(airflow_conn_id='wh') reads an Airflow connection" in (refused.refused or "")
    assert refused.expected and "conn: <name>" in refused.expected
    assert refused.location and refused.location.endswith("loads.py:22")  # the operator that reads it
