"""The dependency engine over a real SQLite store on a controlled clock: a downstream starts once per upstream
logical date, with that date and the upstream run's params, recorded with the link; racing replicas, a crash after
the claim and a backend that was down still start it once; a failed upstream times out and alerts once; history from
before the engine began starts nothing; the leader lease is held by one replica at a time.

The backend is reached through ``Triggerable`` (the seam every observer implements): here a recorder that, like
every real backend, answers a repeated key with the run it already started. The real backends' idempotency is
proven in tests/integration/service/test_dependencies_real.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from meta.builtin.operators.alerts import AlertEvent, AlertOutcome
from meta.plugins.observers import BackendUnreachable, EventKind, RunEvent, Source, TriggerResult, UnifiedState
from meta.service.dependencies import DependencyEngine
from meta.service.lease import Lease
from meta.service.store import queries
from meta.service.store.db import Store, open_store
from meta.service.store.orm import BackfillDateRow, DependencyWaitRow
from meta.spec.model import Pipeline
from meta.spec.workspace import Workspace

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
DAY = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
WORKSPACE = Workspace.model_validate(
    {
        "backends": {"af": {"kind": "airflow", "url": "http://127.0.0.1:1"}, "pf": {"kind": "local"}},
        "placements": [{"backend": "af", "pipelines": ["up"]}, {"backend": "pf", "pipelines": ["down"]}],
    }
)
DOWN = Pipeline.model_validate(
    {
        "id": "down",
        "depends_on": [{"pipeline": "up", "timeout": "1h"}],
        "params": {"country": {"type": "string", "default": "CH"}},
        "alerts": {"on_failure": ["webhook:oncall"]},
        "tasks": [{"id": "t", "action": {"kind": "noop"}}],
    }
)


class Backend:
    """Starts a run per new key; a known key answers the run it started (what Airflow's 409 and Prefect's
    idempotency key do). ``down`` makes the next calls fail as an unreachable backend would."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[str, Mapping[str, Any], datetime | None]] = {}
        self.calls = 0
        self.down = 0

    def trigger(
        self, pipeline_id: str, key: str, params: Mapping[str, Any], logical_date: datetime | None
    ) -> TriggerResult:
        self.calls += 1
        if self.down:
            self.down -= 1
            raise BackendUnreachable("connection refused")
        created = key not in self.runs
        self.runs.setdefault(key, (pipeline_id, dict(params), logical_date))
        return TriggerResult(run_id=f"run-{key}", created=created, url=None)


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, AlertEvent]] = []

    def __call__(self, channels: list[str], event: AlertEvent) -> list[AlertOutcome]:
        self.sent.extend((c, event) for c in channels)
        return [AlertOutcome(c, "sent") for c in channels]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    yield s
    s.close()


def observe(store: Store, run_id: str, state: UnifiedState, at: datetime, logical: datetime = DAY, **kw: Any) -> None:
    event = RunEvent("af", EventKind.RUN, "up", run_id, state, str(state), at, Source.POLL, logical_date=logical, **kw)
    with store.transaction() as session:
        queries.ingest(session, [event])


def engine(store: Store, backend: Backend, outbox: Outbox | None = None, **kw: Any) -> DependencyEngine:
    params = {("af", "up", "r1"): {"country": "DE", "not_declared": 1}}
    return DependencyEngine(
        store,
        WORKSPACE,
        [DOWN],
        {"pf": backend},
        params_of=lambda b, p, r: params.get((b, p, r)),
        sender=outbox or Outbox(),
        team_of=lambda _p: "growth",
        **kw,
    )


def waits(store: Store) -> list[DependencyWaitRow]:
    with store.reading() as session:
        return list(session.scalars(select(DependencyWaitRow).order_by(DependencyWaitRow.id)))


