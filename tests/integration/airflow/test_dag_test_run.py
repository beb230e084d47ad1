"""`meta run --backend airflow` without a server: Airflow's own dag.test() in a throwaway AIRFLOW_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

SPEC = {
    "id": "dagtest_run",
    "params": {"country": {"type": "string", "default": "DE"}},
    "sla": {"max_duration": "1h"},  # dag.test() of 3.3.2 crashes after runs of DAGs with a deadline: handled
    "tasks": [
        {"id": "a", "action": {"kind": "shell", "command": 'test "$META_PARAM_COUNTRY" = CH'}},
        {
            "id": "b",
            "action": {"kind": "python", "callable": "tests.conformance.callables:check_context"},
            "upstream": ["a"],
        },
        {
            "id": "c",
            "action": {"kind": "shell", "command": "exit 1"},
            "upstream": ["b"],
            "retries": 1,
            "retry_delay": "1s",
        },
        {"id": "d", "action": {"kind": "noop"}, "upstream": ["c"], "trigger_rule": "all_done"},
    ],
}


def test_run_with_dag_test_gives_the_local_json(tmp_path: Path) -> None:
    from meta_airflow.run import run_pipeline

    from meta.semantics.request import RunRequest
    from meta.spec.model import Pipeline

    env_backup = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("META_AIRFLOW_")}
    try:
        p = Pipeline.model_validate(SPEC)
        result = run_pipeline(p, RunRequest.build(p, params={"country": "CH"}))
    finally:
        os.environ.update(env_backup)
    out = result.to_json()
    assert out["state"] == "success" and out["backend"] == "airflow"
    assert out["tasks"] == {
        "a": {"state": "success", "attempts": 1},
        "b": {"state": "success", "attempts": 1},
        "c": {"state": "failed", "attempts": 2},
        "d": {"state": "success", "attempts": 1},
    }
    json.dumps(out)  # the CLI prints exactly this


def test_dag_test_child_reports_a_missing_pipeline(tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {
                "pipeline_id": "nope",
                "dags_folder": str(tmp_path),
                "params": {},
                "logical_date": "2024-01-01T00:00:00+00:00",
            }
        )
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "meta_airflow.dagtest", str(request)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "pipeline 'nope' did not load in Airflow" in proc.stderr
