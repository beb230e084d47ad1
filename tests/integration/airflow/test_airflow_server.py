"""The Airflow adapter against a real Airflow 3: auth, `meta run` over REST, generated files, alerts and SLAs.

Every pipeline of this module is deployed and triggered at once (one fixture), so the module costs about one run.
"""

from __future__ import annotations

import time
import uuid

import pytest
from meta_airflow.client import AirflowApiError, AirflowClient, PasswordTokenAuth
from meta_airflow.codegen import write_dag_files
from meta_airflow.remote import read_result, trigger, wait_for_dags, wait_for_runs, write_spec

from meta.semantics.request import RunRequest
from meta.spec.model import Pipeline

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
HOOK = "webhook:airflow_tests"


def pipeline(data: dict) -> Pipeline:
    return Pipeline.model_validate({"tags": ["integration"], **data})


LOADED = {
    "it_alerts": pipeline(
        {
            "id": "it_alerts",
            "alerts": {"on_failure": [HOOK], "on_retry": [HOOK]},
            "tasks": [
                {"id": "boom", "action": {"kind": "shell", "command": "exit 4"}, "retries": 1, "retry_delay": "1s"}
            ],
        }
    ),
    "it_sla": pipeline(
        {
            "id": "it_sla",
            # max_duration and an sla.deadlines entry: both native Deadline Alerts, each alerted under its own name
            "sla": {"max_duration": "3s", "deadlines": [{"reference": "queued_at", "interval": "5s"}]},
            "alerts": {"on_sla_miss": [HOOK], "on_success": [HOOK]},
            "tasks": [{"id": "slow", "action": {"kind": "shell", "command": "sleep 25"}}],
        }
    ),
}
GENERATED = pipeline(
    {
        "id": "it_generated",
        "params": {"who": {"type": "string", "default": "x"}},
        "tasks": [
            {"id": "a", "action": {"kind": "shell", "command": 'test "$META_PARAM_WHO" = "o\'k \\"q\\""'}},
            {
                "id": "b",
                "action": {"kind": "python", "callable": "tests.conformance.callables:choose_left"},
                "upstream": ["a"],
            },
        ],
    }
)


@pytest.fixture(scope="module")
def runs(airflow_server) -> dict:
    for p in LOADED.values():
        write_spec(airflow_server.specs_dir, p)
    write_dag_files([GENERATED], airflow_server.dags_folder)
    ids = {**{k: f"it_{uuid.uuid4().hex[:10]}" for k in LOADED}, GENERATED.id: f"it_{uuid.uuid4().hex[:10]}"}
    with airflow_server.client() as client:
        wait_for_dags(client, list(ids))
        for pid, p in LOADED.items():
            trigger(client, p, {}, ids[pid])
        trigger(client, GENERATED, {"who": 'o\'k "q"'}, ids[GENERATED.id])
        results = wait_for_runs(client, ids, timeout=240)
    return {"ids": ids, "results": results}


def test_generated_file_runs_with_hostile_param(runs) -> None:
    result = runs["results"]["it_generated"]
    assert result.states() == {"a": "success", "b": "success"}
    assert str(result.state) == "success"


def test_failure_and_retry_alerts_reach_the_webhook(runs, airflow_server) -> None:
    assert runs["results"]["it_alerts"].states() == {"boom": "failed"}
    assert runs["results"]["it_alerts"].tasks["boom"].attempts == 2
    events = wait_for_events(airflow_server, "it_alerts", {"retry", "failure"})
    retry = next(e for e in events if e["event"] == "retry")
    assert retry["task_id"] == "boom" and retry["backend"] == "airflow"
    assert any(e["run_id"] == runs["ids"]["it_alerts"] for e in events)


