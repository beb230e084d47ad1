"""``${secret:NAME}`` on a real Airflow: resolved from an Airflow Variable while the task runs, never stored in
the DAG or shown in task logs."""

from __future__ import annotations

import uuid

import pytest
from meta_airflow.remote import trigger, wait_for_dags, wait_for_runs, write_spec

from meta.spec.model import Pipeline

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
SECRET_VALUE = "it-s3cr3t-value"
PIPELINE = Pipeline.model_validate(
    {
        "id": "it_secrets",
        "tasks": [
            {
                "id": "shell",
                "action": {
                    "kind": "shell",
                    "command": f'test "$TOKEN" = {SECRET_VALUE} && echo "token is $TOKEN"',
                    "env": {"TOKEN": "${secret:it_token}"},
                },
            },
            {
                "id": "python",
                "action": {
                    "kind": "python",
                    "callable": "tests.integration.airflow.secret_callables:check_token",
                    "kwargs": {"api_key": "${secret:it_token}"},
                },
            },
        ],
    }
)


def test_secret_references_resolve_from_airflow_variables_and_stay_masked(airflow_server) -> None:
    run_id = f"it_{uuid.uuid4().hex[:10]}"
    with airflow_server.client() as client:
        client.request("POST", "/variables", json={"key": "it_token", "value": SECRET_VALUE})
        write_spec(airflow_server.specs_dir, PIPELINE)
        wait_for_dags(client, [PIPELINE.id])
        trigger(client, PIPELINE, {}, run_id)
        [result] = wait_for_runs(client, {PIPELINE.id: run_id}, timeout=240).values()
        assert result.states() == {"shell": "success", "python": "success"}
        log = client.request("GET", f"/dags/{PIPELINE.id}/dagRuns/{run_id}/taskInstances/shell/logs/1")
        dag_source = client.request("GET", f"/dagSources/{PIPELINE.id}")
    text = str(log)
    assert "token is ***" in text, text[-2000:]
    assert SECRET_VALUE not in text
    assert SECRET_VALUE not in str(dag_source)
