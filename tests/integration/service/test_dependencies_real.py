"""Cross-orchestrator dependencies driven by the real ``meta serve`` between the real Airflow and the real Prefect:

- a pipeline on Airflow and its dependent on Prefect: each upstream success starts the downstream once, with the
  upstream's logical date and params, and the link upstream run -> downstream run is recorded (and the reverse:
  Prefect upstream, Airflow downstream);
- an upstream failure leaves the downstream waiting, `meta why` says for what and until when, then it times out and
  a real webhook hears it once;
- ``meta serve`` SIGKILLed while the upstream succeeds, and again the instant the downstream's create request reached
  Prefect (before it could record the answer): after each restart the downstream exists exactly once;
- two replicas on one PostgreSQL database start each downstream exactly once, and the survivor takes over when the
  leader is killed.

Everything is deployed with `meta deploy --workspace` (meta-built pipelines: the Airflow ones through meta's loader
DAG, the Prefect ones as deployments run by a real process worker). Prefect is reached through a TCP proxy so a test
can act at the instant a request lands.
"""

from __future__ import annotations

import os
import secrets
import signal
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
from sqlalchemy import select

from meta.service.store.db import open_store
from meta.service.store.orm import DependencyWaitRow
from tests.fixtures.airflow_server import airflow_server  # noqa: F401 - a pytest fixture
from tests.fixtures.alert_sinks import WebhookServer, webhook_server  # noqa: F401 - a pytest fixture
from tests.fixtures.control_plane import ServeProcess, free_port
from tests.fixtures.prefect_server import prefect_server  # noqa: F401 - a pytest fixture
from tests.fixtures.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.slow, pytest.mark.airflow, pytest.mark.prefect]

SUFFIX = uuid.uuid4().hex[:6]
UP_AF, DOWN_PF = f"xo_up_af_{SUFFIX}", f"xo_down_pf_{SUFFIX}"
UP_PF, DOWN_AF = f"xo_up_pf_{SUFFIX}", f"xo_down_af_{SUFFIX}"
FAIL_AF, WAIT_PF = f"xo_fail_af_{SUFFIX}", f"xo_wait_pf_{SUFFIX}"
CATCHUP_PF = f"xo_catchup_pf_{SUFFIX}"
BF_UP_AF, BF_DOWN_PF = f"xo_bf_up_af_{SUFFIX}", f"xo_bf_down_pf_{SUFFIX}"
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
WRITE_PF, READ_AF, DATASET = f"xo_write_pf_{SUFFIX}", f"xo_read_af_{SUFFIX}", f"x-meta://xo-{SUFFIX}/sales"
PARAMS = "params: {country: {type: string, default: CH}}\n"
SPECS = {
    UP_AF: PARAMS + "tasks:\n  work: {shell: 'echo upstream on airflow'}\n",
    DOWN_PF: f"depends_on: [{UP_AF}]\n" + PARAMS + "tasks:\n  work: {shell: 'echo downstream on prefect'}\n",
    UP_PF: PARAMS + "tasks:\n  work: {shell: 'echo upstream on prefect'}\n",
    DOWN_AF: f"depends_on: [{UP_PF}]\n" + PARAMS + "tasks:\n  work: {shell: 'echo downstream on airflow'}\n",
    FAIL_AF: "tasks:\n  work: {shell: 'exit 3'}\n",
    WAIT_PF: (
        f"depends_on: [{{pipeline: {FAIL_AF}, timeout: 20s}}]\nalerts: {{on_failure: ['webhook:xo']}}\n"
        "tasks:\n  work: {shell: 'echo never'}\n"
    ),
    # Prefect cannot catch up or stop: the plane starts the 3 daily slots from 3 days ago to yesterday, 2 at a time
    CATCHUP_PF: (
        f"schedule: '30 1 * * *'\nstart_date: '{(TODAY - timedelta(days=3)).date()}'\n"
        f"end_date: '{(TODAY - timedelta(days=1)).date()}T12:00:00'\ncatchup: true\nmax_active_runs: 2\n"
        "tasks:\n  work: {shell: 'true'}\n"
    ),
    # a scheduled upstream on Airflow (Airflow backfills only periodic DAGs) and its dependent on Prefect
    BF_UP_AF: "schedule: '0 4 * * *'\nstart_date: '2026-01-01'\n" + PARAMS + "tasks:\n  work: {shell: 'echo bf'}\n",
    BF_DOWN_PF: f"depends_on: [{BF_UP_AF}]\n" + "tasks:\n  work: {shell: 'echo bf down'}\n",
    WRITE_PF: f"tasks:\n  write: {{shell: 'true', outputs: ['{DATASET}']}}\n",
    READ_AF: f"schedule: {{datasets: ['{DATASET}']}}\ntasks:\n  read: {{shell: 'true'}}\n",
}
# Logical dates no other test uses (Airflow keeps one run per logical date of a DAG).
BASE = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=secrets.randbelow(200))


