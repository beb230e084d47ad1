"""The dataset forwarder over a real SQLite store with real store rows (attempts ingested as the observers do):
which updates become forwards and to which backends, exactly once across re-reads, replicas, failures and restarts,
and a quiet tick's cost.

The targets here are a recording sender (what the target does with an event is irrelevant to these rules); the real
Airflow and Prefect senders are proven against the real servers in
tests/integration/service/test_dataset_forwarding_real.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, update

from meta.plugins.observers import EventKind, RunEvent, Source, UnifiedState
from meta.service.datasets import DatasetForwarder, Forward, ForwardError
from meta.service.datasets.forwarder import CURSOR_BACKEND, CURSOR_STREAM, tracking_subject
from meta.service.store import queries
from meta.service.store.db import Store, open_store
from meta.service.store.orm import DatasetForwardRow, DependencyTrackingRow
from meta.spec.model import Pipeline
from meta.spec.workspace import Workspace

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
SALES = "s3://lake/sales"
ADS = "s3://lake/ads"


def shell(task_id: str, **more: Any) -> dict[str, Any]:
    return {"id": task_id, "action": {"kind": "shell", "command": "true"}, **more}


PIPELINES = [
    # writes SALES (runs on Prefect, and on the local runner), ADS
    Pipeline.model_validate(
        {"id": "produce", "tasks": [shell("extract"), shell("load", outputs=[SALES, ADS], upstream=["extract"])]}
    ),
    # waits for SALES on Airflow and on the local runner
    Pipeline.model_validate(
        {"id": "report", "schedule": {"kind": "datasets", "datasets": [SALES]}, "tasks": [shell("build")]}
    ),
    # waits for ADS on Prefect itself (the producer's own backend: Prefect handles that natively)
    Pipeline.model_validate(
        {"id": "ads_mart", "schedule": {"kind": "datasets", "datasets": [ADS]}, "tasks": [shell("build")]}
    ),
]
WORKSPACE = Workspace.model_validate(
    {
        "backends": {
            "af": {"kind": "airflow", "url": "http://127.0.0.1:1"},
            "pf": {"kind": "prefect", "url": "http://127.0.0.1:2/api"},
            "loc": {"kind": "local"},
        },
        "placements": [
            {"backend": "pf", "pipelines": ["produce", "ads_mart"]},
            {"backend": "loc", "pipelines": ["produce", "report"]},
            {"backend": "af", "pipelines": ["report"]},
        ],
    }
)


class Target:
    """A recording sender: ``events`` what arrived; ``fail`` makes the next sends raise; ``lose_answers`` makes a
    send arrive but raise anyway (the answer was lost)."""

    def __init__(self) -> None:
        self.events: list[Forward] = []
        self.fail: Exception | None = None
        self.lose_answers = False
        self.finds = 0

    def send(self, forward: Forward) -> str:
        if self.fail is not None:
            raise self.fail
        self.events.append(forward)
        if self.lose_answers:
            raise TimeoutError("the answer was lost")
        return f"ev{len(self.events)}"

    def find(self, forward: Forward) -> str | None:
        self.finds += 1
        hits = [i for i, e in enumerate(self.events, 1) if e.key == forward.key]
        return f"ev{hits[0]}" if hits else None

    def close(self) -> None:
        pass

    def keys(self) -> list[str]:
        return [e.key for e in self.events]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    yield s
    s.close()


@pytest.fixture
def target() -> Target:
    return Target()


def forwarder(store: Store, target: Target, clock: list[datetime] | None = None, **options: Any) -> DatasetForwarder:
    now = clock or [T0]
    options.setdefault("stale_after", 60.0)
    return DatasetForwarder(store, WORKSPACE, PIPELINES, senders={"af": target}, clock=lambda: now[0], **options)


def succeed(
    store: Store,
    backend: str,
    run: str,
    ended: datetime,
    *,
    task: str = "load",
    pipeline: str = "produce",
    try_number: int = 1,
    state: UnifiedState = UnifiedState.SUCCESS,
) -> None:
    """What an observer writes for a task attempt that ended at ``ended``."""
    attempt = RunEvent(
        backend,
        EventKind.TASK_ATTEMPT,
        pipeline,
        run,
        state,
        str(state),
        ended,
        Source.POLL,
        task_id=task,
        try_number=try_number,
        started_at=ended - timedelta(seconds=5),
        ended_at=ended,
    )
    with store.transaction() as session:
        queries.ingest(session, [attempt])


def rows(store: Store) -> list[DatasetForwardRow]:
    with store.reading() as session:
        found = list(session.scalars(select(DatasetForwardRow).order_by(DatasetForwardRow.created_at)))
        session.expunge_all()
        return found


def test_an_update_after_watching_began_is_forwarded_once_to_each_other_backend_waiting_for_it(
    store: Store, target: Target
) -> None:
    succeed(store, "pf", "old", T0 - timedelta(hours=1))  # history from before: never replayed
    fwd = forwarder(store, target)
    assert fwd.targets == {SALES: ("af",)}, "local has no dataset scheduler; ADS waits only on its own backend"
    assert fwd.tick(T0) == 0
    succeed(store, "pf", "r1", T0 + timedelta(seconds=10))
    succeed(store, "pf", "r1", T0 + timedelta(seconds=10), task="extract")  # writes nothing
    assert fwd.tick(T0 + timedelta(seconds=11)) == 1
    [sent] = target.events
    assert (sent.dataset, sent.source_backend, sent.source_pipeline, sent.source_run, sent.source_task) == (
        SALES,
        "pf",
        "produce",
        "r1",
        "load",
    )
    [row] = rows(store)
    assert (row.key, row.status, row.attempts, row.remote_id, row.target_backend) == (sent.key, "sent", 1, "ev1", "af")
    assert row.sent_at == T0 and row.error is None
    # the observers re-reading the same attempt (its row rewritten, a new change_seq) forward nothing more
    succeed(store, "pf", "r1", T0 + timedelta(seconds=10))
    assert fwd.tick(T0 + timedelta(seconds=20)) == 0
    assert len(target.events) == 1 and len(rows(store)) == 1


def test_a_new_try_is_a_new_update_but_failures_and_the_consumers_own_backend_are_not(
    store: Store, target: Target
) -> None:
    fwd = forwarder(store, target)
    fwd.tick(T0)
    succeed(store, "pf", "r1", T0 + timedelta(seconds=1), state=UnifiedState.FAILED)
    succeed(store, "af", "r2", T0 + timedelta(seconds=1))  # on Airflow, Airflow's own asset event covers it
    assert fwd.tick(T0 + timedelta(seconds=2)) == 0
    succeed(store, "pf", "r1", T0 + timedelta(seconds=3), try_number=2)
    succeed(store, "loc", "r3", T0 + timedelta(seconds=3))  # the local runner's update goes to Airflow too
    assert fwd.tick(T0 + timedelta(seconds=4)) == 2
    assert sorted((e.source_backend, e.source_run) for e in target.events) == [("loc", "r3"), ("pf", "r1")]


def test_a_quiet_tick_is_one_read_of_the_change_counter(store: Store, target: Target) -> None:
    fwd = forwarder(store, target)
    fwd.tick(T0)
    succeed(store, "pf", "r1", T0 + timedelta(seconds=1))
    fwd.tick(T0 + timedelta(seconds=2))
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        for i in range(5):
            fwd.tick(T0 + timedelta(seconds=3 + i))
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert len(statements) == 5, statements
    assert all("counters" in s for s in statements)


def test_two_forwarders_on_one_database_send_each_forward_once(store: Store, target: Target) -> None:
    a, b = forwarder(store, target), forwarder(store, target)
    a.tick(T0), b.tick(T0)
    for i in range(3):
        succeed(store, "pf", f"r{i}", T0 + timedelta(seconds=1))
    # b found the rows too (its own scan) but a claims first; b's claims then fail and it drops them
    b._scan(T0 + timedelta(seconds=2))
    assert len(b.pending) == 3
    assert a.tick(T0 + timedelta(seconds=2)) == 3
    assert b.tick(T0 + timedelta(seconds=2)) == 0
    assert b.pending == {}
    assert sorted(target.keys()) == sorted(r.key for r in rows(store)) and len(target.events) == 3


def test_a_refused_forward_is_failed_with_its_error_retried_with_backoff_and_looked_up_before_resending(
    store: Store, target: Target
) -> None:
    clock = [T0]
    fwd = forwarder(store, target, clock, backoff=10.0)
    fwd.tick(T0)
    succeed(store, "pf", "r1", T0 + timedelta(seconds=1))
    target.fail = ForwardError("Airflow backend 'af' has no active asset 's3://lake/sales'")
    assert fwd.tick(T0 + timedelta(seconds=2)) == 0
    [row] = rows(store)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.error == "ForwardError: Airflow backend 'af' has no active asset 's3://lake/sales'"
    target.fail = None
    assert fwd.tick(T0 + timedelta(seconds=5)) == 0, "not before the backoff (10 s)"
    # the answer to the retry is lost although the event arrived: failed again; the next try finds it there
    target.lose_answers = True
    assert fwd.tick(T0 + timedelta(seconds=12)) == 0
    assert len(target.events) == 1 and rows(store)[0].status == "failed"
    target.lose_answers = False
    assert fwd.tick(T0 + timedelta(seconds=40)) == 1
    [row] = rows(store)
    assert (row.status, row.attempts, row.remote_id, row.error) == ("sent", 3, "ev1", None)
    assert len(target.events) == 1, "found on the target, not sent again"


class Killed(BaseException):
    """Stands for SIGKILL in-process: nothing after it runs (the real SIGKILL is in the integration test)."""


@pytest.mark.parametrize("stage", ["claimed", "sent"])
def test_a_forward_left_sending_by_a_dead_forwarder_is_completed_once_after_a_restart(
    store: Store, target: Target, stage: str
) -> None:
    def die(at: str, forward: Forward) -> None:
        if at == stage:
            raise Killed

    first = forwarder(store, target, checkpoint=die)
    first.tick(T0)
    succeed(store, "pf", "r1", T0 + timedelta(seconds=1))
    with pytest.raises(Killed):
        first.tick(T0 + timedelta(seconds=2))
    [row] = rows(store)
    assert (row.status, row.attempts) == ("sending", 1)
    assert len(target.events) == (1 if stage == "sent" else 0)
    # while down, another update: forwarded after the restart (the watermark and ``since`` survive)
    succeed(store, "pf", "r2", T0 + timedelta(seconds=30))
    second = forwarder(store, target)
    assert second.tick(T0 + timedelta(seconds=40)) == 1, "r2 at once; r1 only once it is stale (60 s)"
    assert second.tick(T0 + timedelta(seconds=90)) == 0
    assert second.tick(T0 + timedelta(seconds=101)) == 1
    assert sorted(e.source_run for e in target.events) == ["r1", "r2"]
    assert {(r.source_run, r.status) for r in rows(store)} == {("r1", "sent"), ("r2", "sent")}
    assert target.finds == 1, "only the forward whose outcome was unknown was looked up"


def test_a_first_start_begins_at_the_current_counter_and_keeps_it(store: Store, target: Target) -> None:
    for i in range(3):
        succeed(store, "pf", f"h{i}", T0 - timedelta(days=1))
    fwd = forwarder(store, target)
    fwd.tick(T0)
    with store.reading() as session:
        saved = queries.get_cursor(session, CURSOR_BACKEND, CURSOR_STREAM)
        since = session.scalars(select(DependencyTrackingRow)).all()
        assert saved == str(queries.current_change_seq(session))
    assert [(t.backend, t.pipeline_id, t.since) for t in since] == [("af", f"datasets:{SALES}", T0)]
    # an observer's first poll importing a month of history after the start forwards none of it
    succeed(store, "pf", "month_old", T0 - timedelta(days=30))
    assert fwd.tick(T0 + timedelta(seconds=1)) == 0 and target.events == []
    # a restart keeps when watching began
    again = forwarder(store, target)
    again.tick(T0 + timedelta(hours=1))
    with store.reading() as session:
        assert session.scalars(select(DependencyTrackingRow.since)).all() == [T0]


def test_a_failed_forward_is_given_up_after_give_up_after(store: Store, target: Target) -> None:
    fwd = forwarder(store, target, give_up_after=timedelta(minutes=5), backoff=1.0)
    fwd.tick(T0)
    succeed(store, "pf", "r1", T0 + timedelta(seconds=1))
    target.fail = ForwardError("refused")
    fwd.tick(T0 + timedelta(seconds=2))
    target.fail = None
    assert fwd.tick(T0 + timedelta(minutes=10)) == 0
    assert target.events == [] and fwd.pending == {}
    assert rows(store)[0].status == "failed"


def test_long_uris_are_tracked_under_a_hash_and_rows_keep_the_full_uri(store: Store) -> None:
    uri = "s3://lake/" + "x" * 300
    assert tracking_subject(SALES) == f"datasets:{SALES}"
    assert len(tracking_subject(uri)) <= 250 and tracking_subject(uri).startswith("datasets:sha256:")
    pipelines = [
        Pipeline.model_validate({"id": "p", "tasks": [shell("t", outputs=[uri])]}),
        Pipeline.model_validate(
            {"id": "c", "schedule": {"kind": "datasets", "datasets": [uri]}, "tasks": [shell("t")]}
        ),
    ]
    workspace = Workspace.model_validate(
        {
            "backends": {"af": {"kind": "airflow", "url": "http://127.0.0.1:1"}, "loc": {"kind": "local"}},
            "placements": [{"backend": "loc", "pipelines": ["p"]}, {"backend": "af", "pipelines": ["c"]}],
        }
    )
    target = Target()
    fwd = DatasetForwarder(store, workspace, pipelines, senders={"af": target})
    fwd.tick(T0)
    succeed(store, "loc", "r1", T0 + timedelta(seconds=1), pipeline="p", task="t")
    assert fwd.tick(T0 + timedelta(seconds=2)) == 1
    assert [r.dataset for r in rows(store)] == [uri] and target.events[0].dataset == uri


def test_a_workspace_with_no_forwarding_target_never_touches_the_store(store: Store, tmp_path: Path) -> None:
    workspace = Workspace.model_validate(
        {"backends": {"loc": {"kind": "local"}}, "placements": [{"backend": "loc", "pipelines": ["*"]}]}
    )
    fwd = DatasetForwarder(store, workspace, PIPELINES)
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    fwd.tick(T0)
    assert statements == [] and fwd.targets == {}


def test_a_row_already_sent_by_another_replica_is_dropped_on_reload(store: Store, target: Target) -> None:
    fwd = forwarder(store, target, reload_every=0.0)
    fwd.tick(T0)
    succeed(store, "pf", "r1", T0 + timedelta(seconds=1))
    fwd._scan(T0 + timedelta(seconds=1))
    with store.transaction() as session:
        session.execute(update(DatasetForwardRow).values(status="sent", attempts=1))
    assert fwd.tick(T0 + timedelta(seconds=2)) == 0
    assert target.events == [] and fwd.pending == {}
