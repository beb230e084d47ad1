"""Moving a real Airflow DAG to the real Prefect with ``meta migrate``, as a platform team would, end to end:

1. a DAG written for Airflow (TaskFlow, a task group, an ExternalTaskSensor on another DAG, email alerts, a
   warehouse load into the real PostgreSQL) runs on the session's Airflow every minute, with its upstream DAG;
2. ``meta import airflow`` turns it into a spec (the sensor becomes ``depends_on``, the TaskFlow function is lifted
   into a module beside the spec);
3. ``meta migrate shadow --to pf`` deploys the shadow copy on Prefect; the real ``meta serve`` starts it for the
   same logical date as each live run, writing to a shadow schema; three logical dates agree in ``meta migrate
   report``;
4. a shadow whose load SQL differs is reported as a disagreement naming the task and the table;
5. ``meta migrate cutover``: Airflow's DAG is paused, the next upstream success starts the pipeline on Prefect
   (the dependency follows it), once; ``meta migrate rollback``: that slot is recorded on Airflow as handled, the
   DAG resumes and runs the next slot itself. Each slot ran exactly once, on the expected side.

The other direction runs beside it, on the same minute ticks: a pipeline defined in meta, deployed on Prefect with a
minute schedule, shadowed on Airflow, cut over (the control plane starts its slots on Airflow), rolled back (the
control plane starts the slots on Prefect until Prefect's own scheduler plans one: the session's Prefect runs no
scheduler, so every later slot).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from meta.service.store.db import open_store
from meta.service.store.orm import DependencyWaitRow, MigrationRunRow, MigrationSlotRow
from tests.fixtures.airflow_server import airflow_server  # noqa: F401 - a pytest fixture
from tests.fixtures.control_plane import ServeProcess
from tests.fixtures.prefect_server import prefect_server  # noqa: F401 - a pytest fixture
from tests.fixtures.warehouses import LIVE_SCHEMA, MIGRATE_CONNECTIONS, PG, SHADOW_SCHEMA

pytestmark = [pytest.mark.slow, pytest.mark.airflow, pytest.mark.prefect, pytest.mark.postgres]

SUFFIX = uuid.uuid4().hex[:6]
UP, ORDERS = f"mig_up_{SUFFIX}", f"mig_orders_{SUFFIX}"
SHADOW = f"{ORDERS}__shadow"
TABLE = f"mig_daily_{SUFFIX}"
# the other direction: defined in meta, live on Prefect, moved to Airflow
BACK, BACK_TABLE = f"mig_back_{SUFFIX}", f"mig_back_{SUFFIX}"
BACK_SPEC = f"""pipeline: {BACK}
schedule: "* * * * *"
start_date: "2026-01-01"
tasks:
  load:
    op: warehouse_load
    with:
      table: {BACK_TABLE}
      mode: replace_partition
      partition: {{column: day, value: "{{{{ ts }}}}"}}
      source: {{query: "SELECT '{{{{ ts }}}}' AS day, 7 AS amount"}}
      conn: migrate_live
      audit: true
"""
LOAD_TASK = "publish.daily"
# Logical dates of the manual runs (Airflow keeps one run per logical date of a DAG): whole minutes in the past.
BASE = datetime(2026, 6, 1, tzinfo=UTC) + timedelta(minutes=secrets.randbelow(100_000))

UPSTREAM_DAG = f"""
from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG("{UP}", schedule="* * * * *", start_date=datetime(2026, 1, 1), catchup=False):
    BashOperator(task_id="extract", bash_command="echo extracted")
"""

ORDERS_DAG = f'''
"""A team's DAG as they wrote it for Airflow."""

from datetime import datetime, timedelta

from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import dag, task, task_group

from meta_airflow.operators import WarehouseLoadOperator


@dag(
    dag_id="{ORDERS}",
    schedule="* * * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={{"retries": 1, "retry_delay": timedelta(seconds=2), "email": ["oncall@example.com"],
                   "email_on_failure": True}},
)
def orders():
    wait = ExternalTaskSensor(
        task_id="wait_for_upstream", external_dag_id="{UP}", poke_interval=2, timeout=600, mode="reschedule"
    )

    @task
    def amount():
        return 40 + 2

    @task_group(group_id="publish")
    def publish():
        WarehouseLoadOperator(
            task_id="daily",
            table="{TABLE}",
            mode="replace_partition",
            partition={{"column": "day", "value": "{{{{ ts }}}}"}},
            source={{"query": "SELECT '{{{{ ts }}}}' AS day, 42 AS amount"}},
            conn="migrate_live",
            audit=True,
        )

    wait >> amount() >> publish()


