"""Dual-run overhead: the control plane's added latency per shadow run (``meta migrate shadow``; target <= 1 s).

The real ``meta serve`` watches two local backends (the local runner, no server), polling every 0.2 s. Pipeline
``orders`` is live on ``old`` and shadowed on ``new``; ``orders_after`` (``depends_on: [orders]``) is placed on
``new`` as the peer: the same control plane's reaction to the same runs through the dependency engine, the path
every cross-orchestrator dependency takes. For each of N live runs started on ``old``:

- **shadow**: the shadow run's start request on ``new`` (``migration_runs.triggered_at``) minus the live run's start
  as ``old`` recorded it: how long after a live run begins its shadow is on its way;
- **peer**: the dependent's start request (``dependency_waits.triggered_at``) minus the live run's end.

Both include the poll that sees the fact; neither includes the target's own start-up. Prints p50/p95 of each and
the ratio shadow / peer.

    .venv/bin/python -m bench.bench_migrate             # 20 live runs
    .venv/bin/python -m bench.bench_migrate --runs 3    # a quick check
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bench.bench_cp_freshness import pct
from meta.service.store.db import open_store
from meta.service.store.orm import DependencyWaitRow, MigrationRunRow, RunRow
from tests.fixtures.control_plane import ServeProcess

TARGET_S = 1.0
ORDERS = "pipeline: orders\ntasks:\n  work: {shell: 'sleep 0.3'}\n"
AFTER = "pipeline: orders_after\ndepends_on: [orders]\ntasks:\n  work: {noop: true}\n"


def workspace(root: Path) -> Path:
    (root / "dags").mkdir()
    (root / "dags" / "orders.yaml").write_text(ORDERS)
    (root / "dags" / "orders_after.yaml").write_text(AFTER)
    path = root / "meta.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: bench_migrate
            specs: [dags]
            backends:
              old: {{kind: local, state_dir: {root / "old"}}}
              new: {{kind: local, state_dir: {root / "new"}}}
            placements:
              - {{backend: old, pipelines: [orders]}}
              - {{backend: new, pipelines: [orders_after]}}
            migrations:
              orders: {{to: new}}
            control_plane:
              database: sqlite:///{root / "cp.db"}
              poll_interval: 0.2s
            """
        )
    )
    return path


def meta(ws: Path, env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "meta", *args], env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"meta {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def measure(runs: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory(prefix="bench_migrate_") as tmp:
        root = Path(tmp)
        ws = workspace(root)
        env = {"META_HOME": str(root / "old")}
        meta(ws, env, "migrate", "shadow", "orders", "--workspace", str(ws))
        serve = ServeProcess(ws, env).start()
        try:
            base = datetime(2026, 1, 1, tzinfo=UTC)
            for i in range(runs):
                logical = (base + timedelta(days=i)).isoformat()
                meta(
                    ws,
                    env,
                    "run",
                    str(root / "dags" / "orders.yaml"),
                    "--run-id",
                    f"live_{i}",
                    "--logical-date",
                    logical,
                )
                print(f"  live run {i + 1}/{runs} done", file=sys.stderr, flush=True)
            store = open_store(f"sqlite:///{root / 'cp.db'}")
            deadline = time.monotonic() + 60
            while True:
                with store.reading() as session:
                    shadows = {r.logical_date: r for r in session.scalars(select(MigrationRunRow)) if r.triggered_at}
                    downs = {
                        r.logical_date: r
                        for r in session.scalars(
                            select(DependencyWaitRow).where(DependencyWaitRow.pipeline_id == "orders_after")
                        )
                        if r.triggered_at
                    }
                    lives = {
                        r.logical_date: r
                        for r in session.scalars(
                            select(RunRow).where(RunRow.backend == "old", RunRow.pipeline_id == "orders")
                        )
                    }
                    session.expunge_all()
                if (len(shadows) >= runs and len(downs) >= runs) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            store.close()
        finally:
            serve.stop()
    shadow_s = [
        (row.triggered_at - lives[d].started_at).total_seconds()  # type: ignore[operator]
        for d, row in shadows.items()
        if d in lives and lives[d].started_at
    ]
    peer_s = [
        (row.triggered_at - lives[d].ended_at).total_seconds()  # type: ignore[operator]
        for d, row in downs.items()
        if d in lives and lives[d].ended_at
    ]
    if len(shadow_s) < runs or len(peer_s) < runs:
        raise SystemExit(f"only {len(shadow_s)} shadow and {len(peer_s)} dependent start(s) of {runs} were seen")
    return shadow_s, peer_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    shadow_s, peer_s = measure(args.runs)
    p50, p95 = pct(shadow_s, 0.5), pct(shadow_s, 0.95)
    q50, q95 = pct(peer_s, 0.5), pct(peer_s, 0.95)
    print(f"runs: {args.runs}, poll interval 0.2 s, local backends")
    print(f"shadow start after the live start: p50 {p50:.3f} s, p95 {p95:.3f} s (target <= {TARGET_S:.1f} s)")
    print(f"peer (dependent start after the upstream end): p50 {q50:.3f} s, p95 {q95:.3f} s")
    print(f"ratio shadow / peer (p95): {p95 / q95:.2f}x")
    print(f"target met: {'yes' if p95 <= TARGET_S else 'NO'}")


if __name__ == "__main__":
    main()
