"""Results and mapped tasks on a real Airflow 3, beyond the conformance states: text rendering of a mapped task's
result with zero, one and several instances (Airflow's xcom_pull gives a bare value for one XCom; meta renders the
list), shell results in env, and the instances `meta run --backend airflow` reports over REST and with dag.test().

The same pipeline is deployed through the loader and as a generated DAG file; both must end identically. The
callables assert what they receive, so a success also proves the value that was passed.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest
from meta_airflow.codegen import write_dag_files
from meta_airflow.remote import trigger, wait_for_dags, wait_for_runs, write_spec

from meta.semantics.request import RunRequest
from meta.spec.model import Pipeline

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
CALLABLES = "tests.conformance.callables"


def py(task_id: str, function: str, *upstream: str, **fields: Any) -> dict[str, Any]:
    action = {"kind": "python", "callable": f"{CALLABLES}:{function}", "kwargs": fields.pop("kwargs", {})}
    return {"id": task_id, "action": action, "upstream": list(upstream), **fields}


def expect(task_id: str, value: Any, expected: Any, **fields: Any) -> dict[str, Any]:
    return py(task_id, "expect", kwargs={"value": value, "expected": expected}, **fields)


def spec(pipeline_id: str) -> Pipeline:
    return Pipeline.model_validate(
        {
            "id": pipeline_id,
            "tags": ["integration"],
            "params": {"who": {"type": "string", "default": "CH"}},
            "tasks": [
                # downstream tasks first: references may point to tasks defined later
                expect("text_one", "got {{ tasks.one.result }}", "got [8]"),
                expect("text_many", "{{ tasks.many.result[1] }} of {{ tasks.many.result | length }}", "4 of 3"),
                expect("text_zero", "got {{ tasks.zero.result }}", "got []", trigger_rule="all_done"),
                expect("whole_one", "{{ tasks.one.result }}", [8]),
                py("one", "square", kwargs={"power": 3}, map={"x": [2]}),
                py("many", "square", map={"x": "{{ tasks.numbers.result }}"}),
                py("numbers", "numbers", kwargs={"count": 3}),
                py("zero_source", "numbers", kwargs={"count": 0}),
                py("zero", "square", map={"x": "{{ tasks.zero_source.result }}"}),
                {"id": "word", "action": {"kind": "shell", "command": "echo ignored; echo hello"}},
                {
                    "id": "shell_env",
                    "action": {
                        "kind": "shell",
                        "command": 'test "$WORD" = hello && test "$ROWS" = "rows [1, 4, 9]" && echo "$WORD $ROWS"',
                        "env": {"WORD": "{{ tasks.word.result }}", "ROWS": "rows {{ tasks.many.result }}"},
                    },
                },
                expect("shell_result", "{{ tasks.shell_env.result }}", "hello rows [1, 4, 9]"),
                # Airflow renders the strings of a literal map list (values from XCom are never rendered again)
                py(
                    "labels",
                    "pair",
                    map={"x": [1, 2], "y": ["{{ params.who }}", "{{ tasks.numbers.result | length }}"]},
                ),
                expect("labels_check", "{{ tasks.labels.result }}", ["1CH", "13", "2CH", "23"]),
                # a fixed kwarg of a mapped task from another task's result (an XComArg in partial())
                py("two", "square", kwargs={"x": 2, "power": 1}),
                py("scaled", "square", kwargs={"power": "{{ tasks.two.result }}"}, map={"x": [1, 2, 3]}),
                expect("scaled_check", "{{ tasks.scaled.result }}", [1, 4, 9]),
            ],
        }
    )


EXPECTED_STATES = {
    "text_one": "success",
    "text_many": "success",
    "text_zero": "success",
    "whole_one": "success",
    "one": "success",
    "many": "success",
    "numbers": "success",
    "zero_source": "success",
    "zero": "skipped",
    "word": "success",
    "shell_env": "success",
    "shell_result": "success",
    "labels": "success",
    "labels_check": "success",
    "two": "success",
    "scaled": "success",
    "scaled_check": "success",
}
THREE = {0: "success", 1: "success", 2: "success"}
EXPECTED_INSTANCES = {
    "one": {0: "success"},
    "many": THREE,
    "zero": {},
    "labels": {0: "success", 1: "success", 2: "success", 3: "success"},
    "scaled": THREE,
}
LOADED, GENERATED = spec("it_results_loaded"), spec("it_results_generated")


@pytest.fixture(scope="module")
def results(airflow_server) -> dict:
    write_spec(airflow_server.specs_dir, LOADED)
    write_dag_files([GENERATED], airflow_server.dags_folder)
    pipelines = {p.id: p for p in (LOADED, GENERATED)}
    with airflow_server.client() as client:
        wait_for_dags(client, list(pipelines))
        runs = {}
        for p in pipelines.values():
            runs[p.id] = f"it_{uuid.uuid4().hex[:10]}"
            trigger(client, p, {}, runs[p.id])
        return wait_for_runs(client, runs, timeout=300, pipelines=pipelines)


@pytest.mark.parametrize("pipeline_id", [LOADED.id, GENERATED.id])
def test_results_render_like_the_local_runner(results, pipeline_id: str) -> None:
    result = results[pipeline_id]
    print(pipeline_id, json.dumps(result.to_json()))
    assert result.states() == EXPECTED_STATES, result.to_json()
    assert str(result.state) == "success"
    assert result.instance_states() == EXPECTED_INSTANCES
    assert result.tasks["many"].attempts == 3  # attempts of all instances


def test_meta_run_over_rest_and_with_dag_test_report_the_same_instances(airflow_server, monkeypatch) -> None:
    from meta_airflow.run import run_pipeline

    p = Pipeline.model_validate(
        {
            "id": "it_results_run",
            "tasks": [
                py("check", "fail_on", kwargs={"bad": 2}, map={"x": [1, 2, 3]}, retries=1, retry_delay="1s"),
                expect("after", "{{ tasks.check.result }}", [1, 3], trigger_rule="all_done"),
            ],
        }
    )
    monkeypatch.setenv("META_AIRFLOW_URL", airflow_server.url)
    monkeypatch.setenv("META_AIRFLOW_SPECS_DIR", str(airflow_server.specs_dir))
    monkeypatch.setenv("META_AIRFLOW_USER", "admin")
    monkeypatch.setenv("META_AIRFLOW_PASSWORD", airflow_server.password("admin"))
    remote = run_pipeline(p, RunRequest.build(p)).to_json()
    for name in ("META_AIRFLOW_URL", "META_AIRFLOW_SPECS_DIR", "META_AIRFLOW_USER", "META_AIRFLOW_PASSWORD"):
        monkeypatch.delenv(name)
    assert not any(k.startswith("META_AIRFLOW_") for k in os.environ)
    local_airflow = run_pipeline(p, RunRequest.build(p)).to_json()  # dag.test() in a throwaway AIRFLOW_HOME
    print("rest", json.dumps(remote), "\ndag.test", json.dumps(local_airflow))
    expected = {
        "after": {"state": "success", "attempts": 1},
        "check": {
            "state": "failed",
            "attempts": 4,
            "instances": {
                "0": {"state": "success", "attempts": 1},
                "1": {"state": "failed", "attempts": 2},
                "2": {"state": "success", "attempts": 1},
            },
        },
    }
    assert remote["tasks"] == expected and local_airflow["tasks"] == expected
    assert remote["state"] == local_airflow["state"] == "success"  # the only leaf, after, succeeded
