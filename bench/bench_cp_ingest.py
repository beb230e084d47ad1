"""Control-plane ingest: neutral events stored per second on SQLite and on PostgreSQL (target >= 5,000/s each).

meta's path (``queries.ingest``: batched ``INSERT .. ON CONFLICT DO UPDATE WHERE as_of >=`` with the cursor in the
same transaction) is compared in the same run with the obvious ORM peer: per event, SELECT the row and update or
insert it (``session.get`` + attribute writes), committed per batch. Both write the same 12,000 events (2,000 runs,
4 task attempts each, then every run again as finished) in batches of 500, the size an Airflow poll page gives.

    .venv/bin/python -m bench.bench_cp_ingest            # PostgreSQL at 127.0.0.1:5432 (database `test`) if present
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from meta.plugins.observers import EventKind, RunEvent, Source, UnifiedState
from meta.service.store import queries
from meta.service.store.db import open_store
from meta.service.store.orm import AttemptRow, RunRow

RUNS, TASKS, BATCH = 2_000, 4, 500
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def events() -> list[RunEvent]:
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    out: list[RunEvent] = []
    for r in range(RUNS):
        common = {"backend": "airflow-a", "pipeline_id": f"pipeline_{r % 50}", "run_id": f"scheduled__{r}"}
        out.append(
            RunEvent(
                kind=EventKind.RUN,
                state=UnifiedState.RUNNING,
                raw_state="running",
                as_of=t0,
                source=Source.POLL,
                started_at=t0,
                **common,
            )
        )
        for t in range(TASKS):
            out.append(
                RunEvent(
                    kind=EventKind.TASK_ATTEMPT,
                    task_id=f"task_{t}",
                    try_number=1,
                    state=UnifiedState.SUCCESS,
                    raw_state="success",
                    as_of=t0,
                    source=Source.POLL,
                    started_at=t0,
                    ended_at=t0 + timedelta(seconds=3),
                    **common,
                )
            )
    t1 = t0 + timedelta(minutes=1)
    for r in range(RUNS):
        common = {"backend": "airflow-a", "pipeline_id": f"pipeline_{r % 50}", "run_id": f"scheduled__{r}"}
        out.append(
            RunEvent(
                kind=EventKind.RUN,
                state=UnifiedState.SUCCESS,
                raw_state="success",
                as_of=t1,
                source=Source.POLL,
                started_at=t0,
                ended_at=t1,
                **common,
            )
        )
    return out


def meta_ingest(url: str, batch: list[list[RunEvent]]) -> float:
    store = open_store(url)
    started = time.perf_counter()
    for i, chunk in enumerate(batch):
        with store.transaction() as session:
            queries.ingest(session, chunk, cursor=("airflow-a", "poll", str(i)))
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def orm_peer(url: str, batch: list[list[RunEvent]]) -> float:
    """The obvious ORM upsert: look each row up by its key, then update or insert it."""
    store = open_store(url)
    seq = 0
    started = time.perf_counter()
    for chunk in batch:
        with store.transaction() as session:
            for e in chunk:
                seq += 1
                if e.kind is EventKind.RUN:
                    row = (
                        session.query(RunRow)
                        .filter_by(backend=e.backend, pipeline_id=e.pipeline_id, run_id=e.run_id)
                        .one_or_none()
                    )
                    if row is None:
                        row = RunRow(
                            backend=e.backend, pipeline_id=e.pipeline_id, run_id=e.run_id, extra={}, external=False
                        )
                        session.add(row)
                    elif row.as_of > e.as_of:
                        continue
                    row.state, row.raw_state, row.as_of, row.source = str(e.state), e.raw_state, e.as_of, "poll"
                    row.started_at, row.ended_at, row.change_seq = e.started_at, e.ended_at, seq
                else:
                    arow = (
                        session.query(AttemptRow)
                        .filter_by(
                            backend=e.backend,
                            pipeline_id=e.pipeline_id,
                            run_id=e.run_id,
                            task_id=e.task_id,
                            map_index=e.map_index,
                            try_number=e.try_number,
                        )
                        .one_or_none()
                    )
                    if arow is None:
                        arow = AttemptRow(
                            backend=e.backend,
                            pipeline_id=e.pipeline_id,
                            run_id=e.run_id,
                            task_id=e.task_id,
                            map_index=e.map_index,
                            try_number=e.try_number,
                            extra={},
                        )
                        session.add(arow)
                    elif arow.as_of > e.as_of:
                        continue
                    arow.state, arow.raw_state, arow.as_of, arow.source = str(e.state), e.raw_state, e.as_of, "poll"
                    arow.started_at, arow.ended_at, arow.change_seq = e.started_at, e.ended_at, seq
                session.flush()
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def postgres_database() -> tuple[str, str] | None:
    """A fresh database on the local PostgreSQL, or None when there is none."""
    name = f"meta_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:  # no PostgreSQL here: report and skip that half
        print(f"PostgreSQL not available ({type(exc).__name__}); SQLite only")
        return None
    return name, POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def drop_database(name: str) -> None:
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> int:
    evs = events()
    batches = [evs[i : i + BATCH] for i in range(0, len(evs), BATCH)]
    print(f"{len(evs):,} neutral events ({RUNS:,} runs x {TASKS} attempts, then each run finished), batches of {BATCH}")
    print(f"{'database':<12} {'meta ev/s':>10} {'ORM peer ev/s':>14} {'ratio':>7}  target >= 5,000/s")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        targets: list[tuple[str, str, str | None]] = [
            ("sqlite", f"sqlite:///{Path(tmp) / 'meta.db'}", f"sqlite:///{Path(tmp) / 'peer.db'}")
        ]
        made: list[str] = []
        for _ in range(2):
            created = postgres_database()
            if created:
                made.append(created[0])
        if len(made) == 2:
            base = POSTGRES_ADMIN.rsplit("/", 1)[0]
            targets.append(("postgresql", f"{base}/{made[0]}", f"{base}/{made[1]}"))
        try:
            for label, url, peer_url in targets:
                ours = len(evs) / meta_ingest(url, batches)
                theirs = len(evs) / orm_peer(peer_url, batches) if peer_url else float("nan")
                ok &= ours >= 5_000
                print(f"{label:<12} {ours:>10,.0f} {theirs:>14,.0f} {ours / theirs:>6.1f}x")
        finally:
            for name in made:
                drop_database(name)
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
