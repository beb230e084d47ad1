"""Fault injection on the real ``meta serve`` watching the session's real Airflow 3.3:

- SIGKILL of ``meta serve`` at random moments while runs start, retry and finish (pushes sent meanwhile are lost);
- the backend cut off from the control plane for seconds, once mid-response (a loopback proxy between them, so the
  shared Airflow keeps running for the other tests), while runs finish behind the cut;

afterwards the store's history of the DAG equals what Airflow's own REST API reports: every run, every try of
every task with Airflow's own state, nothing missing, nothing twice. OpenLineage pushes reach the control plane
directly (it listens on the session Airflow's lineage port) whenever it is up.
"""

from __future__ import annotations

import random
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from meta.service.store import queries
from meta.service.store.db import open_store
from meta.service.store.orm import LineageEventRow
from tests.fixtures.airflow_server import airflow_server  # noqa: F401 - a pytest fixture
from tests.fixtures.control_plane import ServeProcess, settled_health
from tests.fixtures.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
DAG = "cp_faults"
RUNS = 6
DAG_FILE = f"""
from datetime import datetime, timedelta
from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator

with DAG("{DAG}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=3):
    first = BashOperator(task_id="first", bash_command="sleep 1")
    flaky = BashOperator(task_id="flaky", bash_command='[ "{{{{ ti.try_number }}}}" -gt 1 ]',
                         retries=1, retry_delay=timedelta(seconds=1))
    never = BashOperator(task_id="never", bash_command="exit 1")
    after = BashOperator(task_id="after", bash_command="true")
    first >> flaky >> after
    first >> never >> after
"""


def backend_history(client: Any, run_ids: set[str]) -> tuple[set[tuple[Any, ...]], dict[tuple[Any, ...], str]]:
    """Runs and every try of every task of ``run_ids``, straight from Airflow's REST API."""
    runs: set[tuple[Any, ...]] = set()
    attempts: dict[tuple[Any, ...], str] = {}
    for run_id in sorted(run_ids):
        run = client.request("GET", f"/dags/{DAG}/dagRuns/{run_id}")
        runs.add((DAG, run_id, run["state"]))
        tis = client.request("GET", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        for ti in tis["task_instances"]:
            tries = client.request(
                "GET", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/tries", params={"limit": 100}
            )
            for past in tries["task_instances"]:
                attempts[(run_id, past["task_id"], past["map_index"], past["try_number"])] = past["state"]
            if ti["state"] is not None:
                attempts[(run_id, ti["task_id"], ti["map_index"], ti["try_number"])] = ti["state"]
    return runs, attempts


def stored_history(store: Any, run_ids: set[str]) -> tuple[set[tuple[Any, ...]], dict[tuple[Any, ...], str]]:
    runs: set[tuple[Any, ...]] = set()
    attempts: dict[tuple[Any, ...], str] = {}
    with store.reading() as session:
        for run_id in run_ids:
            run = queries.get_run(session, "airflow", DAG, run_id, None)
            if run is not None:
                runs.add((DAG, run_id, run.raw_state))
            for a in queries.attempts_of(session, "airflow", DAG, run_id):
                key = (run_id, a.task_id, a.map_index, a.try_number)
                assert key not in attempts, f"attempt {key} stored twice"
                attempts[key] = a.raw_state
    return runs, attempts


def test_sigkill_outages_and_dropped_pushes_lose_and_duplicate_nothing(airflow_server, tmp_path: Path) -> None:  # noqa: F811
    (airflow_server.dags_folder / f"{DAG}.py").write_text(DAG_FILE)
    client = airflow_server.client()
    deadline = time.monotonic() + 120
    while True:
        try:
            client.request("GET", f"/dags/{DAG}")
            break
        except Exception:
            assert time.monotonic() < deadline, "the DAG was not parsed in time"
            time.sleep(1)
    client.request("PATCH", f"/dags/{DAG}", params={"update_mask": "is_paused"}, json={"is_paused": False})
    host, port = airflow_server.url.removeprefix("http://").split(":")
    proxy = TcpProxy(host, int(port)).start()
    workspace = tmp_path / "meta.yaml"
    workspace.write_text(
        textwrap.dedent(
            f"""
            name: faults
            specs: [dags]
            backends:
              airflow:
                kind: airflow
                url: {proxy.url}
                username: admin
                password: ${{secret:FAULTS_AIRFLOW_PASSWORD}}
                openlineage_namespace: {airflow_server.namespace}
            control_plane:
              database: sqlite:///{tmp_path / "cp.db"}
              poll_interval: 0.5s
              ingest_token: ${{secret:FAULTS_INGEST}}
            """
        )
    )
    (tmp_path / "dags").mkdir()
    secrets = {
        "META_SECRET_FAULTS_AIRFLOW_PASSWORD": airflow_server.password("admin"),
        "META_SECRET_FAULTS_INGEST": airflow_server.lineage_token,
    }
    serve = ServeProcess(workspace, secrets, port=airflow_server.lineage_port)
    rng = random.Random(20261202)
    suffix = uuid.uuid4().hex[:6]
    run_ids = {f"faults_{suffix}_{i}" for i in range(RUNS)}
    try:
        serve.start()
        for i, run_id in enumerate(sorted(run_ids)):
            for _attempt in range(5):  # Airflow on SQLite answers 500 now and then under load; same id is safe
                try:
                    client.request("POST", f"/dags/{DAG}/dagRuns", json={"dag_run_id": run_id, "logical_date": None})
                    break
                except Exception as exc:
                    if "409" in str(exc):
                        break
                    time.sleep(1)
            if i in (1, 3):  # SIGKILL mid-ingest, restart at once
                time.sleep(rng.uniform(0.1, 1.5))
                serve.kill()
                serve.start(wait=False)
        # A backend that dies mid-response, then stays unreachable while its runs go on.
        proxy.cut_after(1)
        time.sleep(2)
        proxy.cut()
        time.sleep(rng.uniform(0.5, 2.0))
        serve.kill()  # killed while the backend is unreachable
        serve.start()
        time.sleep(4)
        proxy.restore()

        def backend_done() -> bool:
            runs = client.request("GET", f"/dags/{DAG}/dagRuns", params={"limit": 100})["dag_runs"]
            ours = [r for r in runs if r["dag_run_id"] in run_ids]
            return len(ours) == RUNS and all(r["state"] in ("success", "failed") for r in ours)

        deadline = time.monotonic() + 240
        while not backend_done():
            assert time.monotonic() < deadline, "Airflow did not finish the runs"
            time.sleep(1)
        expected = backend_history(client, run_ids)
        store = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
        deadline = time.monotonic() + 60
        while (got := stored_history(store, run_ids)) != expected and time.monotonic() < deadline:
            time.sleep(0.5)
        with store.reading() as session:
            pushed = session.scalar(select(func.count()).select_from(LineageEventRow))
        now_health, seen_error = settled_health(store, "airflow")
        assert serve.stop() == 0
    finally:
        serve.kill()
        proxy.stop()
    runs, attempts = got
    assert runs == expected[0]
    assert attempts == expected[1]
    # The DAG's shape shows in the history: a retried try, a failure, an upstream_failed that never ran.
    assert {state for (_, task, _, _), state in attempts.items() if task == "after"} == {"upstream_failed"}
    assert any(task == "flaky" and n == 2 for (_, task, _, n) in attempts)
    assert seen_error is not None and now_health == "ok", "the outage was seen and recovered from"
    assert pushed, "OpenLineage pushes reached the control plane while it was up"
