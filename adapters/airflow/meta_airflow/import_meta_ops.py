"""meta's own Airflow operators (``meta_airflow.operators``) -> the op tasks they run: a DAG written by hand with
``WarehouseLoadOperator`` or ``SlackAlertOperator``/``EmailAlertOperator`` imports as ``op: warehouse_load`` /
``op: alert``, so it moves to every backend, as the DAG meta compiles from those ops would."""

from __future__ import annotations

from typing import Any

from meta_airflow.import_values import ImportRefused, class_path

WAREHOUSE_LOAD = "meta_airflow.operators.WarehouseLoadOperator"
ALERTS = ("meta_airflow.operators.SlackAlertOperator", "meta_airflow.operators.EmailAlertOperator")


def meta_op_action(op: Any) -> dict[str, Any] | None:
    """The op action of one of meta's operators; None for any other operator."""
    path = class_path(op)
    if path == WAREHOUSE_LOAD:
        return {"kind": "op", "op": "warehouse_load", "with": _load_options(op)}
    if path in ALERTS:
        options = {"channel": op.channel, "message": op.message}
        if op.dedup_key:
            options["dedup_key"] = op.dedup_key
        return {"kind": "op", "op": "alert", "with": options}
    return None


def _load_options(op: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"table": op.table, "mode": op.mode, "source": op.source}
    if op.keys:
        options["keys"] = list(op.keys)
    if op.partition is not None:
        options["partition"] = op.partition
    if op.airflow_conn_id:
        raise ImportRefused(
            f"task {op.task_id}: WarehouseLoadOperator(airflow_conn_id={op.airflow_conn_id!r}) reads an Airflow "
            "connection, which other backends do not have",
            task=op.task_id,
            received=f"airflow_conn_id={op.airflow_conn_id!r}",
            expected="conn: <name> (META_CONN_<NAME> on every backend) or url: with ${secret:...}",
        )
    for name in ("url", "conn"):
        value = getattr(op, name)
        if value is not None:
            options[name] = value
    if op.audit:
        options["audit"] = op.audit
    return options