def day(n: int) -> datetime:
    return BASE + timedelta(days=n)


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


@dataclass
class Project:
    root: Path
    airflow: Any
    prefect: Any
    proxy: TcpProxy
    env: dict[str, str]

    def workspace(self, name: str, database: str) -> Path:
        """A workspace file for one control plane (its own database: each test starts from a clean history)."""
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        (folder / "dags").mkdir(exist_ok=True)
        for pipeline_id, body in SPECS.items():
            (folder / "dags" / f"{pipeline_id}.yaml").write_text(f"pipeline: {pipeline_id}\n{body}")
        text = textwrap.dedent(
            f"""\
            name: xo
            specs: [dags]
            backends:
              af:
                kind: airflow
                url: {self.airflow.url}
                username: admin
                password: ${{secret:XO_AIRFLOW_PASSWORD}}
                specs_dir: {self.airflow.specs_dir}
                openlineage_namespace: {self.airflow.namespace}
              pf:
                kind: prefect
                url: {self.proxy.url}/api
                work_pool: {self.prefect.pool}
                flows_dir: {self.prefect.deploy_dir}
            placements:
              - {{backend: af, pipelines: [{UP_AF}, {DOWN_AF}, {FAIL_AF}, {READ_AF}, {BF_UP_AF}]}}
              - {{backend: pf, pipelines: [{DOWN_PF}, {UP_PF}, {WAIT_PF}, {WRITE_PF}, {CATCHUP_PF}, {BF_DOWN_PF}]}}
            control_plane:
              database: {database}
              poll_interval: 1s
              ingest_token: ${{secret:XO_INGEST}}
            """
        )
        path = folder / "meta.yaml"
        path.write_text(text)
        return path

    def serve(self, name: str, database: str | None = None, port: int | None = None) -> ServeProcess:
        path = self.workspace(name, database or f"sqlite:///{self.root / name / 'cp.db'}")
        env = {**self.env, "META_HOME": str(self.root / name / "home")}
        return ServeProcess(path, env, port=port or self.airflow.lineage_port)

    # -- the backends, through their own APIs ------------------------------------------------------------

    def airflow_run(self, dag: str, logical_date: datetime, conf: dict[str, Any]) -> str:
        run_id = f"xo_{uuid.uuid4().hex[:8]}"
        body = {"dag_run_id": run_id, "logical_date": logical_date.isoformat(), "conf": conf}
        for _attempt in range(5):  # Airflow on SQLite answers 500 now and then under load; the same id is safe
            try:
                self.airflow.client().request("POST", f"/dags/{dag}/dagRuns", json=body)
                return run_id
            except Exception as exc:
                if "409" in str(exc):
                    return run_id
                time.sleep(1)
        raise AssertionError(f"could not start {dag}")

    def airflow_state(self, dag: str, run_id: str) -> str:
        return str(self.airflow.client().request("GET", f"/dags/{dag}/dagRuns/{run_id}")["state"])

    def airflow_runs(self, dag: str) -> list[dict[str, Any]]:
        return list(self.airflow.client().request("GET", f"/dags/{dag}/dagRuns", params={"limit": 100})["dag_runs"])

    def prefect_api(self, method: str, path: str, body: Any = None) -> Any:
        for _attempt in range(10):  # the session's Prefect runs on SQLite: 503 (database locked) now and then
            response = httpx.request(method, f"{self.prefect.api_url}/{path}", json=body, timeout=30)
            if response.status_code < 500:
                response.raise_for_status()
                return response.json() if response.content else None
            time.sleep(1)
        raise AssertionError(f"Prefect kept answering {response.status_code} to {method} {path}")

    def deployment(self, flow: str) -> dict[str, Any]:
        [found] = self.prefect_api("POST", "deployments/filter", {"flows": {"name": {"any_": [flow]}}})
        return dict(found)

    def prefect_runs(self, flow: str) -> list[dict[str, Any]]:
        body = {"deployments": {"id": {"any_": [self.deployment(flow)["id"]]}}, "limit": 200}
        return list(self.prefect_api("POST", "flow_runs/filter", body))

    def prefect_run(self, flow: str, logical_date: datetime, parameters: dict[str, Any]) -> str:
        body = {
            "parameters": parameters,
            "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": logical_date.isoformat()}},
        }
        return str(self.prefect_api("POST", f"deployments/{self.deployment(flow)['id']}/create_flow_run", body)["id"])


