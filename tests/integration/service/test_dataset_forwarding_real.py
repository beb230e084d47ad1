"""Dataset forwarding between the session's real Airflow and real Prefect (with its process worker):

- a meta-built producer flow deployed with ``meta deploy --target prefect`` writes a dataset; the control plane
  (``ControlPlane.refresh`` + ``DatasetForwarder.tick`` in-process) forwards it as an Airflow asset event, which
  starts the meta-built consumer DAG scheduled on that dataset (its spec in the loader's specs folder), once;
- the other way round: a meta-built Airflow producer DAG's dataset runs the Prefect consumer deployment through the
  automation ``meta deploy`` made for it, once;
- the forwarding process (tests/integration/service/dataset_forward_driver.py) SIGKILLed after its claim and
  after the target accepted the event, in both directions, then started again: exactly one event on the target
  and one consumer run;
- the senders' contract on the real servers: an asset no DAG references is a clear error; ``find`` tells a sent
  forward from an unsent one; Prefect stores a re-sent event id once.
"""

from __future__ import annotations

import os
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

from meta.authoring.workspace import declared_teams, load_workspace
from meta.service.connections import database_url, resolve_connections
from meta.service.datasets import DatasetForwarder, Forward, ForwardError
from meta.service.datasets.airflow import AirflowAssetSender
from meta.service.datasets.prefect import PrefectEventSender
from meta.service.observers.airflow import AirflowHttp
from meta.service.observers.prefect import _Http
from meta.service.server import ControlPlane
from meta.service.store.orm import DatasetForwardRow
from tests.fixtures.airflow_server import airflow_server  # noqa: F401 - a pytest fixture
from tests.fixtures.control_plane import REPO
from tests.fixtures.prefect_server import prefect_server  # noqa: F401 - a pytest fixture

pytestmark = [pytest.mark.slow, pytest.mark.airflow, pytest.mark.prefect]

S = uuid.uuid4().hex[:6]
FROM_PREFECT = f"x-meta://dsf-{S}/from-prefect"
FROM_AIRFLOW = f"x-meta://dsf-{S}/from-airflow"
CONTRACT = f"x-meta://dsf-{S}/contract"
PF_WRITER, AF_READER = f"dsf_pf_writer_{S}", f"dsf_af_reader_{S}"
AF_WRITER, PF_READER = f"dsf_af_writer_{S}", f"dsf_pf_reader_{S}"
AF_CONTRACT = f"dsf_af_contract_{S}"
SECRET = "DSF_AIRFLOW_PASSWORD"


def writer(pipeline: str, uri: str) -> str:
    return f'pipeline: {pipeline}\ntasks:\n  write:\n    shell: "true"\n    outputs: ["{uri}"]\n'


def reader(pipeline: str, uri: str) -> str:
    return f'pipeline: {pipeline}\nschedule: {{datasets: ["{uri}"]}}\ntasks:\n  read:\n    shell: "true"\n'


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


