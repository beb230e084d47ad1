"""``depends_on: {pipeline: P, task: T}`` where T is a mapped task: T counts as succeeded once every instance's
latest try succeeded (a real SQLite store, written through the observers' ingest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from meta.plugins.observers import RunEvent, UnifiedState
from meta.service.dependencies.facts import upstream_runs
from meta.service.store import queries
from meta.service.store.db import open_store
from tests.unit.service.api_support import attempt_event, run_event

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def attempt(run_id: str, task: str, map_index: int, try_number: int, state: UnifiedState) -> RunEvent:
    return attempt_event("local", "up", run_id, task, try_number, state, NOW - timedelta(minutes=5), map_index)


def run(run_id: str) -> RunEvent:
    started = NOW - timedelta(minutes=10)
    return run_event(
        "local", "up", run_id, UnifiedState.SUCCESS, NOW, started=started, ended=NOW - timedelta(minutes=3),
        logical_date=started,
    )  # fmt: skip


def test_a_mapped_upstream_task_succeeds_when_every_instance_did(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    S, F, R = UnifiedState.SUCCESS, UnifiedState.FAILED, UnifiedState.UP_FOR_RETRY
    events = [run("all_ok"), run("one_failed"), run("retried"), run("plain")]
    events += [attempt("all_ok", "load", i, 1, S) for i in range(3)]
    events += [attempt("one_failed", "load", 0, 1, S), attempt("one_failed", "load", 1, 1, F)]
    events += [attempt("retried", "load", 0, 1, R), attempt("retried", "load", 0, 2, S)]
    events += [attempt("plain", "load", -1, 1, S)]
    with store.transaction() as session:
        queries.ingest(session, events)
    with store.reading() as session:
        runs = upstream_runs(session, ["up"], [("up", "load")], NOW - timedelta(hours=1), NOW)["up"]
    states = {r.run_id: r.task_states["load"] for r in runs}
    assert states == {"all_ok": "success", "one_failed": "failed", "retried": "success", "plain": "success"}
    store.close()
