"""Control-plane poll cost: a quiet poll cycle with 10,000 historical runs on the backend, per backend.

Gives a real Airflow 3.3 10,000 finished runs of a paused DAG and a real Prefect server 10,000 finished flow runs,
lets the observers catch up once, waits past their 60 s re-read overlap, then counts the HTTP requests and bytes
of quiet cycles (nothing new) of meta's observers, against the peer a naive poller is: a full listing every cycle
(Airflow `GET /dags/~/dagRuns` in pages of 100, Prefect `POST /flow_runs/filter` in pages of 200).
Target: <= 2 requests per quiet cycle per backend.

    .venv/bin/python -m bench.bench_cp_poll_cost [--backends airflow,prefect]   # ~15 min: starts its own servers
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from meta.plugins.observers import BackendConnection, Batch
from meta.service.observers.airflow import AirflowObserver
from meta.service.observers.prefect import PrefectObserver
from tests.fixtures.airflow_server import start_airflow, stop_airflow
from tests.fixtures.prefect_server import start_prefect

HISTORY = 10_000
QUIET_CYCLES = 5
OVERLAP_WAIT = 65.0
SETTLE_TIMEOUT = 600.0
DAG = "cp_history"
DAG_FILE = f'''
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("{DAG}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, is_paused_upon_creation=True):
    EmptyOperator(task_id="nothing")
'''


def fill_airflow(airflow: Any) -> None:
    """One run through the REST API, then HISTORY - 1 copies of it in Airflow's metadata database (SQLite here):
    creating runs through ``POST /dagRuns`` ran at about 0.5 runs/s on this machine, 5 hours for 10,000. The
    copies are finished runs of a paused DAG, so the scheduler leaves them alone; the measurement reads them only
    through the REST API, like any history."""
    client = airflow.client()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            client.request("GET", f"/dags/{DAG}")
            break
        except Exception:
            time.sleep(1)
    client.request("PATCH", f"/dags/{DAG}", params={"update_mask": "is_paused"}, json={"is_paused": True})
    client.request("POST", f"/dags/{DAG}/dagRuns", json={"dag_run_id": "hist_00000", "logical_date": None})
    database = airflow.home / "airflow.db"
    with sqlite3.connect(database, timeout=60) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(dag_run)") if row[1] not in ("id", "run_id")]
        listed = ", ".join(columns)
        picked = ", ".join("'success'" if c == "state" else c for c in columns)
        conn.executemany(
            f"INSERT INTO dag_run (run_id, {listed}) SELECT ?, {picked} FROM dag_run "
            f"WHERE dag_id = ? AND run_id = 'hist_00000'",
            [(f"hist_{i:05d}", DAG) for i in range(1, HISTORY)],
        )
    print(f"  airflow: {HISTORY:,} runs", flush=True)


def fill_prefect(api_url: str) -> None:
    with httpx.Client(base_url=api_url, timeout=30) as client:
        flow = client.post("/flows/", json={"name": "cp_history_flow"}).json()

        def one(i: int) -> None:
            body = {"flow_id": flow["id"], "name": f"hist-{i}", "state": {"type": "COMPLETED"}}
            for _ in range(5):  # Prefect on SQLite resets a connection now and then under this load
                try:
                    client.post("/flow_runs/", json=body).raise_for_status()
                    return
                except httpx.HTTPError:
                    time.sleep(0.5)

        started = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            for n, _ in enumerate(pool.map(one, range(HISTORY)), 1):
                if n % 2000 == 0:
                    print(f"  prefect: {n:,} flow runs ({time.monotonic() - started:.0f} s)", flush=True)


def drain(observer: Any, cursor: str | None) -> tuple[str | None, int, int, int]:
    """Poll until no more pages: (cursor, requests, bytes, events)."""
    requests = size = events = 0
    while True:
        batch: Batch = observer.poll(cursor)
        requests += batch.requests
        size += batch.bytes_received
        events += len(batch.events)
        cursor = batch.cursor or cursor
        if not batch.more:
            return cursor, requests, size, events


def naive_airflow(airflow: Any) -> tuple[int, int]:
    token = httpx.post(f"{airflow.url}/auth/token", json={"username": "admin", "password": airflow.password("admin")})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    requests = size = 0
    cursor = ""
    with httpx.Client(base_url=f"{airflow.url}/api/v2", headers=headers, timeout=60) as client:
        while True:
            response = client.get("/dags/~/dagRuns", params={"limit": 100, "cursor": cursor, "order_by": "id"})
            requests += 1
            size += len(response.content)
            body = response.json()
            cursor = body.get("next_cursor") or ""
            if not cursor or not body["dag_runs"]:
                return requests, size


def naive_prefect(api_url: str) -> tuple[int, int]:
    requests = size = offset = 0
    with httpx.Client(base_url=api_url, timeout=60) as client:
        while True:
            response = client.post("/flow_runs/filter", json={"limit": 200, "offset": offset, "sort": "ID_DESC"})
            requests += 1
            size += len(response.content)
            page = response.json()
            offset += len(page)
            if len(page) < 200:
                return requests, size


def measure(name: str, observer: Any) -> list[tuple[int, int, int]]:
    """First sync, then wait past the overlap and until the backend has settled (Prefect persists events late
    under load: facts still arriving are not a quiet cycle), then QUIET_CYCLES cycles: (requests, bytes, events)."""
    started = time.monotonic()
    cursor, requests, size, events = drain(observer, None)
    print(
        f"  {name}: first sync {events:,} events, {requests} requests, {size / 1e6:.1f} MB, "
        f"{time.monotonic() - started:.1f} s",
        flush=True,
    )
    time.sleep(OVERLAP_WAIT)
    settling = 0
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        cursor, requests, size, events = drain(observer, cursor)
        if events == 0:
            break
        settling += 1
        print(f"  {name}: still settling ({events:,} late events, {requests} requests)", flush=True)
        time.sleep(5)
    print(f"  {name}: settled after {settling} cycle(s) with late events", flush=True)
    cycles = []
    for _ in range(QUIET_CYCLES):
        cursor, requests, size, events = drain(observer, cursor)
        cycles.append((requests, size, events))
        time.sleep(1)
    return cycles


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="airflow,prefect", help="comma-separated: airflow, prefect")
    wanted = parser.parse_args(argv).backends.split(",")
    results: dict[str, list[tuple[int, int, int]]] = {}
    naive: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if "airflow" in wanted:
            print("starting Airflow 3.3 ...", flush=True)
            airflow = start_airflow(root / "airflow")
            try:
                (airflow.dags_folder / f"{DAG}.py").write_text(DAG_FILE)
                fill_airflow(airflow)
                credentials = {"username": "admin", "password": airflow.password("admin")}
                observer = AirflowObserver(
                    BackendConnection("airflow", "airflow", airflow.url, credentials=credentials)
                )
                results["airflow"] = measure("airflow", observer)
                observer.close()
                naive["airflow"] = naive_airflow(airflow)
            finally:
                stop_airflow(airflow)
        if "prefect" in wanted:
            print("starting Prefect ...", flush=True)
            prefect = start_prefect(root / "prefect")
            try:
                fill_prefect(prefect.server.api_url)
                observer = PrefectObserver(BackendConnection("prefect", "prefect", prefect.server.api_url))
                results["prefect"] = measure("prefect", observer)
                observer.close()
                naive["prefect"] = naive_prefect(prefect.server.api_url)
            finally:
                prefect.stop()

    print()
    print(
        f"{'backend':<9} {'meta req/cycle':>14} {'meta bytes':>11} {'naive req':>10} {'naive bytes':>12} "
        f"{'req ratio':>10} {'bytes ratio':>12}  (10,000 runs, quiet)"
    )
    ok = True
    for name, cycles in results.items():
        requests = max(c[0] for c in cycles)
        size = max(c[1] for c in cycles)
        events = sum(c[2] for c in cycles)
        n_req, n_bytes = naive[name]
        ok &= requests <= 2
        print(
            f"{name:<9} {requests:>14} {size:>11,} {n_req:>10} {n_bytes:>12,} {n_req / requests:>9.0f}x "
            f"{n_bytes / max(size, 1):>11.0f}x  ({events} events in {QUIET_CYCLES} quiet cycles)"
        )
    print("target met (<= 2 requests per quiet cycle)" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