def retrying(call: Callable[[], Any], attempts: int = 10) -> Any:
    """Both servers run on SQLite: under load they answer 5xx now and then."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


@dataclass
class World:
    path: Path
    env: dict[str, str]
    plane: ControlPlane
    forwarder: DatasetForwarder
    airflow: AirflowHttp
    prefect: httpx.Client
    deployments: dict[str, str]  # flow -> deployment id

    # -- the store -----------------------------------------------------------------------------------

    def forwards(self, run: str) -> list[DatasetForwardRow]:
        with self.plane.store.reading() as session:
            rows = list(session.scalars(select(DatasetForwardRow).where(DatasetForwardRow.source_run == run)))
            session.expunge_all()
            return rows

    def forward_in_process(self, run: str, timeout: float = 180) -> DatasetForwardRow:
        def sent() -> DatasetForwardRow | None:
            self.plane.refresh()
            self.forwarder.tick()
            rows = self.forwards(run)
            return rows[0] if len(rows) == 1 and rows[0].status == "sent" else None

        return wait_for(sent, timeout, f"the forward of {run}", every=1)

    # -- Airflow -------------------------------------------------------------------------------------

    def trigger_dag(self, dag: str, run_id: str) -> str:
        body: dict[str, Any] = {"dag_run_id": run_id, "logical_date": None, "conf": {}}
        retrying(lambda: self.airflow.call("POST", f"/api/v2/dags/{dag}/dagRuns", ok=(200, 409), json=body))
        return run_id

    def dag_runs(self, dag: str) -> list[dict[str, Any]]:
        found = retrying(lambda: self.airflow.call("GET", f"/api/v2/dags/{dag}/dagRuns", params={"limit": 100}))
        return list(found.json()["dag_runs"])

    def asset_events(self, uri: str) -> list[dict[str, Any]]:
        sender = AirflowAssetSender("airflow", self.airflow)
        asset = retrying(lambda: sender.asset_id(uri))
        params = {"asset_id": asset, "limit": 100}
        return list(
            retrying(lambda: self.airflow.call("GET", "/api/v2/assets/events", params=params)).json()["asset_events"]
        )

    def events_with_key(self, uri: str, key: str) -> list[dict[str, Any]]:
        return [e for e in self.asset_events(uri) if (e.get("extra") or {}).get("meta_forward") == key]

    # -- Prefect -------------------------------------------------------------------------------------

    def post(self, path: str, body: Any) -> Any:
        def once() -> Any:
            response = self.prefect.post(path, json=body)
            assert response.status_code < 300, f"{path}: {response.status_code} {response.text[:300]}"
            return response.json() if response.content else None

        return retrying(once)

    def run_flow(self, flow: str) -> str:
        run = self.post(f"deployments/{self.deployments[flow]}/create_flow_run", {})
        return f"prefect__{run['id']}"

    def flow_runs(self, flow: str) -> list[dict[str, Any]]:
        body = {"deployments": {"id": {"any_": [self.deployments[flow]]}}, "limit": 200}
        return list(self.post("flow_runs/filter", body))

    def prefect_events(self, event_id: str) -> list[dict[str, Any]]:
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        body = {"filter": {"id": {"id": [event_id]}, "occurred": {"since": since, "until": until}}, "limit": 50}
        return list(self.post("events/filter", body)["events"])


def deploy_to_prefect(server: Any, spec: Path) -> None:
    meta = Path(sys.executable).parent / "meta"
    args = [str(meta), "deploy", "--target", "prefect", str(spec), "--pool", server.pool]
    done = subprocess.run(args, env=server.env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def world(
    airflow_server: Any,  # noqa: F811
    prefect_server: Any,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("dataset_forwarding")
    specs = root / "specs"
    specs.mkdir()
    files = {
        PF_WRITER: writer(PF_WRITER, FROM_PREFECT),
        PF_READER: reader(PF_READER, FROM_AIRFLOW),
        AF_WRITER: writer(AF_WRITER, FROM_AIRFLOW),
        AF_READER: reader(AF_READER, FROM_PREFECT),
        AF_CONTRACT: reader(AF_CONTRACT, CONTRACT),
    }
    for name, text in files.items():
        (specs / f"{name}.yaml").write_text(text)
    for name in (AF_WRITER, AF_READER, AF_CONTRACT):  # deployed: meta's loader DAG reads this folder
        (airflow_server.specs_dir / f"{name}.yaml").write_text(files[name])
    for name in (PF_WRITER, PF_READER):
        deploy_to_prefect(prefect_server, specs / f"{name}.yaml")
    path = root / "meta.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: dsf_real
            specs: [specs]
            backends:
              airflow:
                kind: airflow
                url: {airflow_server.url}
                username: admin
                password: "${{secret:{SECRET}}}"
              prefect:
                kind: prefect
                url: {prefect_server.api_url}
                work_pool: {prefect_server.pool}
            placements:
              - {{backend: prefect, pipelines: [{PF_WRITER}, {PF_READER}]}}
              - {{backend: airflow, pipelines: [{AF_WRITER}, {AF_READER}, {AF_CONTRACT}]}}
            control_plane:
              database: sqlite:///{root / "cp.db"}
              poll_interval: 1s
            """
        )
    )
    env = {f"META_SECRET_{SECRET}": airflow_server.password("admin")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    airflow = AirflowHttp(airflow_server.url, "admin", airflow_server.password("admin"))
    prefect = httpx.Client(base_url=prefect_server.api_url + "/", timeout=30)
    plane = None
    try:
        for dag in (AF_WRITER, AF_READER, AF_CONTRACT):

            def parsed(d: str = dag) -> bool:
                return airflow.call("GET", f"/api/v2/dags/{d}", ok=(200, 404)).status_code == 200

            wait_for(parsed, 120, f"Airflow to parse {dag}", every=1)
            airflow.call("PATCH", f"/api/v2/dags/{dag}", params={"update_mask": "is_paused"}, json={"is_paused": False})
        deployments = {}
        for flow in (PF_WRITER, PF_READER):
            deployments[flow] = prefect.get(f"deployments/name/{flow}/meta").json()["id"]
        loaded = load_workspace(path)
        pipelines = loaded.load_pipelines()
        plane = ControlPlane.open(
            loaded.workspace,
            resolve_connections(loaded, pipelines),
            database_url=database_url(loaded),
            declared_teams=declared_teams(loaded, pipelines.pipelines),
            pipelines=pipelines.pipelines,
        )
        plane.refresh(timeout=60)
        forwarder = DatasetForwarder.of(plane, stale_after=1.0, backoff=1.0)
        forwarder.tick()  # watching begins now
        assert forwarder.targets == {FROM_AIRFLOW: ("prefect",), FROM_PREFECT: ("airflow",), CONTRACT: ("airflow",)}
        yield World(path, {**env, "PYTHONPATH": str(REPO)}, plane, forwarder, airflow, prefect, deployments)
        forwarder.close()
    finally:
        if plane is not None:
            plane.close()
        airflow.close()
        prefect.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def forward(key: str, uri: str, target: str) -> Forward:
    return Forward(key, uri, "elsewhere", "contract_pipeline", f"run_{key}", "write", target, datetime.now(UTC))


# ---------------------------------------------------------------------------------------------- contracts


def test_airflow_sender_contract_on_the_real_server(world: World) -> None:
    sender = AirflowAssetSender("airflow", world.airflow)
    unknown = forward(f"c-unknown-{S}", f"x-meta://dsf-{S}/nobody-reads-this", "airflow")
    with pytest.raises(ForwardError, match="no active asset") as refused:
        sender.send(unknown)
    assert "admin-pw" not in str(refused.value)
    sent = forward(f"c-sent-{S}", CONTRACT, "airflow")
    assert retrying(lambda: sender.find(sent)) is None
    remote = sender.send(sent)
    assert sender.find(sent) == remote
    [event] = world.events_with_key(CONTRACT, sent.key)
    assert str(event["id"]) == remote and event["extra"]["meta_source_run"] == sent.source_run
    assert sender.find(forward(f"c-other-{S}", CONTRACT, "airflow")) is None
    # the asset event starts the DAG scheduled on it, as a producing task would
    wait_for(lambda: [r for r in world.dag_runs(AF_CONTRACT) if r["run_type"] == "asset_triggered"], 90, "the DAG")


def test_prefect_sender_contract_on_the_real_server(world: World, prefect_server: Any) -> None:  # noqa: F811
    sender = PrefectEventSender("prefect", _Http(prefect_server.api_url, None, 30.0))
    try:
        sent = forward(f"c-prefect-{S}", f"x-meta://dsf-{S}/prefect-contract", "prefect")
        assert sender.find(sent) is None
        assert sender.send(sent) == sent.event_id
        assert sender.send(sent) == sent.event_id  # a re-send of the same forward
        wait_for(lambda: sender.find(sent), 30, "the event to be stored")
        time.sleep(6)  # past Prefect's event persister flush (5 s): the re-sent copy would be in by now
        [stored] = world.prefect_events(sent.event_id)
        assert stored["event"] == "meta.dataset.updated"
        assert stored["resource"]["prefect.resource.id"] == sent.dataset
        assert stored["payload"]["meta_forward"] == sent.key
    finally:
        sender.close()


# ---------------------------------------------------------------------------------------------- both directions


def test_a_dataset_written_on_prefect_starts_the_asset_scheduled_dag_on_airflow_once(world: World) -> None:
    before = len(world.dag_runs(AF_READER))
    run = world.run_flow(PF_WRITER)
    row = world.forward_in_process(run)
    assert (row.dataset, row.source_backend, row.source_pipeline, row.source_task, row.target_backend) == (
        FROM_PREFECT,
        "prefect",
        PF_WRITER,
        "write",
        "airflow",
    )
    [event] = world.events_with_key(FROM_PREFECT, row.key)
    assert str(event["id"]) == row.remote_id
    runs = wait_for(lambda: [r for r in world.dag_runs(AF_READER) if r["run_type"] == "asset_triggered"], 90, "the DAG")
    for _ in range(5):  # more ticks and polls forward nothing more
        world.plane.refresh()
        world.forwarder.tick()
        time.sleep(1)
    assert len(world.forwards(run)) == 1 and len(world.events_with_key(FROM_PREFECT, row.key)) == 1
    assert len(runs) == 1 and len(world.dag_runs(AF_READER)) == before + 1


def test_a_dataset_written_on_airflow_runs_the_prefect_consumer_deployment_once(world: World) -> None:
    before = len(world.flow_runs(PF_READER))
    run = world.trigger_dag(AF_WRITER, f"dsf_{S}_1")
    row = world.forward_in_process(run)
    assert (row.dataset, row.source_backend, row.source_pipeline, row.target_backend) == (
        FROM_AIRFLOW,
        "airflow",
        AF_WRITER,
        "prefect",
    )
    wait_for(lambda: len(world.flow_runs(PF_READER)) > before, 60, "the automation to run the consumer")
    for _ in range(6):
        world.plane.refresh()
        world.forwarder.tick()
        time.sleep(1)
    assert len(world.flow_runs(PF_READER)) == before + 1
    assert len(world.forwards(run)) == 1
    [event] = world.prefect_events(str(row.remote_id))
    assert event["resource"]["prefect.resource.id"] == FROM_AIRFLOW
    assert event["payload"]["meta_source_backend"] == "airflow" and event["payload"]["run_id"] == run


# ---------------------------------------------------------------------------------------------- SIGKILL


def drive(world: World, run: str, kill_at: str | None) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "tests.integration.service.dataset_forward_driver", "--workspace", str(world.path)]
    args += ["--run", run, "--stale-after", "1"]
    if kill_at:
        args += ["--kill-at", kill_at]
    return subprocess.run(
        args, env={**os.environ, **world.env}, cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize("stage", ["claimed", "sent"])
@pytest.mark.parametrize("direction", ["prefect->airflow", "airflow->prefect"])
def test_the_forwarder_sigkilled_around_a_send_and_restarted_gives_exactly_one_event(
    world: World, direction: str, stage: str
) -> None:
    to_airflow = direction == "prefect->airflow"
    consumer_runs: Callable[[], int] = (
        (lambda: len(world.dag_runs(AF_READER))) if to_airflow else (lambda: len(world.flow_runs(PF_READER)))
    )
    before = consumer_runs()
    run = world.run_flow(PF_WRITER) if to_airflow else world.trigger_dag(AF_WRITER, f"dsf_{S}_{stage}")
    killed = drive(world, run, stage)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    [row] = world.forwards(run)
    assert (row.status, row.attempts) == ("sending", 1), "killed between the claim and marking it sent"

    def on_target() -> int:
        if to_airflow:
            return len(world.events_with_key(FROM_PREFECT, row.key))
        return len(world.prefect_events(Forward(row.key, "", "", "", "", None, "", row.created_at).event_id))

    if stage == "sent":
        wait_for(on_target, 30, "the event the killed process sent")
    else:
        time.sleep(6)
        assert on_target() == 0, "killed before sending"
    again = drive(world, run, None)
    assert again.returncode == 0, again.stdout + again.stderr
    [row] = world.forwards(run)
    assert (row.status, row.attempts) == ("sent", 2) and row.remote_id
    wait_for(lambda: consumer_runs() > before, 90, "the consumer to be started")
    time.sleep(8)  # a duplicate event would have started a second run by now
    assert on_target() == 1
    assert consumer_runs() == before + 1
