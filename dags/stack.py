"""``make demo-stack``: the demo's story on a real Airflow 3 and a real Prefect 3, started here on loopback ports.

Everything lives in ``<state dir>/demo-stack`` (``$META_HOME`` or ``./.meta``) and is stopped by process group when
the demo ends (Ctrl-C, or ``--once``):

- Prefect: ``prefect server start``, a process work pool and a worker polling it. ``marketing_roi`` runs here.
- Airflow: ``airflow db migrate`` (SQLite, LocalExecutor), then api-server, scheduler, dag-processor and triggerer.
  Its dags folder holds a copy of dags/meta_loader.py, which turns the specs ``meta deploy`` writes into DAGs; its
  OpenLineage provider pushes every run event to the control plane (``POST /api/v1/lineage`` with an ingest token).
  ``marketing_report`` runs here, started by the control plane. (``marketing_roi`` does not run on this Airflow:
  its ``sql`` tasks become Airflow's SQLExecuteQueryOperator, which needs a provider for the warehouse's database,
  and the example's warehouse is DuckDB.)
- Both run the example's tasks with ``META_HOME`` = the demo's folder, so they share its DuckDB warehouse.

Credentials (Airflow's admin password, the ingest token) are generated per demo and handed over only as
``${secret:NAME}`` references resolved from the environment; nothing prints them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from dags.demo import (
    DAGS,
    DOWNSTREAM,
    FAST,
    REPO,
    SLOW,
    SLOW_SECONDS,
    UPSTREAM,
    Chapter,
    ControlPlane,
    base_env,
    follow_report,
    free_port,
    say,
    stop_tree,
    wait_for,
    write_workspace,
)

BIN = Path(sys.executable).parent
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
POOL = "meta-demo"
NAMESPACE = "meta-demo-airflow"


@dataclass
class Processes:
    """The processes this launcher started, each leading its own process group; ``stop`` ends them newest first.
    Once stopping, nothing more is started (a start racing with Ctrl-C in another thread raises instead)."""

    pids: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: bool = False

    def start(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
        with self.lock:
            if self.stopping:
                raise RuntimeError("the demo is stopping")
            with open(log, "ab") as out:
                proc = subprocess.Popen(
                    argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            self.pids.append(proc.pid)
            return proc

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            pids = list(reversed(self.pids))
        for pid in pids:
            stop_tree(pid)


@dataclass
class Airflow:
    url: str
    password: str  # the generated admin password (SimpleAuthManager)
    specs_dir: Path
    home: Path

    def token(self) -> str:
        response = httpx.post(
            f"{self.url}/auth/token", json={"username": "admin", "password": self.password}, timeout=30
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,)) -> httpx.Response:
        """Airflow's REST API v2; on SQLite it answers 5xx now and then under load, so a few tries."""
        response = None
        for _ in range(10):
            try:
                response = httpx.request(
                    method,
                    f"{self.url}/api/v2{path}",
                    json=body,
                    headers={"Authorization": f"Bearer {self.token()}"},
                    timeout=30,
                )
            except httpx.HTTPError:
                time.sleep(1)
                continue
            if response.status_code in ok or response.status_code < 500:
                return response
            time.sleep(1)
        raise RuntimeError(f"Airflow {method} {path}: {response.status_code if response else 'no answer'}")