def test_the_downstream_starts_once_with_the_upstream_logical_date_and_params_and_the_link_is_kept(
    store: Store,
) -> None:
    backend = Backend()
    eng = engine(store, backend)
    eng.tick(T0)  # begins driving at T0
    observe(store, "r1", UnifiedState.RUNNING, T0 + timedelta(seconds=1), started_at=T0 + timedelta(seconds=1))
    eng.tick(T0 + timedelta(seconds=2))
    [row] = waits(store)
    assert (row.state, row.slot, row.team) == ("waiting", "2026-12-03T01:00:00+00:00", "growth")
    assert row.waiting_for[0]["detail"] == "running (af run r1)"
    assert backend.calls == 0
    observe(store, "r1", UnifiedState.SUCCESS, T0 + timedelta(seconds=5), ended_at=T0 + timedelta(seconds=5))
    report = eng.tick(T0 + timedelta(seconds=6))
    assert report.triggered == 1
    [(key, (pipeline, params, logical))] = backend.runs.items()
    assert (pipeline, params, logical) == ("down", {"country": "DE"}, DAY)  # only the params it declares
    [row] = waits(store)
    assert (row.state, row.run_id, row.trigger_key) == ("triggered", f"run-{key}", key)
    assert row.upstream_runs == [{"backend": "af", "pipeline": "up", "run_id": "r1"}]
    for seconds in (7, 8, 40):  # more ticks, a refresh, the upstream seen again: nothing more
        observe(store, "r1", UnifiedState.SUCCESS, T0 + timedelta(seconds=seconds), ended_at=T0 + timedelta(seconds=5))
        eng.tick(T0 + timedelta(seconds=seconds))
    assert backend.calls == 1


def test_two_replicas_racing_start_it_once_and_a_restarted_engine_starts_nothing_new(store: Store) -> None:
    backend = Backend()
    first, second = engine(store, backend), engine(store, backend)
    first.tick(T0)
    second.tick(T0)
    observe(store, "r1", UnifiedState.SUCCESS, T0 + timedelta(seconds=1), ended_at=T0 + timedelta(seconds=1))
    for seconds in range(2, 6):
        first.tick(T0 + timedelta(seconds=seconds))
        second.tick(T0 + timedelta(seconds=seconds))
    restarted = engine(store, backend)
    restarted.tick(T0 + timedelta(seconds=7))
    assert (backend.calls, len(backend.runs)) == (1, 1)
    assert [w.state for w in waits(store)] == ["triggered"]


def test_a_claim_whose_trigger_did_not_land_is_finished_with_the_same_key(store: Store) -> None:
    """The backend was down at the claim (as if the engine had been killed right after it): the row stays
    'triggering', and later ticks (here: of a new engine) call the backend again with the same key."""
    backend = Backend()
    backend.down = 2
    eng = engine(store, backend)
    eng.tick(T0)
    observe(store, "r1", UnifiedState.SUCCESS, T0 + timedelta(seconds=1), ended_at=T0 + timedelta(seconds=1))
    eng.tick(T0 + timedelta(seconds=2))
    [row] = waits(store)
    assert (row.state, row.attempts, row.error) == ("triggering", 1, "BackendUnreachable: connection refused")
    engine(store, backend).tick(T0 + timedelta(seconds=3))  # backs off: 2 s after one failure
    assert backend.calls == 1
    engine(store, backend).tick(T0 + timedelta(seconds=5))
    assert backend.calls == 2  # still down
    engine(store, backend).tick(T0 + timedelta(seconds=20))
    [row] = waits(store)
    assert row.state == "triggered"
    assert len(backend.runs) == 1 and row.trigger_key in backend.runs


def test_a_failed_upstream_waits_then_times_out_and_alerts_once(store: Store) -> None:
    backend, outbox = Backend(), Outbox()
    eng = engine(store, backend, outbox)
    eng.tick(T0)
    start = T0 + timedelta(seconds=1)
    observe(store, "r1", UnifiedState.FAILED, start, started_at=start, ended_at=start)
    eng.tick(T0 + timedelta(minutes=30))
    [row] = waits(store)
    assert (row.state, row.until) == ("waiting", start + timedelta(hours=1))
    assert "failed (af run r1)" in row.waiting_for[0]["detail"]
    # nothing new is stored, yet the timeout is judged at its instant (the engine keeps a due queue)
    eng.tick(start + timedelta(hours=1))
    eng.tick(start + timedelta(hours=1, seconds=1))
    engine(store, backend, outbox).tick(start + timedelta(hours=1, seconds=2))  # a restart: no second alert
    [row] = waits(store)
    assert (row.state, row.alert_status) == ("timed_out", "sent")
    assert [(c, e.event, e.dedup_key) for c, e in outbox.sent] == [
        ("webhook:oncall", "failure", "dependency_timeout:pf:2026-12-03T01:00:00+00:00")
    ]
    assert "waited for up: failed (af run r1)" in (outbox.sent[0][1].message or "")
    assert backend.calls == 0
    # a late success does not start a timed-out slot (start it with meta trigger or meta backfill)
    observe(store, "r2", UnifiedState.SUCCESS, start + timedelta(hours=2), ended_at=start + timedelta(hours=2))
    eng.tick(start + timedelta(hours=2, seconds=1))
    assert backend.calls == 0


