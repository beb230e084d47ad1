"""Backfill across orchestrators: 30 daily dates of a pipeline on Airflow and its dependent on Prefect, by
``meta backfill --with-downstream`` versus the same dates run by hand through each backend's own API in sequence
(trigger the Airflow run, wait for it, start the Prefect run, wait for it, next date), printing the ratio.

A real Airflow 3.3 and a real Prefect server with a process worker; meta-built pipelines deployed with
``meta deploy --workspace`` (trivial tasks, so the figure is orchestration, not work). meta's Airflow part is
Airflow's own backfill (``POST /api/v2/backfills``, 10 runs at once, its default) and each Prefect date starts as
soon as its Airflow date succeeded; the hand-run peer is what a user does without meta.

    .venv/bin/python -m bench.bench_backfill              # ~15 min: starts and stops its own servers
    .venv/bin/python -m bench.bench_backfill --dates 3    # a quick check
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

from bench.bench_dependency_latency import Backends, ts
from tests.fixtures.airflow_server import start_airflow, stop_airflow, wait_healthy
from tests.fixtures.prefect_server import start_prefect

SUFFIX = uuid.uuid4().hex[:4]
UP, DOWN = f"bfb_up_{SUFFIX}", f"bfb_down_{SUFFIX}"
BY_HAND_UP, BY_HAND_DOWN = f"bfb_hand_up_{SUFFIX}", f"bfb_hand_down_{SUFFIX}"


def workspace(root: Path, airflow: Any, prefect: Any) -> Path:
    (root / "dags").mkdir(parents=True, exist_ok=True)
    daily = "schedule: '0 4 * * *'\nstart_date: '2025-01-01'\nmax_active_runs: 10\n"
    specs = {
        UP: daily + "tasks:\n  work: {shell: 'true'}\n",
        DOWN: f"depends_on: [{UP}]\nmax_active_runs: 10\ntasks:\n  work: {{shell: 'true'}}\n",
        BY_HAND_UP: "tasks:\n  work: {shell: 'true'}\n",  # the peer's: no schedule, triggered by hand
        BY_HAND_DOWN: "tasks:\n  work: {shell: 'true'}\n",
    }
    for name, body in specs.items():
        (root / "dags" / f"{name}.yaml").write_text(f"pipeline: {name}\n{body}")
    text = textwrap.dedent(
        f"""\
        name: bench-backfill
        specs: [dags]
        backends:
          af:
            kind: airflow
            url: {airflow.url}
            username: admin
            password: ${{secret:BENCH_AIRFLOW_PASSWORD}}
            specs_dir: {airflow.specs_dir}
          pf:
            kind: prefect
            url: {prefect.api_url}
            work_pool: {prefect.pool}
            flows_dir: {prefect.deploy_dir}
        placements:
          - {{backend: af, pipelines: [{UP}, {BY_HAND_UP}]}}
          - {{backend: pf, pipelines: [{DOWN}, {BY_HAND_DOWN}]}}
        control_plane:
          database: sqlite:///{root / "cp.db"}
          poll_interval: 2s
        """
    )
    path = root / "meta.yaml"
    path.write_text(text)
    return path


def meta(path: Path, env: dict[str, str], *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "meta"), *args, "--workspace", str(path)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(done.stdout[-3000:] + done.stderr[-3000:])
    return done


def by_hand(b: Backends, dates: list[datetime]) -> None:
    """What a user does without meta: each date through Airflow's API, then Prefect's, one after the other."""
    for i, date in enumerate(dates):
        run_id = f"hand_{uuid.uuid4().hex[:8]}"
        body = {"dag_run_id": run_id, "logical_date": date.isoformat()}
        b.airflow_call("POST", f"/dags/{BY_HAND_UP}/dagRuns", json=body)
        while b.airflow_call("GET", f"/dags/{BY_HAND_UP}/dagRuns/{run_id}")["state"] not in ("success", "failed"):
            time.sleep(0.5)
        state = {"type": "SCHEDULED", "state_details": {"scheduled_time": date.isoformat()}}
        flow_run = b.prefect_call("POST", f"deployments/{b.deployment(BY_HAND_DOWN)}/create_flow_run", {"state": state})
        while b.prefect_call("GET", f"flow_runs/{flow_run['id']}")["state_type"] not in (
            "COMPLETED",
            "FAILED",
            "CRASHED",
        ):
            time.sleep(0.5)
        print(f"  by hand {i + 1:2d}/{len(dates)} done", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dates", type=int, default=30)
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (logs, the store) for a look after")
    args = parser.parse_args(argv)
    start = datetime(2025, 6, 1, 4, tzinfo=UTC)
    dates = [start + timedelta(days=n) for n in range(args.dates)]
    with tempfile.TemporaryDirectory() if not args.keep else nullcontext(args.keep) as tmp:
        root = Path(tmp)
        print("starting Airflow and Prefect ...", flush=True)
        airflow = start_airflow(root / "airflow")
        prefect = start_prefect(root / "prefect")
        try:
            wait_healthy(airflow)
            env = {**prefect.server.env, "META_SECRET_BENCH_AIRFLOW_PASSWORD": airflow.password("admin")}
            path = workspace(root / "ws", airflow, prefect.server)
            meta(path, env, "deploy", timeout=600)
            b = Backends(airflow, prefect.server)
            for dag in (UP, BY_HAND_UP):
                b.unpause_when_parsed(dag)
            began = time.monotonic()
            done = meta(
                path,
                env,
                "backfill",
                UP,
                "--from",
                dates[0].date().isoformat(),
                "--to",
                dates[-1].date().isoformat(),
                "--with-downstream",
            )
            meta_s = time.monotonic() - began
            print(done.stdout.strip().splitlines()[-(2 * args.dates + 2)], flush=True)
            ups = [r for r in b.airflow_call("GET", f"/dags/{UP}/dagRuns", params={"limit": 100})["dag_runs"]]
            downs = b.flow_runs(DOWN)
            assert len(ups) >= args.dates and len(downs) == args.dates, (len(ups), len(downs))
            assert all(ts(r["expected_start_time"]) in {d.timestamp() for d in dates} for r in downs)
            print(f"meta backfill: {meta_s:.1f} s for {args.dates} dates x 2 backends", flush=True)
            began = time.monotonic()
            by_hand(b, dates)
            hand_s = time.monotonic() - began
        finally:
            prefect.stop()
            stop_airflow(airflow)
    print(f"\n{args.dates} dates, upstream on Airflow + downstream on Prefect (seconds)")
    print(f"  meta backfill --with-downstream     {meta_s:8.1f}")
    print(f"  by hand, each backend's API in turn {hand_s:8.1f}")
    print(f"ratio meta / by hand: {meta_s / hand_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