@pytest.fixture(scope="module")
def project(
    airflow_server: Any,  # noqa: F811
    prefect_server: Any,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("xo")
    port = int(prefect_server.api_url.rsplit(":", 1)[1].split("/", 1)[0])
    proxy = TcpProxy("127.0.0.1", port).start()
    env = {
        "META_SECRET_XO_AIRFLOW_PASSWORD": airflow_server.password("admin"),
        "META_SECRET_XO_INGEST": airflow_server.lineage_token,
        "PREFECT_API_URL": prefect_server.api_url,
    }
    built = Project(root, airflow_server, prefect_server, proxy, env)
    path = built.workspace("deploy", f"sqlite:///{root / 'deploy.db'}")
    meta = Path(sys.executable).parent / "meta"
    done = subprocess.run(
        [str(meta), "deploy", "--workspace", str(path)],
        env={**os.environ, **prefect_server.env, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    client = airflow_server.client()

    def parsed(dag: str) -> bool:
        try:
            client.request("GET", f"/dags/{dag}")
            return True
        except Exception:
            return False

    for dag in (UP_AF, DOWN_AF, FAIL_AF, READ_AF, BF_UP_AF):
        wait_for(lambda dag=dag: parsed(dag), 180, f"Airflow to parse {dag}", every=1)  # type: ignore[misc]
        for attempt in range(5):  # Airflow on SQLite answers 500 now and then under load
            try:
                client.request("PATCH", f"/dags/{dag}", params={"update_mask": "is_paused"}, json={"is_paused": False})
                break
            except Exception:
                if attempt == 4:
                    raise
                time.sleep(1)
    try:
        yield built
    finally:
        proxy.stop()


def waits(serve: ServeProcess, pipeline: str, database: str | None = None) -> list[DependencyWaitRow]:
    store = open_store(database or f"sqlite:///{serve.workspace.parent / 'cp.db'}")
    try:
        with store.reading() as session:
            rows = list(session.scalars(select(DependencyWaitRow).where(DependencyWaitRow.pipeline_id == pipeline)))
            session.expunge_all()
            return rows
    finally:
        store.close()


def triggered(serve: ServeProcess, pipeline: str, logical: datetime, database: str | None = None) -> Any:
    for row in waits(serve, pipeline, database):
        if row.logical_date == logical and row.state == "triggered":
            return row
    return None


def meta_cli(serve: ServeProcess, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The ``meta`` command a user runs in the workspace (no API URL given: it reads the store in-process)."""
    done = subprocess.run(
        [sys.executable, "-m", "meta", *args, "--workspace", str(serve.workspace)],
        env={**os.environ, **serve.env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def runs_for(project: Project, flow: str, logical: datetime) -> list[dict[str, Any]]:
    return [r for r in project.prefect_runs(flow) if datetime.fromisoformat(r["expected_start_time"]) == logical]


def test_an_airflow_success_starts_the_prefect_downstream_once_with_its_logical_date_and_params(
    project: Project,
) -> None:
    serve = project.serve("af_to_pf").start()
    try:
        runs = {day(0): project.airflow_run(UP_AF, day(0), {"country": "DE"})}
        runs[day(1)] = project.airflow_run(UP_AF, day(1), {"country": "FR"})
        for logical, run_id in runs.items():
            row = wait_for(
                lambda logical=logical: triggered(serve, DOWN_PF, logical),  # type: ignore[misc]
                120,
                f"{DOWN_PF} started for {logical}",
            )
            assert row.upstream_runs == [{"backend": "af", "pipeline": UP_AF, "run_id": run_id}]
            assert project.airflow_state(UP_AF, run_id) == "success"
            [flow_run] = runs_for(project, DOWN_PF, logical)
            assert row.run_id == f"prefect__{flow_run['id']}"
            assert flow_run["parameters"] == {"country": "DE" if logical == day(0) else "FR"}
            assert flow_run["idempotency_key"] == row.trigger_key
        time.sleep(4)  # more polls and pushes of the same successes: nothing more is started
        assert [len(runs_for(project, DOWN_PF, d)) for d in runs] == [1, 1]
        # meta why, through the running server's API, names the upstream run that started each date
        why = meta_cli(serve, "why", DOWN_PF)
        assert "started run prefect__" in why.stdout and f"after {UP_AF} {runs[day(1)]} on af" in why.stdout
    finally:
        serve.stop()


def test_a_prefect_success_starts_the_airflow_downstream_once_with_its_logical_date_and_params(
    project: Project,
) -> None:
    serve = project.serve("pf_to_af").start()
    try:
        project.prefect_run(UP_PF, day(2), {"country": "AT"})
        row = wait_for(lambda: triggered(serve, DOWN_AF, day(2)), 180, f"{DOWN_AF} started for {day(2)}")
        mine = [r for r in project.airflow_runs(DOWN_AF) if r["dag_run_id"] == row.trigger_key]
        assert len(mine) == 1 and mine[0]["conf"] == {"country": "AT"}
        assert datetime.fromisoformat(mine[0]["logical_date"]) == day(2)
        assert row.upstream_runs[0]["pipeline"] == UP_PF and row.upstream_runs[0]["backend"] == "pf"
        time.sleep(4)
        assert len([r for r in project.airflow_runs(DOWN_AF) if r["dag_run_id"] == row.trigger_key]) == 1
        assert len([r for r in project.airflow_runs(DOWN_AF) if r["logical_date"] == mine[0]["logical_date"]]) == 1
    finally:
        serve.stop()


def _first_detail(row: Any) -> str:
    return str(row.waiting_for[0]["detail"]) if row.waiting_for else ""


def test_a_failed_upstream_leaves_the_downstream_waiting_then_timed_out_and_alerted_once(
    project: Project,
    webhook_server: WebhookServer,  # noqa: F811
) -> None:
    url, hook = webhook_server.hook()
    project.env.update({"META_CHANNEL_WEBHOOK_XO_URL": "${secret:xo_hook}", "META_SECRET_XO_HOOK": url})
    serve = project.serve("timeout").start()
    try:
        run_id = project.airflow_run(FAIL_AF, day(3), {})
        wait_for(lambda: project.airflow_state(FAIL_AF, run_id) == "failed", 120, "the upstream to fail")
        # The wait may be recorded before the control plane has seen the upstream fail (it then says running).
        row = wait_for(
            lambda: next((r for r in waits(serve, WAIT_PF) if "failed (af run" in _first_detail(r)), None),
            30,
            "the wait to see the upstream's failure",
        )
        assert row.state == "waiting"
        why = meta_cli(serve, "status", WAIT_PF)
        assert "WAITING since" in why.stdout and f"{FAIL_AF}: failed (af run {run_id})" in why.stdout
        row = wait_for(
            lambda: next((r for r in waits(serve, WAIT_PF) if r.alert_status == "sent"), None), 60, "the timeout"
        )
        assert row.state == "timed_out" and row.run_id is None
        time.sleep(3)
        alerts = [p["event"] for p in list(hook.received) if p.get("event", {}).get("event") == "failure"]
        assert len(alerts) == 1
        assert f"waited for {FAIL_AF}: failed (af run {run_id})" in alerts[0]["message"]
        assert project.prefect_runs(WAIT_PF) == []
    finally:
        serve.stop()


def test_meta_serve_forwards_a_dataset_written_on_prefect_to_the_airflow_dag_scheduled_on_it(project: Project) -> None:
    """The wiring: the forwarder runs in meta serve's leader loop (its semantics both ways, and under SIGKILL, are
    tests/integration/service/test_dataset_forwarding_real.py)."""
    serve = project.serve("datasets").start()
    try:
        project.prefect_run(WRITE_PF, datetime.now(UTC), {})
        runs = wait_for(
            lambda: [r for r in project.airflow_runs(READ_AF) if r.get("run_type") == "asset_triggered"],
            180,
            f"{READ_AF} to be started by the forwarded asset event",
            every=1,
        )
        time.sleep(5)
        assert (
            len([r for r in project.airflow_runs(READ_AF) if r.get("run_type") == "asset_triggered"]) == len(runs) == 1
        )
    finally:
        serve.stop()


def test_a_prefect_schedule_with_catchup_and_an_end_date_runs_each_slot_once(project: Project) -> None:
    """Deployed without a schedule (Prefect would neither catch up nor stop), its slots started by meta serve."""
    assert project.deployment(CATCHUP_PF)["schedules"] == []
    serve = project.serve("catchup").start()
    try:
        expected = [TODAY - timedelta(days=n) + timedelta(hours=1, minutes=30) for n in (3, 2, 1)]

        def started() -> list[datetime]:
            return sorted(datetime.fromisoformat(r["expected_start_time"]) for r in project.prefect_runs(CATCHUP_PF))

        wait_for(lambda: started() == expected, 180, "the three slots", every=1)
        time.sleep(4)
        assert started() == expected  # nothing after end_date, nothing twice
    finally:
        serve.stop()


def test_a_three_day_backfill_with_downstream_runs_each_airflow_date_then_its_prefect_dependent_once(
    project: Project,
) -> None:
    """`meta backfill` on the real backends, with `meta serve` running beside it (its dependency engine must leave
    the backfill's runs alone): three Airflow backfill runs, then three Prefect runs, each after its date succeeded
    upstream; the same command again starts nothing."""
    serve = project.serve("backfill").start()
    dates = [day(n) + timedelta(hours=4) for n in (10, 11, 12)]
    args = ["backfill", BF_UP_AF, "--from", day(10).date().isoformat(), "--to", day(12).date().isoformat()]

    def in_range() -> list[dict[str, Any]]:
        return [
            r for r in project.prefect_runs(BF_DOWN_PF) if datetime.fromisoformat(r["expected_start_time"]) in dates
        ]

    try:
        dry = meta_cli(serve, *args, "--with-downstream", "--dry-run")
        for date in dates:
            stamp = date.isoformat(timespec="minutes")
            assert f"{stamp}  {BF_UP_AF} on af: run (Airflow's backfill)" in dry.stdout, dry.stdout
            assert f"{stamp}  {BF_DOWN_PF} on pf: run, after {BF_UP_AF} succeeds" in dry.stdout
        # (Airflow runs the DAG's latest slot on its own schedule, and meta serve starts its dependent for that one:
        # only the backfill's dates are counted here)
        assert in_range() == []
        done = meta_cli(serve, *args, "--with-downstream", timeout=600)
        assert "6/6 ended: 6 success" in done.stdout, done.stdout
        upstream = {
            datetime.fromisoformat(r["logical_date"]): r
            for r in project.airflow_runs(BF_UP_AF)
            if r["run_type"] == "backfill"
        }
        assert sorted(upstream) == dates and {r["state"] for r in upstream.values()} == {"success"}
        downstream = {datetime.fromisoformat(r["expected_start_time"]): r for r in in_range()}
        assert sorted(downstream) == dates and len(in_range()) == 3
        for date in dates:  # each downstream date was created only after its upstream date succeeded
            assert datetime.fromisoformat(downstream[date]["created"]) >= datetime.fromisoformat(
                upstream[date]["end_date"]
            )
        again = meta_cli(serve, *args, "--with-downstream")
        assert "6/6 ended: 6 success" in again.stdout
        time.sleep(3)
        assert len(in_range()) == 3
        assert len([r for r in project.airflow_runs(BF_UP_AF) if r["run_type"] == "backfill"]) == 3
        # the engine started none of the backfill's dates
        assert not [w for w in waits(serve, BF_DOWN_PF) if w.logical_date in dates and w.state != "waiting"]
    finally:
        serve.stop()


def test_sigkill_around_the_trigger_starts_the_downstream_exactly_once(project: Project) -> None:
    serve = project.serve("sigkill").start()
    try:
        # 1. killed while the upstream runs and succeeds: the restarted plane finds the success and starts it once
        serve.kill()
        run_id = project.airflow_run(UP_AF, day(4), {"country": "DE"})
        wait_for(lambda: project.airflow_state(UP_AF, run_id) == "success", 120, "the upstream to succeed")
        serve.start()
        wait_for(lambda: triggered(serve, DOWN_PF, day(4)), 60, "the downstream after the restart")
        # 2. killed the instant Prefect has the create request, before the plane can record the answer. Only the
        # downstream's own create: another pipeline's (a catchup slot falling due) must not be the one killed.
        killed: list[float] = []
        create = f"deployments/{project.deployment(DOWN_PF)['id']}/create_flow_run".encode()

        def kill_on_create(chunk: bytes) -> None:
            if create in chunk and not killed:
                killed.append(time.monotonic())
                time.sleep(0.05)  # let the request reach Prefect's handler
                assert serve.proc is not None
                os.killpg(serve.proc.pid, signal.SIGKILL)

        project.proxy.on_request = kill_on_create
        run_id = project.airflow_run(UP_AF, day(5), {"country": "FR"})
        wait_for(lambda: killed, 120, "the create request to reach Prefect")
        assert serve.proc is not None
        serve.proc.wait(timeout=10)
        project.proxy.on_request = None
        [row] = [r for r in waits(serve, DOWN_PF) if r.logical_date == day(5)]
        # Claimed and sent, and (nearly always) never confirmed: on a loaded machine Prefect's answer can beat the
        # kill by the 50 ms given above. Either way the restarted plane must not start it again (asserted below).
        assert row.state in ("triggering", "triggered")
        wait_for(lambda: len(runs_for(project, DOWN_PF, day(5))) == 1, 30, "Prefect to have created it")
        serve.start()
        wait_for(lambda: triggered(serve, DOWN_PF, day(5)), 60, "the restarted plane to confirm it")
        time.sleep(3)
        assert [len(runs_for(project, DOWN_PF, d)) for d in (day(4), day(5))] == [1, 1]
        [flow_run] = runs_for(project, DOWN_PF, day(5))
        assert triggered(serve, DOWN_PF, day(5)).run_id == f"prefect__{flow_run['id']}"
    finally:
        project.proxy.on_request = None
        serve.stop()


@pytest.mark.postgres
def test_two_replicas_on_postgresql_start_each_downstream_exactly_once(project: Project) -> None:
    psycopg = pytest.importorskip("psycopg")
    name = f"meta_xo_{secrets.token_hex(4)}"
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    database = f"postgresql://postgres@127.0.0.1:5432/{name}"
    first = project.serve("replica_a", database)
    second = project.serve("replica_b", database, port=free_port())
    try:
        first.start()
        second.start()
        for n in (6, 7):
            project.airflow_run(UP_AF, day(n), {"country": "DE"})
        for n in (6, 7):
            wait_for(lambda n=n: triggered(first, DOWN_PF, day(n), database), 120, f"day {n}")  # type: ignore[misc]
        leader = {r.claimed_by for r in waits(first, DOWN_PF, database) if r.logical_date in (day(6), day(7))}
        assert len(leader) == 1
        # the leader dies: the other replica takes over once the lease expires, and starts the next date once
        pid = int(str(next(iter(leader))).split(":")[1])
        dead, alive = (first, second) if first.proc and first.proc.pid == pid else (second, first)
        dead.kill()
        project.airflow_run(UP_AF, day(8), {"country": "DE"})
        row = wait_for(lambda: triggered(alive, DOWN_PF, day(8), database), 120, "the survivor to start day 8")
        assert alive.proc is not None and str(row.claimed_by).split(":")[1] == str(alive.proc.pid)
        time.sleep(3)
        assert [len(runs_for(project, DOWN_PF, day(n))) for n in (6, 7, 8)] == [1, 1, 1]
    finally:
        first.stop()
        second.stop()
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
