"""Control-plane freshness: a task's success on a real backend -> visible in meta's API, p50/p95 over 20 runs.

Starts a real Airflow 3.3 (with its OpenLineage provider pushing to the control plane) and a real Prefect server,
then two ``meta serve`` processes side by side on the same backends:

- **push**: receives Airflow's OpenLineage events and keeps Prefect's websocket open (and polls, as always);
- **poll-only**: the same observers with no push at all (the default 10 s poll interval).

"Visible" is the moment the control plane's change stream (``GET /api/v1/stream``) delivers the attempt in state
success, measured against the backend's own end time of that task (Airflow's task instance ``end_date``; the
Prefect flow run's state timestamp), on the same clock. Targets: push p95 <= 2 s; poll-only <= interval + 1 s.
Peers, printed beside: dagster-airlift polls Airflow every 30 s and an Airflow sensor pokes every 60 s, so a fact
waits uniform(0, interval) for them: p50 = interval / 2, p95 = 0.95 x interval (computed, not run here).
Also prints the RSS of the ``meta serve`` watching both backends (target <= 150 MB).

    .venv/bin/python -m bench.bench_cp_freshness     # ~6 min: starts and stops its own servers
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.airflow_server import start_airflow, stop_airflow
from tests.fixtures.control_plane import ServeProcess, free_port
from tests.fixtures.prefect_server import start_prefect

RUNS = 20
POLL_INTERVAL = 10.0
ADMIN = "bench-admin-token-" + uuid.uuid4().hex
DAG = "cp_freshness"
DAG_FILE = f'''
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator

with DAG("{DAG}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1):
    BashOperator(task_id="work", bash_command="true")
'''


class Stream:
    """Reads a control plane's change stream in a thread; remembers when each (pipeline, run, task) succeeded."""

    def __init__(self, url: str):
        self.seen: dict[tuple[str, str, str | None], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self._thread.start()

    def _read(self, url: str) -> None:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        while not self._stop.is_set():
            try:
                with httpx.stream("GET", f"{url}/api/v1/stream", headers=headers, timeout=None) as response:
                    kind = None
                    for line in response.iter_lines():
                        if line.startswith("event: "):
                            kind = line[7:]
                        elif line.startswith("data: "):
                            row = json.loads(line[6:])
                            if row["state"] == "success":
                                key = (row["pipeline_id"], row["run_id"], row.get("task_id") if kind != "run" else None)
                                self.seen.setdefault(key, time.time())
                        if self._stop.is_set():
                            return
            except httpx.HTTPError:
                time.sleep(0.2)

    def wait(self, key: tuple[str, str, str | None], timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if key in self.seen:
                return self.seen[key]
            time.sleep(0.02)
        return None

    def stop(self) -> None:
        self._stop.set()


def workspace(folder: Path, airflow: Any, prefect_url: str | None, poll: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dags").mkdir(exist_ok=True)
    prefect = f"  prefect: {{kind: prefect, url: {prefect_url}}}\n" if prefect_url else ""
    path = folder / "meta.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            name: bench
            specs: [dags]
            backends:
              airflow:
                kind: airflow
                url: {airflow.url}
                username: admin
                password: ${{secret:BENCH_AIRFLOW_PASSWORD}}
                openlineage_namespace: {airflow.namespace}
            """
        )
        + prefect
        + textwrap.dedent(
            f"""
            control_plane:
              database: sqlite:///{folder / "cp.db"}
              poll_interval: {poll}s
              admin_token: ${{secret:BENCH_ADMIN}}
              ingest_token: ${{secret:BENCH_INGEST}}
            """
        )
    )
    return path


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def airflow_runs(airflow: Any, push: Stream, poll: Stream) -> tuple[list[float], list[float]]:
    client = airflow.client()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the DAG file is parsed within seconds
        try:
            client.request("GET", f"/dags/{DAG}")
            break
        except Exception:
            time.sleep(1)
    client.request("PATCH", f"/dags/{DAG}", params={"update_mask": "is_paused"}, json={"is_paused": False})
    push_lags, poll_lags = [], []
    for i in range(RUNS):
        run_id = f"fresh_{i:02d}_{uuid.uuid4().hex[:6]}"
        client.request("POST", f"/dags/{DAG}/dagRuns", json={"dag_run_id": run_id, "logical_date": None, "conf": {}})
        ended = None
        while ended is None:
            time.sleep(0.2)
            ti = client.request("GET", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/work")
            if ti["state"] in ("success", "failed"):
                ended = datetime.fromisoformat(ti["end_date"]).timestamp()
        key = (DAG, run_id, "work")
        seen_push = push.wait(key, 30)
        seen_poll = poll.wait(key, POLL_INTERVAL * 3)
        if seen_push is not None:
            push_lags.append(max(0.0, seen_push - ended))
        if seen_poll is not None:
            poll_lags.append(max(0.0, seen_poll - ended))
        print(
            f"  airflow run {i + 1:2d}/{RUNS}: push {seen_push and seen_push - ended:.2f}s, "
            f"poll-only {seen_poll and seen_poll - ended:.2f}s",
            flush=True,
        )
    return push_lags, poll_lags


def prefect_runs(api_url: str, push: Stream) -> list[float]:
    lags = []
    with httpx.Client(base_url=api_url, timeout=30) as client:
        flow = client.post("/flows/", json={"name": "cp_freshness_flow"}).json()
        for i in range(RUNS):
            run = client.post("/flow_runs/", json={"flow_id": flow["id"], "name": f"fresh-{i}"}).json()
            client.post(f"/flow_runs/{run['id']}/set_state", json={"state": {"type": "RUNNING"}, "force": True})
            time.sleep(0.3)
            done = client.post(
                f"/flow_runs/{run['id']}/set_state", json={"state": {"type": "COMPLETED"}, "force": True}
            )
            ended = datetime.fromisoformat(done.json()["state"]["timestamp"]).timestamp()
            seen = push.wait(("cp_freshness_flow", f"prefect__{run['id']}", None), 30)
            if seen is not None:
                lags.append(max(0.0, seen - ended))
            print(f"  prefect run {i + 1:2d}/{RUNS}: websocket {seen and seen - ended:.2f}s", flush=True)
            time.sleep(0.5)
    return lags


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("starting Airflow 3.3 and Prefect (about a minute) ...", flush=True)
        airflow = start_airflow(root / "airflow")
        (airflow.dags_folder / f"{DAG}.py").write_text(DAG_FILE)
        try:
            prefect = start_prefect(root / "prefect")
        except BaseException:
            stop_airflow(airflow)
            raise
        secrets = {
            "META_SECRET_BENCH_AIRFLOW_PASSWORD": airflow.password("admin"),
            "META_SECRET_BENCH_ADMIN": ADMIN,
            "META_SECRET_BENCH_INGEST": airflow.lineage_token,
        }
        push_cp = ServeProcess(
            workspace(root / "push", airflow, prefect.server.api_url, POLL_INTERVAL), secrets, port=airflow.lineage_port
        )
        poll_cp = ServeProcess(workspace(root / "poll", airflow, None, POLL_INTERVAL), secrets, port=free_port())
        streams: list[Stream] = []
        try:
            push_cp.start()
            poll_cp.start()
            push, poll = Stream(push_cp.url), Stream(poll_cp.url)
            streams += [push, poll]
            print(f"measuring {RUNS} Airflow runs (push and poll-only control planes side by side) ...", flush=True)
            af_push, af_poll = airflow_runs(airflow, push, poll)
            print(f"measuring {RUNS} Prefect flow runs over the websocket ...", flush=True)
            pf_push = prefect_runs(prefect.server.api_url, push)
            rss = rss_mb(push_cp.proc.pid) if push_cp.proc else float("nan")
        finally:
            for stream in streams:
                stream.stop()
            push_cp.stop()
            poll_cp.stop()
            prefect.stop()
            stop_airflow(airflow)

    def row(label: str, lags: list[float], target: str) -> str:
        if not lags:
            return f"{label:<34} {'no data':>8}"
        return f"{label:<34} {statistics.median(lags):>7.2f}s {pct(lags, 0.95):>7.2f}s {len(lags):>4}  {target}"

    print()
    print(f"{'path':<34} {'p50':>8} {'p95':>8} {'n':>4}  target")
    print(row("Airflow, OpenLineage push", af_push, "p95 <= 2 s"))
    print(row(f"Airflow, poll only ({POLL_INTERVAL:g} s interval)", af_poll, f"p95 <= {POLL_INTERVAL + 1:g} s"))
    print(row("Prefect, websocket", pf_push, "p95 <= 2 s"))
    print(f"{'peer: dagster-airlift (30 s poll)':<34} {15.0:>7.2f}s {28.5:>7.2f}s    -  computed from its interval")
    print(f"{'peer: Airflow sensor (60 s poke)':<34} {30.0:>7.2f}s {57.0:>7.2f}s    -  computed from its interval")
    if af_push:
        sensor_ratio = 57.0 / max(pct(af_poll, 0.95), 0.01) if af_poll else float("nan")
        print(
            f"ratio: dagster-airlift p95 / meta push p95 = {28.5 / max(pct(af_push, 0.95), 0.01):.0f}x; "
            f"sensor p95 / meta poll-only p95 = {sensor_ratio:.1f}x"
        )
    print(f"RSS of meta serve watching two backends: {rss:.0f} MB (target <= 150 MB)")
    ok = (
        len(af_push) == RUNS
        and pct(af_push, 0.95) <= 2.0
        and len(af_poll) == RUNS
        and pct(af_poll, 0.95) <= POLL_INTERVAL + 1
        and len(pf_push) == RUNS
        and pct(pf_push, 0.95) <= 2.0
        and rss <= 150
    )
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