orders()
'''


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


@dataclass
class Move:
    root: Path
    workspace: Path
    airflow_server: Any
    prefect_server: Any
    env: dict[str, str]
    serve: ServeProcess

    def meta(self, *args: str, ok: tuple[int, ...] = (0,), timeout: float = 600) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "meta", *args, "--workspace", str(self.workspace)],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.root,
        )
        assert done.returncode in ok, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    # -- the backends, through their own APIs ------------------------------------------------------------

    def airflow(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(6):  # Airflow on SQLite answers 500 now and then under load
            try:
                return self.airflow_server.client().request(method, path, **kwargs)
            except Exception as exc:
                if "409" in str(exc) or attempt == 5:
                    raise
                time.sleep(1)
        raise AssertionError("unreachable")

    def airflow_run(self, dag: str, logical_date: datetime) -> str:
        run_id = f"manual_{uuid.uuid4().hex[:8]}"
        self.airflow(
            "POST", f"/dags/{dag}/dagRuns", json={"dag_run_id": run_id, "logical_date": logical_date.isoformat()}
        )
        return run_id

    def airflow_runs(self, dag: str) -> list[dict[str, Any]]:
        found = self.airflow("GET", f"/dags/{dag}/dagRuns", params={"limit": 100, "order_by": "-logical_date"})
        return list(found["dag_runs"])

    def airflow_run_at(self, dag: str, logical_date: datetime) -> list[dict[str, Any]]:
        return [r for r in self.airflow_runs(dag) if datetime.fromisoformat(r["logical_date"]) == logical_date]

    def prefect_runs(self, flow: str) -> list[dict[str, Any]]:
        flows = self.prefect_api("flows/filter", {"flows": {"name": {"any_": [flow]}}})
        if not flows:
            return []
        return list(self.prefect_api("flow_runs/filter", {"flows": {"id": {"any_": [flows[0]["id"]]}}, "limit": 200}))

    def prefect_run_at(self, flow: str, logical_date: datetime) -> list[dict[str, Any]]:
        return [r for r in self.prefect_runs(flow) if datetime.fromisoformat(r["expected_start_time"]) == logical_date]

    def prefect_api(self, path: str, body: Any) -> Any:
        for _attempt in range(10):  # the session's Prefect runs on SQLite: 503 (database locked) now and then
            response = httpx.post(f"{self.prefect_server.api_url}/{path}", json=body, timeout=30)
            if response.status_code < 500:
                response.raise_for_status()
                return response.json()
            time.sleep(1)
        raise AssertionError(f"Prefect kept answering {response.status_code} to POST {path}")

    def prefect_run(self, flow: str, logical_date: datetime) -> str:
        """A run of the flow's deployment for ``logical_date`` (meta's flows take it from the scheduled time)."""
        flows = self.prefect_api("flows/filter", {"flows": {"name": {"any_": [flow]}}})
        [deployment] = self.prefect_api("deployments/filter", {"flows": {"id": {"any_": [flows[0]["id"]]}}})
        # an idempotency key: a retried create after a 503 that did commit starts nothing twice
        body = {
            "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": logical_date.isoformat()}},
            "idempotency_key": f"test-{flow}-{logical_date.isoformat()}",
        }
        return str(self.prefect_api(f"deployments/{deployment['id']}/create_flow_run", body)["id"])

    def store_rows(self, table: Any, **where: Any) -> list[Any]:
        store = open_store(f"sqlite:///{self.root / 'cp.db'}")
        try:
            with store.reading() as session:
                rows = list(session.scalars(sa.select(table).filter_by(**where)))
                session.expunge_all()
                return rows
        finally:
            store.close()

    def report(self) -> dict[str, Any]:
        done = self.meta("migrate", "report", ORDERS, "--json", ok=(0, 1, 3))
        return dict(json.loads(done.stdout))


def warehouse_rows(schema: str, table: str = TABLE) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(PG.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return [
                tuple(r) for r in conn.execute(sa.text(f'SELECT day, amount FROM "{schema}"."{table}" ORDER BY day'))
            ]
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def move(
    airflow_server: Any,  # noqa: F811
    prefect_server: Any,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Move]:
    root = tmp_path_factory.mktemp("migrate")
    engine = sa.create_engine(PG.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        for schema in (LIVE_SCHEMA, SHADOW_SCHEMA):
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            for table in (TABLE, BACK_TABLE):
                conn.execute(sa.text(f'CREATE TABLE "{schema}"."{table}" (day VARCHAR PRIMARY KEY, amount INTEGER)'))
    # the team's DAGs, live on Airflow
    dag_files = {f"{UP}.py": UPSTREAM_DAG, f"{ORDERS}.py": ORDERS_DAG}
    originals = root / "their_dags"
    originals.mkdir()
    for name, text in dag_files.items():
        (originals / name).write_text(textwrap.dedent(text).lstrip())
        shutil.copy(originals / name, airflow_server.dags_folder / name)
    # ... imported into specs, as `meta import` writes them
    specs = root / "dags"
    imported = subprocess.run(
        [sys.executable, "-m", "meta", "import", "airflow", "--dags-folder", str(originals), "-o", str(specs)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr
    (specs / f"{BACK}.yaml").write_text(BACK_SPEC)
    lifted = specs / f"{ORDERS}_tasks.py"
    assert lifted.is_file(), imported.stdout
    # Prefect's process worker imports a flow's callables from its working directory, where deploys put the flows
    prefect_server.deploy_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(lifted, prefect_server.deploy_dir / lifted.name)
    workspace = root / "meta.yaml"
    workspace.write_text(
        textwrap.dedent(
            f"""\
            name: moving
            specs: [dags]
            backends:
              af:
                kind: airflow
                url: {airflow_server.url}
                username: admin
                password: ${{secret:MIG_AIRFLOW_PASSWORD}}
                specs_dir: {airflow_server.specs_dir}
                openlineage_namespace: mig-{SUFFIX}
              pf:
                kind: prefect
                url: {prefect_server.api_url}
                work_pool: {prefect_server.pool}
                flows_dir: {prefect_server.deploy_dir}
            placements:
              - {{backend: pf, pipelines: [{BACK}]}}
            migrations:
              {ORDERS}:
                to: pf
                shadow_connections: {{migrate_live: migrate_shadow}}
                agree_after: 3
              {BACK}:
                to: af
                shadow_connections: {{migrate_live: migrate_shadow}}
            control_plane:
              database: sqlite:///{root / "cp.db"}
              poll_interval: 1s
            """
        )
    )
    env = {
        **MIGRATE_CONNECTIONS,  # the control plane reads both warehouses to compare (audit rows, checksums)
        "META_SECRET_MIG_AIRFLOW_PASSWORD": airflow_server.password("admin"),
        "PREFECT_API_URL": prefect_server.api_url,
        "META_HOME": str(root / "home"),
    }
    client = airflow_server.client()
    for dag in (UP, ORDERS):
        wait_for(lambda dag=dag: _parsed(client, dag), 180, f"Airflow to parse {dag}")  # type: ignore[misc]
    serve = ServeProcess(workspace, env)
    built = Move(root, workspace, airflow_server, prefect_server, env, serve)
    built.meta("deploy")  # the meta-defined pipeline, live on Prefect
    serve.start()
    try:
        yield built
    finally:
        serve.stop()
        for dag in (UP, ORDERS, BACK, f"{BACK}__shadow"):  # the session's Airflow goes on: stop their runs
            try:
                built.airflow("PATCH", f"/dags/{dag}", params={"update_mask": "is_paused"}, json={"is_paused": True})
            except Exception:
                pass
            (airflow_server.dags_folder / f"{dag}.py").unlink(missing_ok=True)
        with engine.begin() as conn:
            for schema in (LIVE_SCHEMA, SHADOW_SCHEMA):
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{schema}"."{TABLE}"'))
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{schema}"."{BACK_TABLE}"'))
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{schema}"."meta_load_audit"'))
        engine.dispose()


def _parsed(client: Any, dag: str) -> bool:
    try:
        client.request("GET", f"/dags/{dag}")
        return True
    except Exception:
        return False


def compared(move: Move, logical_date: datetime, pipeline_id: str = ORDERS) -> MigrationRunRow | None:
    for row in move.store_rows(MigrationRunRow, pipeline_id=pipeline_id):
        if row.logical_date == logical_date and row.comparison is not None:
            return row
    return None


def run_both(move: Move, logical_date: datetime) -> None:
    """A live run for ``logical_date`` (its upstream first, which its sensor waits for)."""
    move.airflow_run(UP, logical_date)
    move.airflow_run(ORDERS, logical_date)


def test_import_shadow_compare_cut_over_and_roll_back(move: Move) -> None:
    spec = (move.root / "dags" / f"{ORDERS}.yaml").read_text()
    assert f"pipeline: {UP}" in spec and f"python: {ORDERS}_tasks:amount" in spec and "op: warehouse_load" in spec

    # -- shadow: three logical dates, both sides agree --------------------------------------------------------
    shadowed = move.meta("migrate", "shadow", ORDERS, "--from", "af")
    assert f"shadowing on pf as {SHADOW}" in shadowed.stdout
    assert f"shadowing on af as {BACK}__shadow" in move.meta("migrate", "shadow", BACK).stdout
    dates = [BASE + timedelta(minutes=i) for i in range(3)]
    for logical_date in dates:
        run_both(move, logical_date)
        move.prefect_run(BACK, logical_date)
    for logical_date in dates:
        back = wait_for(lambda d=logical_date: compared(move, d, BACK), 300, f"{BACK} {logical_date} compared")  # type: ignore[misc]
        assert back.comparison["agrees"], (back.comparison.get("differences"), back.comparison.get("errors"))
        assert len(move.airflow_run_at(f"{BACK}__shadow", logical_date)) == 1
        row = wait_for(lambda d=logical_date: compared(move, d), 300, f"the pair of {logical_date} compared")  # type: ignore[misc]
        assert row.comparison["agrees"], (row.comparison.get("differences"), row.comparison.get("errors"))
        assert len(move.prefect_run_at(SHADOW, logical_date)) == 1  # one shadow run per live run
    live, shadow = warehouse_rows(LIVE_SCHEMA), warehouse_rows(SHADOW_SCHEMA)
    for logical_date in dates:
        stamp = logical_date.isoformat()
        assert (stamp, 42) in live and (stamp, 42) in shadow  # each side wrote its own schema
    report = move.report()
    assert report["ready"] is True and report["agreeing_in_a_row"] >= 3, report

    # -- a shadow whose SQL differs is a disagreement naming the task and the table ---------------------------
    spec_path = move.root / "dags" / f"{ORDERS}.yaml"
    spec_path.write_text(spec.replace("42 AS amount", "43 AS amount"))
    move.meta("migrate", "shadow", ORDERS, "--from", "af")
    changed = BASE + timedelta(minutes=10)
    run_both(move, changed)
    row = wait_for(lambda: compared(move, changed), 300, "the changed shadow compared")
    assert not row.comparison["agrees"]
    differences = " ".join(row.comparison["differences"])
    assert TABLE in differences and LOAD_TASK in differences, differences
    assert move.meta("migrate", "report", ORDERS, ok=(1,)).returncode == 1
    spec_path.write_text(spec)
    move.meta("migrate", "shadow", ORDERS, "--from", "af")

    # -- cut over: the next upstream success starts the pipeline on Prefect, once, and not on Airflow ----------
    cut = move.meta("migrate", "cutover", ORDERS)
    assert "is live on pf" in cut.stdout, cut.stdout
    assert "is live on af" in move.meta("migrate", "cutover", BACK).stdout
    assert move.airflow("GET", f"/dags/{ORDERS}")["is_paused"] is True
    started = wait_for(lambda: _started_on_prefect(move), 240, "the pipeline started on Prefect by its upstream")
    slot_on_prefect = started.logical_date
    flow_runs = move.prefect_run_at(ORDERS, slot_on_prefect)
    assert len(flow_runs) == 1
    wait_for(lambda: _prefect_state(move, ORDERS, slot_on_prefect) == "COMPLETED", 240, "the Prefect slot done")
    assert move.airflow_run_at(ORDERS, slot_on_prefect) == []  # Airflow, paused, did not run it
    assert (slot_on_prefect.isoformat(), 42) in warehouse_rows(LIVE_SCHEMA)  # the live pipeline, on Prefect now
    # ... and the meta-defined one: the control plane starts its slots on Airflow, none on Prefect
    back_on_airflow = wait_for(lambda: _driven(move, BACK, "af"), 180, f"{BACK}'s slot started on Airflow")
    wait_for(lambda: _airflow_state(move, BACK, back_on_airflow) == "success", 240, f"{BACK}'s Airflow slot done")
    assert move.prefect_run_at(BACK, back_on_airflow) == []
    assert (back_on_airflow.isoformat(), 7) in warehouse_rows(LIVE_SCHEMA, BACK_TABLE)

    # -- roll back: the slot Prefect ran is recorded on Airflow as handled; Airflow runs the next one itself ------
    back = move.meta("migrate", "rollback", ORDERS)
    assert "is live on af again" in back.stdout, back.stdout
    assert "is live on pf again" in move.meta("migrate", "rollback", BACK).stdout
    back_handoff = max(s for s in _driven_all(move, BACK, "af"))
    [marker] = move.airflow_run_at(ORDERS, slot_on_prefect)
    assert marker["dag_run_id"].startswith("meta-handled-") and marker["state"] == "success"
    assert "ran on pf" in (marker.get("note") or "")
    assert move.airflow("GET", f"/dags/{ORDERS}")["is_paused"] is False
    later = wait_for(
        lambda: [
            r
            for r in move.airflow_runs(ORDERS)
            if r["run_type"] == "scheduled" and datetime.fromisoformat(r["logical_date"]) > slot_on_prefect
        ],
        240,
        "Airflow's own next slot after the rollback",
    )
    next_slot = datetime.fromisoformat(later[-1]["logical_date"])
    wait_for(lambda: _airflow_state(move, ORDERS, next_slot) == "success", 240, "Airflow's next slot done")
    # each slot ran once, on one side
    assert len(move.airflow_run_at(ORDERS, next_slot)) == 1
    assert move.prefect_run_at(ORDERS, next_slot) == []
    assert len(move.prefect_run_at(ORDERS, slot_on_prefect)) == 1
    assert [r["dag_run_id"] for r in move.airflow_run_at(ORDERS, slot_on_prefect)] == [marker["dag_run_id"]]
    status = move.meta("migrate", "status", ORDERS).stdout
    assert "shadowing, live on af" in status and "cutover" in status and "rollback" in status
    # the meta-defined pipeline is back on Prefect: its next slot runs there once, not on Airflow
    back_on_prefect = wait_for(
        lambda: [s for s in _driven_all(move, BACK, "pf") if s > back_handoff], 180, f"{BACK}'s next slot on Prefect"
    )[0]
    wait_for(lambda: _prefect_state(move, BACK, back_on_prefect) == "COMPLETED", 240, f"{BACK}'s Prefect slot done")
    assert len(move.prefect_run_at(BACK, back_on_prefect)) == 1
    assert move.airflow_run_at(BACK, back_on_prefect) == []
    assert all(len(move.airflow_run_at(BACK, s)) == 1 for s in _driven_all(move, BACK, "af"))
    assert all(move.prefect_run_at(BACK, s) == [] for s in _driven_all(move, BACK, "af"))


def _started_on_prefect(move: Move) -> DependencyWaitRow | None:
    for row in move.store_rows(DependencyWaitRow, pipeline_id=ORDERS, backend="pf"):
        if row.state == "triggered" and row.logical_date is not None:
            return row
    return None


def _prefect_state(move: Move, flow: str, logical_date: datetime) -> str | None:
    runs = move.prefect_run_at(flow, logical_date)
    return str(runs[0]["state_type"]) if runs else None


def _airflow_state(move: Move, dag: str, logical_date: datetime) -> str | None:
    runs = move.airflow_run_at(dag, logical_date)
    return str(runs[0]["state"]) if runs else None


def _driven_all(move: Move, pipeline_id: str, backend: str) -> list[datetime]:
    """The slots the control plane started for ``pipeline_id`` on ``backend`` (confirmed)."""
    rows = move.store_rows(MigrationSlotRow, pipeline_id=pipeline_id, backend=backend)
    return sorted(r.slot for r in rows if r.state == "triggered")


def _driven(move: Move, pipeline_id: str, backend: str) -> datetime | None:
    found = _driven_all(move, pipeline_id, backend)
    return found[0] if found else None
