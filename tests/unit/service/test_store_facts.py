"""How the store merges facts about one run: a polled snapshot is taken whole, a pushed fact only adds."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from meta.plugins.observers import EventKind, RunEvent, Source, UnifiedState
from meta.service.store import queries
from meta.service.store.db import open_store

T0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def run(state: UnifiedState, at: datetime, source: Source, **times: datetime | None) -> RunEvent:
    return RunEvent("af", EventKind.RUN, "p", "r1", state, str(state), at, source, **times)  # type: ignore[arg-type]


def test_a_cleared_run_loses_its_old_times_but_a_push_keeps_what_it_does_not_know(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    with store.transaction() as session:
        queries.ingest(session, [run(UnifiedState.FAILED, T0, Source.POLL, started_at=T0, ended_at=T0)])
    # Airflow clears the run: the next poll sees it queued with no start or end.
    with store.transaction() as session:
        queries.ingest(session, [run(UnifiedState.QUEUED, T0 + timedelta(minutes=1), Source.POLL)])
    with store.reading() as session:
        row = queries.get_run(session, "af", "p", "r1", None)
        assert row is not None
        assert (row.state, row.started_at, row.ended_at) == ("queued", None, None)
    # It runs again; the poll sees the start, then a push (no start time in it) says it ended.
    later = T0 + timedelta(minutes=2)
    with store.transaction() as session:
        queries.ingest(session, [run(UnifiedState.RUNNING, later, Source.POLL, started_at=later)])
        queries.ingest(session, [run(UnifiedState.SUCCESS, later + timedelta(seconds=5), Source.PUSH, ended_at=later)])
    with store.reading() as session:
        row = queries.get_run(session, "af", "p", "r1", None)
        assert row is not None
        assert (row.state, row.started_at, row.ended_at) == ("success", later, later)
    store.close()


def test_the_change_counter_starts_on_a_fresh_database_and_only_grows(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    seqs = []
    for i in range(3):
        with store.transaction() as session:
            queries.ingest(session, [run(UnifiedState.RUNNING, T0 + timedelta(seconds=i), Source.POLL)])
        with store.reading() as session:
            row = queries.get_run(session, "af", "p", "r1", None)
            assert row is not None
            seqs.append(row.change_seq)
    assert seqs == sorted(seqs) and len(set(seqs)) == 3 and seqs[0] == 1
    store.close()


class SlowObserver:
    """A backend whose poll takes a while: facts it returns are as of the poll's start, not its end."""

    def poll(self, cursor: str | None) -> Any:
        from meta.plugins.observers import Batch

        time.sleep(0.3)
        return Batch(events=[], cursor=cursor)

    def close(self) -> None:
        pass


def test_a_backend_is_complete_as_of_the_start_of_its_last_good_poll(tmp_path: Path) -> None:
    """The SLA engine calls a deadline missed only once the backend's facts reach past it: a poll that began before
    the deadline and ended after it must not count (the run may have ended in between)."""
    from meta.plugins.observers import BackendConnection
    from meta.service.runtime import BackendWatch, ObserverRuntime
    from meta.service.store.orm import BackendRow

    store = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    watch = BackendWatch(BackendConnection("slow", "local", "file:///x"), SlowObserver())
    runtime = ObserverRuntime(store, [watch], poll_interval=1.0)
    runtime.register_backends()
    before = datetime.now(UTC)
    assert runtime.poll_once() == {"slow": "ok"}
    with store.reading() as session:
        row = session.get(BackendRow, "slow")
        assert row is not None and row.last_success_at is not None
        assert before <= row.last_success_at < before + timedelta(seconds=0.2)
    store.close()