def test_upstream_successes_from_before_the_engine_began_and_backfill_runs_start_nothing(store: Store) -> None:
    backend = Backend()
    observe(store, "old", UnifiedState.SUCCESS, T0 - timedelta(hours=2), ended_at=T0 - timedelta(hours=2))
    eng = engine(store, backend)
    eng.tick(T0)
    observe(
        store,
        "backfill__1",
        UnifiedState.SUCCESS,
        T0 + timedelta(seconds=1),
        DAY - timedelta(days=1),
        ended_at=T0 + timedelta(seconds=1),
        extra={"run_type": "backfill"},
    )
    observe(store, "bf2", UnifiedState.SUCCESS, T0 + timedelta(seconds=1), DAY - timedelta(days=2), ended_at=T0)
    with store.transaction() as session:
        session.add(
            BackfillDateRow(
                backfill_id="b1",
                backend="af",
                pipeline_id="up",
                logical_date=DAY - timedelta(days=2),
                state="success",
                run_id="bf2",
                updated_at=T0,
            )
        )
    eng.tick(T0 + timedelta(seconds=2))
    assert (backend.calls, waits(store)) == (0, [])


def test_one_replica_leads_at_a_time_and_another_takes_over_when_it_stops_renewing(store: Store) -> None:
    clock = [T0]
    a = Lease(store, "a", ttl=timedelta(seconds=10), clock=lambda: clock[0])
    b = Lease(store, "b", ttl=timedelta(seconds=10), clock=lambda: clock[0])
    assert (a.acquire(), b.acquire()) == (True, False)
    clock[0] += timedelta(seconds=5)
    assert (a.acquire(), b.acquire()) == (True, False)  # renewed
    clock[0] += timedelta(seconds=11)  # a stopped renewing
    assert (b.acquire(), a.acquire()) == (True, False)
    assert a.current() == "b"
    b.release()
    assert a.acquire() is True


def test_only_the_leader_drives(store: Store) -> None:
    backend = Backend()
    clock = [T0]
    leader = engine(store, backend, lease=Lease(store, "a", clock=lambda: clock[0]))
    follower = engine(store, backend, lease=Lease(store, "b", clock=lambda: clock[0]))
    leader.tick(T0)
    assert follower.tick(T0).judged == 0
    observe(store, "r1", UnifiedState.SUCCESS, T0 + timedelta(seconds=1), ended_at=T0 + timedelta(seconds=1))
    assert follower.tick(T0 + timedelta(seconds=2)).triggered == 0
    assert leader.tick(T0 + timedelta(seconds=2)).triggered == 1
    assert backend.calls == 1


CATCHUP = Pipeline.model_validate(
    {
        "id": "daily",
        "schedule": {"kind": "cron", "cron": "0 2 * * *"},
        "start_date": "2026-11-29T00:00:00",
        "end_date": "2026-12-02T12:00:00",
        "catchup": True,
        "max_active_runs": 2,
        "tasks": [{"id": "t", "action": {"kind": "noop"}}],
    }
)
PREFECT_WORKSPACE = Workspace.model_validate(
    {
        "backends": {
            "pf": {"kind": "prefect", "url": "http://127.0.0.1:1/api"},
            "af": {"kind": "airflow", "url": "http://127.0.0.1:1"},
        },
        "placements": [{"backend": "pf", "pipelines": ["daily"]}, {"backend": "af", "pipelines": ["daily"]}],
    }
)


def test_a_prefect_schedule_with_catchup_and_an_end_date_is_run_by_the_plane_oldest_first_within_max_active_runs(
    store: Store,
) -> None:
    """Prefect cannot catch up or stop at an end date: the plane starts 2026-11-29..2026-12-02 02:00 (four slots),
    two at a time, and nothing after end_date; on Airflow (which can) it starts nothing."""
    prefect, airflow = Backend(), Backend()
    eng = DependencyEngine(store, PREFECT_WORKSPACE, [CATCHUP], {"pf": prefect, "af": airflow})
    eng.tick(T0)
    started = lambda: sorted(logical for _p, _params, logical in prefect.runs.values())  # noqa: E731
    assert started() == [datetime(2026, 11, 29, 2, tzinfo=UTC), datetime(2026, 11, 30, 2, tzinfo=UTC)]
    eng.tick(T0 + timedelta(seconds=6))
    assert len(prefect.runs) == 2  # both still running (not even observed yet)
    for key, (_p, _params, logical) in list(prefect.runs.items()):
        event = RunEvent(
            "pf",
            EventKind.RUN,
            "daily",
            f"run-{key}",
            UnifiedState.SUCCESS,
            "Completed",
            T0,
            Source.POLL,
            logical_date=logical,
            ended_at=T0 + timedelta(seconds=7),
        )
        with store.transaction() as session:
            queries.ingest(session, [event])
    eng.tick(T0 + timedelta(seconds=12))
    eng.tick(T0 + timedelta(days=3))  # long after end_date: nothing more
    assert started() == [datetime(2026, 11, d, 2, tzinfo=UTC) for d in (29, 30)] + [
        datetime(2026, 12, d, 2, tzinfo=UTC) for d in (1, 2)
    ]
    assert airflow.calls == 0
    assert all(k.startswith("meta-dep-202611") or k.startswith("meta-dep-202612") for k in prefect.runs)