def start_airflow(home: Path, shared: Path, procs: Processes, lineage_port: int, ingest_token: str) -> Airflow:
    port = free_port()
    password = secrets.token_urlsafe(18)
    for sub in ("dags", "specs"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(DAGS / "meta_loader.py", home / "dags" / "meta_loader.py")
    (home / "passwords.json").write_text(json.dumps({"admin": password}))  # Airflow's own user store
    (home / "passwords.json").chmod(0o600)
    env = {
        **{k: v for k, v in base_env(shared).items() if not k.startswith("AIRFLOW")},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # the example's callables (jobs.marketing_roi) import from dags/, as from Airflow's own dags folder
        "PYTHONPATH": os.pathsep.join([str(REPO), str(DAGS)]),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",  # LocalExecutor starts this many workers up front (default 32)
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(24),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": NAMESPACE,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {
                "type": "http",
                "url": f"http://127.0.0.1:{lineage_port}",
                "endpoint": "api/v1/lineage",
                "auth": {"type": "api_key", "apiKey": ingest_token},
                "timeout": 5,
            }
        ),
        # plugins/meta_ui.py: a "meta" tab on the DAG and DAG run pages, opening the control plane's dashboard
        "AIRFLOW__META__CONTROL_PLANE_URL": f"http://127.0.0.1:{lineage_port}",
        "AIRFLOW__META__BACKEND_NAME": "airflow",  # the workspace's name for this Airflow (stack_story)
        "META_SPECS_DIR": str(home / "specs"),
        "META_LOADER_STRICT": "1",
    }
    airflow = Airflow(f"http://127.0.0.1:{port}", password, home / "specs", home)
    say(f"  airflow: db migrate in {home}")
    migrate = procs.start([str(BIN / "airflow"), "db", "migrate"], env, home, home / "db-migrate.log")
    if migrate.wait(timeout=300) != 0:
        raise RuntimeError(f"airflow db migrate failed: see {home / 'db-migrate.log'}")
    for component in AIRFLOW_COMPONENTS:
        procs.start([str(BIN / "airflow"), component], env, home, home / f"{component}.log")

    def healthy() -> bool:
        try:
            health = httpx.get(f"{airflow.url}/api/v2/monitor/health", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return False
        parts = ("metadatabase", "scheduler", "dag_processor", "triggerer")
        return all((health.get(k) or {}).get("status") == "healthy" for k in parts)

    wait_for(healthy, 180, f"Airflow at {airflow.url} to be healthy (logs: {home})", every=1)
    say(f"  airflow: healthy at {airflow.url}")
    return airflow


@dataclass
class Prefect:
    api_url: str
    home: Path

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """Prefect's REST API; on SQLite it answers 503 (database locked) now and then, so a few tries."""
        response = None
        for _ in range(10):
            try:
                response = httpx.request(method, f"{self.api_url}/{path}", json=body, timeout=30)
            except httpx.HTTPError:
                time.sleep(1)
                continue
            if response.status_code < 500:
                response.raise_for_status()
                return response.json() if response.content else None
            time.sleep(1)
        raise RuntimeError(f"Prefect {method} {path}: {response.status_code if response else 'no answer'}")

    def start_run(self, flow: str, logical_date: datetime, parameters: dict[str, Any]) -> str:
        """A run of ``flow``'s deployment scheduled at ``logical_date`` (meta's flows read their logical date from
        the scheduled start, as Prefect's scheduler would set it): the control plane's run id for it."""
        [deployment] = self.call("POST", "deployments/filter", {"flows": {"name": {"any_": [flow]}}})
        body = {
            "parameters": parameters,
            "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": logical_date.isoformat()}},
        }
        run = self.call("POST", f"deployments/{deployment['id']}/create_flow_run", body)
        return f"prefect__{run['id']}"


