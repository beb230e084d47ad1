"""Pipelines that use every model field Airflow can express, shared by the adapter's unit tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meta.spec.model import Pipeline


def rich(**overrides: Any) -> Pipeline:
    data: dict[str, Any] = {
        "id": "rich",
        "description": "every field",
        "owner": "data-team",
        "team": "growth",
        "tags": ["finance", "daily"],
        "schedule": {"kind": "cron", "cron": "30 6 * * 1-5"},
        "timezone": "Europe/Zurich",
        "start_date": "2024-01-01T00:00:00",
        "end_date": "2030-12-31T00:00:00",
        "catchup": True,
        "max_active_runs": 2,
        "max_active_tasks": 5,
        "params": {
            "country": {"type": "string", "default": "CH", "enum": ["CH", "DE"], "description": "market"},
            "limit": {"type": "integer", "default": 10, "minimum": 1, "maximum": 100},
            "run_date": {"type": ["string", "null"], "default": None, "format": "date"},
        },
        "defaults": {"retries": 2, "retry_delay": "30s", "timeout": "10m", "trigger_rule": "all_success"},
        "sla": {"max_duration": "2h"},
        "alerts": {"on_failure": ["slack:data-team"], "on_retry": ["email:oncall"], "on_sla_miss": ["slack:sla"]},
        "tasks": [
            {
                "id": "extract",
                "action": {"kind": "shell", "command": "echo {{ ds }}", "env": {"MODE": "full"}},
                "outputs": ["s3://bucket/raw"],
                "pool": "io",
                "max_active": 1,
            },
            {
                "id": "choose",
                "action": {"kind": "branch", "callable": "tests.conformance.callables:choose_left"},
                "upstream": ["extract"],
            },
            {
                "id": "left",
                "action": {"kind": "python", "callable": "tests.conformance.callables:choose_left", "kwargs": {"n": 1}},
                "upstream": ["choose"],
                "retries": 5,
                "retry_delay": "1m",
                "retry_backoff": 2.0,
                "max_retry_delay": "10m",
                "description": "the left path",
            },
            {
                "id": "right",
                "action": {"kind": "sql", "conn": "warehouse", "statement": "select 1", "parameters": {"a": 1}},
                "upstream": ["choose"],
                "inputs": ["s3://bucket/raw"],
            },
            {
                "id": "load",
                "action": {"kind": "op", "op": "warehouse_load", "with": {"table": "t"}},
                "upstream": ["left", "right"],
                "trigger_rule": "none_failed_min_one_success",
                "timeout": "5m",
            },
            {"id": "done", "action": {"kind": "noop"}, "upstream": ["load"], "trigger_rule": "all_done"},
            {
                "id": "raw.op-1",
                "action": {
                    "kind": "airflow_operator",
                    "operator": "airflow.providers.standard.sensors.bash.BashSensor",
                    "arguments": {"bash_command": "true", "poke_interval": 5},
                },
                "upstream": ["done"],
            },
        ],
    }
    data.update(overrides)
    return Pipeline.model_validate(data)


def summary(dag: Any) -> dict[str, Any]:
    """What must agree between the loader's DAG and the generated file's DAG."""
    tasks = {}
    for tid, t in sorted(dag.task_dict.items()):
        tasks[tid] = {
            "class": type(t).__name__,
            "upstream": sorted(t.upstream_task_ids),
            "trigger_rule": str(t.trigger_rule),
            "retries": t.retries,
            "retry_delay": t.retry_delay,
            "backoff": t.retry_exponential_backoff,
            "max_retry_delay": t.max_retry_delay,
            "timeout": t.execution_timeout,
            "pool": t.pool,
            "max_active": t.max_active_tis_per_dag,
            "inlets": [a.uri for a in t.inlets],
            "outlets": [a.uri for a in t.outlets],
            "env": getattr(t, "env", None),
            "command": getattr(t, "bash_command", None),
            "op_kwargs": getattr(t, "op_kwargs", None),
            "owner": t.owner,
        }
    return {
        "dag_id": dag.dag_id,
        "timetable": repr(dag.timetable) if " object at " not in repr(dag.timetable) else type(dag.timetable).__name__,
        "start_date": dag.start_date,
        "end_date": dag.end_date,
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
        "tags": sorted(dag.tags),
        "params": {k: (dag.params.get_param(k).value, dag.params.get_param(k).schema) for k in dag.params},
        "deadline": [
            (type(d.reference).__name__, d.interval, d.callback.path, d.callback.kwargs) for d in (dag.deadline or [])
        ],
        "on_failure_callback": repr(dag.on_failure_callback),
        "tasks": tasks,
    }


def ruff_format_problems(files: list[Path], cwd: Path) -> str:
    """What ``ruff format --check`` says about generated files ("" when they are formatted as ruff would)."""
    import subprocess
    import sys

    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [str(ruff), "format", "--check", "--diff", "--line-length", "120", *map(str, files)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr
