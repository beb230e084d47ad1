"""Cross-orchestrator dependency latency: an upstream succeeds on one backend -> its downstream run is created on the
other by ``meta serve``, p50/p95 over N runs each way, with push and poll-only (target p95 <= 3 s with push).

A real Airflow 3.3 (its OpenLineage provider pushing to the control plane) and a real Prefect server with a process
worker; meta-built pipelines deployed with ``meta deploy --workspace``: ``bench_up_af`` on Airflow and its dependent
``bench_down_pf`` on Prefect, ``bench_up_pf`` on Prefect and its dependent ``bench_down_af`` on Airflow. Latency is
the downstream run's creation on its backend (Prefect's ``created``, Airflow's ``queued_at``) minus the upstream
run's end as its own backend recorded it (Airflow's ``end_date``, Prefect's ``end_time``); one machine, one clock.

- **push**: ``meta serve`` receives Airflow's OpenLineage events and keeps Prefect's websocket open, and polls every
  10 s (the default), as always;
- **poll-only**: the same, with no push at all (no OpenLineage, ``push: false`` on Prefect): polls every 10 s.

Peers, from their documented intervals (they do not run here): Airflow's ExternalTaskSensor pokes every 60 s
(``poke_interval``), so a success is seen on average 30 s later (p95 57 s); dagster-airlift polls Airflow every 30 s
(p50 15 s, p95 28.5 s).

    .venv/bin/python -m bench.bench_dependency_latency            # ~15 min: starts and stops its own servers
    .venv/bin/python -m bench.bench_dependency_latency --runs 3   # a quick check
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.bench_cp_freshness import pct
from tests.fixtures.airflow_server import start_airflow, stop_airflow
from tests.fixtures.control_plane import ServeProcess, free_port
from tests.fixtures.prefect_server import start_prefect

TARGET_S = 3.0
POLL_S = 10.0
SUFFIX = uuid.uuid4().hex[:4]
UP_AF, DOWN_PF, UP_PF, DOWN_AF = (f"bench_{n}_{SUFFIX}" for n in ("up_af", "down_pf", "up_pf", "down_af"))
PEERS = {"Airflow ExternalTaskSensor (poke 60 s)": (30.0, 57.0), "dagster-airlift (poll 30 s)": (15.0, 28.5)}


def specs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    params = "params: {n: {type: integer, default: 0}}\nmax_active_runs: 50\n"
    bodies = {
        UP_AF: "tasks:\n  work: {shell: 'true'}\n",
        DOWN_PF: f"depends_on: [{UP_AF}]\ntasks:\n  work: {{shell: 'true'}}\n",
        UP_PF: "tasks:\n  work: {shell: 'true'}\n",
        DOWN_AF: f"depends_on: [{UP_PF}]\ntasks:\n  work: {{shell: 'true'}}\n",
    }
    for name, body in bodies.items():
        (folder / f"{name}.yaml").write_text(f"pipeline: {name}\n{params}{body}")


def workspace(folder: Path, airflow: Any, prefect: Any, push: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    specs(folder / "dags")
    ingest = "  ingest_token: ${secret:BENCH_INGEST}\n" if push else ""
    text = textwrap.dedent(
        f"""\
        name: bench-deps
        specs: [dags]
        backends:
          af:
            kind: airflow
            url: {airflow.url}
            username: admin
            password: ${{secret:BENCH_AIRFLOW_PASSWORD}}
            specs_dir: {airflow.specs_dir}
            openlineage_namespace: {airflow.namespace}
          pf:
            kind: prefect
            url: {prefect.api_url}
            work_pool: {prefect.pool}
            flows_dir: {prefect.deploy_dir}
            push: {"true" if push else "false"}
        placements:
          - {{backend: af, pipelines: [{UP_AF}, {DOWN_AF}]}}
          - {{backend: pf, pipelines: [{UP_PF}, {DOWN_PF}]}}
        control_plane:
          database: sqlite:///{folder / "cp.db"}
          poll_interval: {POLL_S:g}s
        """
    )
    path = folder / "meta.yaml"
    path.write_text(text + ingest)
    return path


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Backends:
    def __init__(self, airflow: Any, prefect: Any):
        self.airflow, self.prefect = airflow, prefect
        self.client = airflow.client()
        self.http = httpx.Client(base_url=prefect.api_url + "/", timeout=30)

    def prefect_call(self, method: str, path: str, body: Any = None) -> Any:
        for _attempt in range(20):  # Prefect on SQLite answers 503 (database locked) under load
            response = self.http.request(method, path, json=body)
            if response.status_code < 500:
                response.raise_for_status()
                return response.json() if response.content else None
            time.sleep(0.5)
        raise RuntimeError(f"Prefect kept failing {method} {path}")

    def airflow_call(self, method: str, path: str, **kw: Any) -> Any:
        for attempt in range(10):  # Airflow on SQLite answers 500 now and then under load
            try:
                return self.client.request(method, path, **kw)
            except Exception as exc:
                if "409" in str(exc) or attempt == 9:
                    raise
                time.sleep(0.5)
        return None

    def unpause_when_parsed(self, dag: str, timeout: float = 180) -> None:
        """Wait for meta's loader DAG to have parsed ``dag``, then unpause it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client.request("GET", f"/dags/{dag}")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        self.airflow_call("PATCH", f"/dags/{dag}", params={"update_mask": "is_paused"}, json={"is_paused": False})

    def deployment(self, flow: str) -> str:
        [found] = self.prefect_call("POST", "deployments/filter", {"flows": {"name": {"any_": [flow]}}})
        return str(found["id"])

    def flow_runs(self, flow: str) -> list[dict[str, Any]]:
        body = {"deployments": {"id": {"any_": [self.deployment(flow)]}}, "limit": 200}
        return list(self.prefect_call("POST", "flow_runs/filter", body))


def airflow_to_prefect(b: Backends, logical: datetime) -> float:
    run_id = f"bench_{uuid.uuid4().hex[:8]}"
    b.airflow_call("POST", f"/dags/{UP_AF}/dagRuns", json={"dag_run_id": run_id, "logical_date": logical.isoformat()})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        mine = [r for r in b.flow_runs(DOWN_PF) if ts(r["expected_start_time"]) == logical.timestamp()]
        if mine:
            upstream = b.airflow_call("GET", f"/dags/{UP_AF}/dagRuns/{run_id}")
            if upstream.get("end_date"):
                return ts(mine[0]["created"]) - ts(upstream["end_date"])
        time.sleep(0.2)
    raise RuntimeError(f"no downstream flow run for {logical} within 180 s")


def prefect_to_airflow(b: Backends, logical: datetime) -> float:
    body = {"state": {"type": "SCHEDULED", "state_details": {"scheduled_time": logical.isoformat()}}}
    flow_run = b.prefect_call("POST", f"deployments/{b.deployment(UP_PF)}/create_flow_run", body)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        runs = b.airflow_call("GET", f"/dags/{DOWN_AF}/dagRuns", params={"limit": 100})["dag_runs"]
        mine = [r for r in runs if r.get("logical_date") and ts(r["logical_date"]) == logical.timestamp()]
        if mine:
            upstream = b.prefect_call("GET", f"flow_runs/{flow_run['id']}")
            if upstream.get("end_time"):
                return ts(mine[0]["queued_at"]) - ts(upstream["end_time"])
        time.sleep(0.2)
    raise RuntimeError(f"no downstream DAG run for {logical} within 180 s")


def measure(b: Backends, runs: int, start: datetime, label: str) -> tuple[list[float], list[float]]:
    af, pf = [], []
    for i in range(runs):
        af.append(airflow_to_prefect(b, start + timedelta(hours=2 * i)))
        pf.append(prefect_to_airflow(b, start + timedelta(hours=2 * i + 1)))
        print(
            f"  {label} {i + 1:2d}/{runs}: airflow->prefect {af[-1]:.2f}s, prefect->airflow {pf[-1]:.2f}s", flush=True
        )
    return af, pf


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (logs, the stores) for a look after")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() if not args.keep else nullcontext(args.keep) as tmp:
        root = Path(tmp)
        print("starting Airflow and Prefect ...", flush=True)
        airflow = start_airflow(root / "airflow")
        prefect = start_prefect(root / "prefect")
        results: dict[str, tuple[list[float], list[float]]] = {}
        try:
            from tests.fixtures.airflow_server import wait_healthy

            wait_healthy(airflow)
            env = {
                "META_SECRET_BENCH_AIRFLOW_PASSWORD": airflow.password("admin"),
                "META_SECRET_BENCH_INGEST": airflow.lineage_token,
            }
            deploy_workspace = workspace(root / "deploy", airflow, prefect.server, True)
            deploy = subprocess.run(
                [str(Path(sys.executable).parent / "meta"), "deploy", "--workspace", str(deploy_workspace)],
                env={**os.environ, **prefect.server.env, **env},
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if deploy.returncode:
                raise RuntimeError(deploy.stdout + deploy.stderr)
            b = Backends(airflow, prefect.server)
            for dag in (UP_AF, DOWN_AF):
                b.unpause_when_parsed(dag)
            start = datetime(2026, 1, 1, tzinfo=UTC)
            for offset, (mode, push) in enumerate((("push", True), ("poll-only", False))):
                port = airflow.lineage_port if push else free_port()
                serve = ServeProcess(
                    workspace(root / mode, airflow, prefect.server, push),
                    {**env, "META_HOME": str(root / mode / "home")},
                    port=port,
                )
                serve.start()
                try:
                    time.sleep(3)  # the first poll of each backend is in
                    results[mode] = measure(b, args.runs, start + timedelta(days=30 * offset), mode)
                finally:
                    serve.stop()
        finally:
            prefect.stop()
            stop_airflow(airflow)
    print(f"\nupstream success -> downstream run created, over {args.runs} runs each way (seconds)")
    print(f"{'':34} {'p50':>7} {'p95':>7}")
    for mode, (af, pf) in results.items():
        for label, values in (("airflow -> prefect", af), ("prefect -> airflow", pf)):
            print(f"{mode + ', ' + label:34} {pct(values, 0.5):7.2f} {pct(values, 0.95):7.2f}")
    for peer, (p50, p95) in PEERS.items():
        print(f"{peer:34} {p50:7.2f} {p95:7.2f}   (documented interval)")
    push_p95 = max(pct(v, 0.95) for v in results["push"])
    worst_peer = min(p95 for _, p95 in PEERS.values())
    print(f"\npush p95 {push_p95:.2f}s (target <= {TARGET_S:g}s): {'met' if push_p95 <= TARGET_S else 'NOT met'}")
    print(f"ratio to the faster peer's p95 ({worst_peer:g}s): {push_p95 / worst_peer:.3f}")
    return 0 if push_p95 <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