def test_sla_deadline_fires_through_the_triggerer(runs, airflow_server) -> None:
    assert runs["results"]["it_sla"].states() == {"slow": "success"}
    events = wait_for_events(airflow_server, "it_sla", {"sla_miss", "success"})
    assert {e["event"] for e in events} >= {"sla_miss", "success"}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the two misses are two triggerer callbacks: the second may lag
        misses = sorted(
            e.get("message") or "" for e in airflow_server.webhook.events("it_sla") if e["event"] == "sla_miss"
        )
        if len(misses) >= 2:
            break
        time.sleep(1)
    assert misses == ["the run missed its sla.deadline:queued_at+5s", "the run missed its sla.max_duration"], misses
    # each names the run that missed (Airflow passes it as dag_run.dag_run_id): one alert per run, not per pipeline
    missed_runs = {e["run_id"] for e in airflow_server.webhook.events("it_sla") if e["event"] == "sla_miss"}
    assert missed_runs == {runs["ids"]["it_sla"]}


def wait_for_events(airflow_server, pipeline_id: str, wanted: set[str], timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = airflow_server.webhook.events(pipeline_id)
        if wanted <= {e["event"] for e in events}:
            return events
        time.sleep(1)
    raise AssertionError(
        f"webhook got {airflow_server.webhook.events(pipeline_id)} for {pipeline_id}, wanted {wanted}"
        f"\n{airflow_server.log('triggerer')[-3000:]}\n{airflow_server.log('dag-processor')[-3000:]}"
    )


def test_meta_run_through_a_configured_server(airflow_server, monkeypatch) -> None:
    from meta.plugins.manager import get_target

    monkeypatch.setenv("META_AIRFLOW_URL", airflow_server.url)
    monkeypatch.setenv("META_AIRFLOW_USER", "admin")
    monkeypatch.setenv("META_AIRFLOW_PASSWORD", airflow_server.password("admin"))
    monkeypatch.setenv("META_AIRFLOW_SPECS_DIR", str(airflow_server.specs_dir))
    p = pipeline(
        {
            "id": "it_meta_run",
            "params": {"country": {"type": "string", "default": "DE"}},
            "tasks": [
                {"id": "check", "action": {"kind": "shell", "command": 'test "$META_PARAM_COUNTRY" = CH'}},
                {"id": "skip", "action": {"kind": "shell", "command": "exit 99"}, "upstream": ["check"]},
            ],
        }
    )
    seen: list[str] = []
    request = RunRequest.build(p, params={"country": "CH"}, run_id="it_meta_run_1")
    result = get_target("airflow").run(p, request, progress=seen.append)
    assert result.to_json() == {
        "pipeline": "it_meta_run",
        "state": "success",
        "tasks": {"check": {"state": "success", "attempts": 1}, "skip": {"state": "skipped", "attempts": 1}},
        "run_id": "it_meta_run_1",
        "backend": "airflow",
    }
    assert any("triggered" in s for s in seen)


def test_auth_roles_and_errors(airflow_server) -> None:
    with airflow_server.client("viewer") as viewer:
        assert isinstance(viewer.dag_ids(), set)  # viewers can read
        with pytest.raises(AirflowApiError) as denied:
            viewer.trigger("it_alerts", f"viewer_{uuid.uuid4().hex[:6]}", logical_date=None)
        assert denied.value.status == 403
    wrong = AirflowClient(airflow_server.url, auth=PasswordTokenAuth(airflow_server.url, "admin", "not-the-password"))
    with pytest.raises(AirflowApiError) as failed:
        wrong.dag_ids()
    assert failed.value.status == 401 and "not-the-password" not in str(failed.value)
    anonymous = AirflowClient(airflow_server.url)
    with pytest.raises(AirflowApiError) as anon:
        anonymous.dag_ids()
    assert anon.value.status == 401


def test_read_result_maps_airflow_states(runs, airflow_server) -> None:
    with airflow_server.client() as client:
        again = read_result(client, "it_alerts", runs["ids"]["it_alerts"])
    assert again == runs["results"]["it_alerts"]