def start_prefect(home: Path, shared: Path, procs: Processes) -> Prefect:
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {
        **base_env(shared),
        "PYTHONPATH": os.pathsep.join([str(REPO), str(DAGS)]),
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
    }
    prefect = str(BIN / "prefect")
    procs.start(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, home, home / "server.log"
    )

    def healthy() -> bool:
        try:
            return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, 120, f"Prefect at {api_url} to be healthy (log: {home / 'server.log'})", every=0.5)
    pool = subprocess.run(
        [prefect, "work-pool", "create", POOL, "--type", "process", "--overwrite"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if pool.returncode != 0:
        raise RuntimeError(f"prefect work-pool create failed:\n{pool.stdout}{pool.stderr}")
    procs.start([prefect, "worker", "start", "--pool", POOL, "--type", "process"], env, home, home / "worker.log")
    say(f"  prefect: healthy at {api_url}, worker polling pool {POOL}")
    return Prefect(api_url, home)


def start_both(home: Path, procs: Processes, lineage_port: int, ingest_token: str) -> tuple[Airflow, Prefect]:
    """Prefect starts in a thread while Airflow migrates its database (the slow part) here."""
    found: dict[str, Any] = {}

    def prefect() -> None:
        try:
            found["prefect"] = start_prefect(home / "prefect", home, procs)
        except BaseException as exc:  # reported in the main thread
            found["error"] = exc

    thread = threading.Thread(target=prefect, name="prefect-start", daemon=True)
    thread.start()
    try:
        airflow = start_airflow(home / "airflow", home, procs, lineage_port, ingest_token)
    finally:
        while thread.is_alive():  # Ctrl-C still interrupts this wait; Processes refuses later starts
            thread.join(0.5)
    if "error" in found:
        raise RuntimeError(f"Prefect did not start: {found['error']}")
    return airflow, found["prefect"]


def follow_run(plane: ControlPlane, backend: str, pipeline: str, run_id: str, timeout: float = 300.0) -> str:
    """Print each task's state as the control plane learns it (pushes, then polls), until the run ends."""
    shown: dict[tuple[str, int], str] = {}

    def ended() -> str | None:
        try:
            detail = plane.get(f"/runs/{backend}/{pipeline}/{run_id}")
        except Exception as exc:  # not observed yet: 404
            if getattr(exc, "status", None) == 404:
                return None
            raise
        for attempt in detail["attempts"]:
            key = (attempt["task_id"], attempt["try_number"])
            if shown.get(key) != attempt["state"]:
                shown[key] = attempt["state"]
                task, state, source = attempt["task_id"], attempt["state"], attempt["source"]
                say(f"    {task:<28} {state:<16} try {attempt['try_number']} (seen by {source})")
        state = detail["run"]["state"]
        return str(state) if state in ("success", "failed") else None

    return str(wait_for(ended, timeout, f"{pipeline} {run_id} on {backend} to end", every=0.5))


def stack_story(home: Path, port: int, cleanup: contextlib.ExitStack) -> tuple[ControlPlane, list[Chapter]]:
    procs = Processes()
    cleanup.callback(procs.stop)
    ingest_token = secrets.token_urlsafe(32)
    say(f"state directory: {home}")
    say("starting Airflow 3 and Prefect 3 on loopback ports (about a minute)")
    airflow, prefect = start_both(home, procs, port, ingest_token)
    workspace = write_workspace(
        home,
        port,
        backends=f"""
airflow:
  kind: airflow
  description: the demo's Airflow 3 (logs in {airflow.home})
  url: {airflow.url}
  username: admin
  password: ${{secret:DEMO_AIRFLOW_PASSWORD}}
  specs_dir: {airflow.specs_dir}
  openlineage_namespace: {NAMESPACE}
prefect:
  kind: prefect
  description: the demo's Prefect 3 (logs in {prefect.home})
  url: {prefect.api_url}
  work_pool: {POOL}
  flows_dir: {prefect.home / "flows"}
""",
        placements=(
            f"- {{backend: prefect, pipelines: [{UPSTREAM}]}}\n- {{backend: airflow, pipelines: [{DOWNSTREAM}]}}"
        ),
        extra="  ingest_token: ${secret:DEMO_INGEST_TOKEN}\n",
    )
    env = {
        **base_env(home),
        "PREFECT_API_URL": prefect.api_url,
        "META_SECRET_DEMO_AIRFLOW_PASSWORD": airflow.password,
        "META_SECRET_DEMO_INGEST_TOKEN": ingest_token,
    }
    plane = ControlPlane(workspace, port, env)
    cleanup.callback(plane.stop)
    say(f"deploying: meta deploy --workspace {workspace}")
    deployed = plane.meta("deploy", "--workspace", str(workspace))
    say("\n".join(f"  {line}" for line in deployed.stdout.strip().splitlines()))
    wait_for(
        lambda: airflow.call("GET", f"/dags/{DOWNSTREAM}", ok=(200, 404)).status_code == 200,
        180,
        f"Airflow to parse {DOWNSTREAM}",
        every=1,
    )
    airflow.call("PATCH", f"/dags/{DOWNSTREAM}?update_mask=is_paused", {"is_paused": False})
    plane.mint("viewer", team="growth")
    say(f"starting the control plane: meta serve --workspace {workspace}")
    plane.start()
    say(f"  serving on {plane.url}")
    chapters = []
    for country in (FAST, SLOW):
        chapter = Chapter(country, "prefect")
        logical = datetime.now(UTC).replace(microsecond=0)
        say(f"\nstarting {UPSTREAM} for {country} on Prefect (its REST API, as its scheduler would), for {logical}")
        params = {"country": country, "data_dir": str(home / "data")}
        chapter.upstream_run = prefect.start_run(UPSTREAM, logical, params)
        say(f"  run {chapter.upstream_run}")
        chapter.upstream_state = follow_run(plane, "prefect", UPSTREAM, chapter.upstream_run)
        say(f"  {UPSTREAM} {chapter.upstream_run} on Prefect: {chapter.upstream_state}")
        if chapter.upstream_state != "success":
            raise RuntimeError(
                f"{UPSTREAM} {chapter.upstream_run} ended {chapter.upstream_state} (logs: {prefect.home})"
            )
        say(
            f"  waiting for the control plane to start {DOWNSTREAM} on Airflow"
            + (f" (it holds {SLOW} back {SLOW_SECONDS}s on purpose)" if country == SLOW else "")
        )
        follow_report(plane, chapter, timeout=240)
        chapters.append(chapter)
    return plane, chapters