def test_a_run_first_seen_without_its_logical_date_starts_the_downstream_once_and_leaves_no_stale_wait(
    store: Store,
) -> None:
    """Prefect's pushed Pending state may come before the run's logical date is known: the wait is keyed by the
    run until then. Once the date is known the date's wait takes over (the run-keyed one is dropped, so it never
    times out and alerts); and a run-keyed wait that already started the downstream keeps it: never twice."""
    backend, outbox = Backend(), Outbox()
    eng = engine(store, backend, outbox)
    eng.tick(T0)
    observe(store, "r1", UnifiedState.RUNNING, T0 + timedelta(seconds=1), logical=None)  # type: ignore[arg-type]
    eng.tick(T0 + timedelta(seconds=2))
    assert [(w.slot, w.state) for w in waits(store)] == [("run:af:r1", "waiting")]
    observe(store, "r1", UnifiedState.SUCCESS, T0 + timedelta(seconds=5), ended_at=T0 + timedelta(seconds=5))
    eng.tick(T0 + timedelta(seconds=6))
    assert [(w.slot, w.state) for w in waits(store)] == [("2026-12-03T01:00:00+00:00", "triggered")]
    eng.tick(T0 + timedelta(hours=2))  # past the 1 h timeout: nothing times out, nothing alerts
    assert backend.calls == 1 and outbox.sent == []
    # the other way round: the run succeeds while its date is still unknown, then the date arrives
    observe(store, "r2", UnifiedState.SUCCESS, T0 + timedelta(hours=2, seconds=1), logical=None)  # type: ignore[arg-type]
    eng.tick(T0 + timedelta(hours=2, seconds=2))
    observe(store, "r2", UnifiedState.SUCCESS, T0 + timedelta(hours=2, seconds=3), logical=DAY + timedelta(days=1))
    eng.tick(T0 + timedelta(hours=2, seconds=4))
    assert [(w.slot, w.state) for w in waits(store)] == [
        ("2026-12-03T01:00:00+00:00", "triggered"),
        ("run:af:r2", "triggered"),
    ]
    assert backend.calls == 2 and len(backend.runs) == 2


def test_a_pushed_success_without_its_logical_date_waits_for_the_date_before_starting_anything(store: Store) -> None:
    """Prefect pushes a run's Completed state without its logical date, which the next poll brings: the downstream
    must start for the date (once), not for the run; a run that still has no date after ``DATE_GRACE`` (an
    Airflow 3 run triggered without one) starts it as itself."""
    from meta.service.dependencies.facts import DATE_GRACE

    def push(run_id: str, at: datetime, logical: datetime | None) -> None:
        event = RunEvent("af", EventKind.RUN, "up", run_id, UnifiedState.SUCCESS, "success", at, Source.PUSH)
        with store.transaction() as session:
            queries.ingest(session, [replace(event, logical_date=logical, ended_at=at)])

    backend = Backend()
    eng = engine(store, backend)
    eng.tick(T0)
    push("r1", T0 + timedelta(seconds=1), None)
    eng.tick(T0 + timedelta(seconds=2))
    assert waits(store) == [] and backend.calls == 0  # not yet: the date may be on its way
    observe(store, "r1", UnifiedState.SUCCESS, T0 + timedelta(seconds=3), ended_at=T0 + timedelta(seconds=1))
    eng.tick(T0 + timedelta(seconds=4))
    assert [(w.slot, w.state) for w in waits(store)] == [("2026-12-03T01:00:00+00:00", "triggered")]
    push("r2", T0 + timedelta(seconds=5), None)
    eng.tick(T0 + timedelta(seconds=5) + DATE_GRACE)
    assert [(w.slot, w.state) for w in waits(store)][-1] == ("run:af:r2", "triggered")
    assert backend.calls == 2
