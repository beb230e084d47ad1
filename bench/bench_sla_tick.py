"""SLA engine cost: one tick over 10,000 watched pipelines, on SQLite and on PostgreSQL (target <= 100 ms).

10,000 pipelines placed on one backend, each with ``sla: {max_duration: 1h, finish_by: "09:00"}`` on a daily
schedule and two runs in the store (yesterday's success, today's run still going). After a first tick judges them
all, each steady tick sees what a busy control plane sees every second: 100 runs changed since the last tick (new
states ingested between ticks) and whatever deadlines fall due. That tick is meta's; the peer, in the same run, is
the obvious design without change tracking or a due-queue: every tick re-judges every pipeline (the same engine
with every subject forced due), which is what a timer-driven checker without incremental facts does.

    .venv/bin/python -m bench.bench_sla_tick                     # 10,000 pipelines; PostgreSQL if it answers
    .venv/bin/python -m bench.bench_sla_tick --pipelines 200 --ticks 5   # a quick check
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from bench.bench_cp_freshness import pct
from bench.bench_cp_ingest import drop_database, postgres_database
from meta.plugins.observers import EventKind, RunEvent, Source, UnifiedState
from meta.service.sla import SlaEngine
from meta.service.store import queries
from meta.service.store.db import Store, open_store
from meta.service.store.orm import BackendRow
from meta.spec.model import Pipeline
from meta.spec.workspace import Workspace

NOW = datetime(2026, 12, 2, 8, 30, tzinfo=UTC)  # today's runs are going; finish_by 09:00 is ahead
CHANGED_PER_TICK = 100
TARGET_MS = 100.0
WORKSPACE = Workspace.model_validate(
    {"backends": {"loc": {"kind": "local"}}, "placements": [{"backend": "loc", "pipelines": ["*"]}]}
)


def pipelines(count: int) -> list[Pipeline]:
    template = {
        "schedule": {"kind": "cron", "cron": "0 8 * * *"},
        "sla": {"max_duration": "1h", "finish_by": "09:00"},
        "tasks": [{"id": "work", "action": {"kind": "noop"}}],
    }
    return [Pipeline.model_validate({"id": f"p_{i:05d}", **template}) for i in range(count)]


def run(
    pipeline: str,
    run_id: str,
    state: UnifiedState,
    logical: datetime,
    start: datetime,
    end: datetime | None,
    as_of: datetime,
) -> RunEvent:
    return RunEvent(
        "loc",
        EventKind.RUN,
        pipeline,
        run_id,
        state,
        str(state),
        as_of,
        Source.POLL,
        logical_date=logical,
        queued_at=start,
        started_at=start,
        ended_at=end,
    )


def seed(store: Store, count: int) -> None:
    today, yesterday = NOW.replace(hour=8, minute=0), NOW.replace(hour=8, minute=0) - timedelta(days=1)
    events = []
    for i in range(count):
        p = f"p_{i:05d}"
        events.append(run(p, "y", UnifiedState.SUCCESS, yesterday, yesterday, yesterday + timedelta(minutes=20), NOW))
        events.append(run(p, "t", UnifiedState.RUNNING, today, today + timedelta(minutes=1), None, NOW))
    with store.transaction() as session:
        queries.upsert_backend(session, "loc", "local", "file:///bench")
    for start in range(0, len(events), 2000):
        with store.transaction() as session:
            queries.ingest(session, events[start : start + 2000])
    covered(store, NOW)


def covered(store: Store, at: datetime) -> None:
    with store.transaction() as session:
        session.execute(update(BackendRow).values(last_success_at=at, health="ok"))


def change_some(store: Store, tick: int, count: int, at: datetime) -> None:
    """``CHANGED_PER_TICK`` runs move on (a task of today's run reports, say): new facts since the last tick."""
    today = NOW.replace(hour=8, minute=0)
    events = [
        run(
            f"p_{(tick * CHANGED_PER_TICK + j) % count:05d}",
            "t",
            UnifiedState.RUNNING,
            today,
            today + timedelta(minutes=1),
            None,
            at,
        )
        for j in range(CHANGED_PER_TICK)
    ]
    with store.transaction() as session:
        queries.ingest(session, events)
    covered(store, at)


def measure(label: str, store: Store, specs: list[Pipeline], ticks: int) -> tuple[float, float, float]:
    engine = SlaEngine(store, WORKSPACE, specs, sender=lambda channels, event: [], refresh_every=1e9)
    began = time.perf_counter()
    first = engine.tick(NOW)
    first_s = time.perf_counter() - began
    steady = []
    for i in range(ticks):
        at = NOW + timedelta(seconds=i + 1)
        change_some(store, i, len(specs), at)
        report = engine.tick(at)
        steady.append(report.seconds * 1000)
    peer = []
    for i in range(max(2, ticks // 10)):
        at = NOW + timedelta(seconds=ticks + i + 1)
        for key in engine.subjects:
            engine._schedule(key, at)  # the peer: every subject due every tick
        report = engine.tick(at)
        peer.append(report.seconds * 1000)
    p50, p95 = statistics.median(steady), pct(steady, 0.95)
    peer_p50 = statistics.median(peer)
    print(
        f"{label:<11} first tick (judges all {first.evaluated:,}): {first_s:6.2f} s | steady tick p50 {p50:6.1f} ms"
        f" p95 {p95:6.1f} ms | peer (re-judge all) p50 {peer_p50:8.1f} ms | ratio peer / meta {peer_p50 / p50:6.1f}x",
        flush=True,
    )
    return p50, p95, peer_p50


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=30)
    args = parser.parse_args(argv)
    specs = pipelines(args.pipelines)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'cp.db'}")
        print(f"seeding {args.pipelines:,} pipelines x 2 runs on SQLite ...", flush=True)
        seed(store, args.pipelines)
        results["sqlite"] = measure("sqlite", store, specs, args.ticks)
        store.close()
    database = postgres_database()
    if database is None:
        print("postgresql: not reachable at 127.0.0.1:5432, skipped")
    else:
        name, url = database
        try:
            store = open_store(url)
            print(f"seeding {args.pipelines:,} pipelines x 2 runs on PostgreSQL ...", flush=True)
            seed(store, args.pipelines)
            results["postgresql"] = measure("postgresql", store, specs, args.ticks)
            store.close()
        finally:
            drop_database(name)
    ok = all(p95 <= TARGET_MS for _, p95, _ in results.values())
    print(
        f"target: steady tick p95 <= {TARGET_MS:g} ms over {args.pipelines:,} pipelines: " + ("met" if ok else "MISSED")
    )
    return 0 if ok or args.pipelines < 10_000 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
