"""Cross-pipeline dependencies as pure functions: which logical dates (or schedule slots) of a downstream pipeline
wait for what, and which are ready to start. The control plane's engine (``meta.service.dependencies``) feeds them
facts from its store and acts on the answer.

``align: same``: every logical date some upstream has a run for is a slot of the downstream. It is ready when every
upstream has succeeded for that date (the run, or the named task), and times out ``timeout`` after its first
upstream run was seen, counted for each upstream that has not succeeded yet. ``align: latest``: the downstream's
own schedule makes the slots; a slot is ready when every upstream has a success that ended at most ``within``
before the slot's tick (or any time after it), and times out ``timeout`` after the tick.

Only upstream runs that ended after the downstream began to be driven (``since``) or are still going count: a first
start never replays history. An upstream run without a logical date (a manual Airflow run) is its own slot, and only
for a pipeline with a single dependency (nothing else can be aligned with it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from meta.semantics.sla.slots import ticks
from meta.spec.model import CronSchedule, Dependency, IntervalSchedule, Pipeline

WaitState = Literal["waiting", "ready", "timed_out"]
WAITING: WaitState = "waiting"
READY: WaitState = "ready"
TIMED_OUT: WaitState = "timed_out"
LOOKBACK = timedelta(days=7)  # align latest: the oldest slot still considered


@dataclass(frozen=True)
class UpstreamRun:
    """One run of an upstream pipeline on one backend, with the states of the tasks a dependency names."""

    backend: str
    pipeline_id: str
    run_id: str
    state: str  # unified: success / failed / running / queued / ...
    logical_date: datetime | None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    seen_at: datetime | None = None  # when the control plane first stored it (queued runs have no start)
    task_states: Mapping[str, str] = field(default_factory=dict)  # task id -> state of its latest try

    def succeeded(self, task: str | None) -> bool:
        return (self.task_states.get(task) if task else self.state) == "success"

    def ended(self, task: str | None) -> bool:
        state = self.task_states.get(task) if task else self.state
        return state in {"success", "failed", "skipped", "upstream_failed"}

    @property
    def began(self) -> datetime | None:
        return self.started_at or self.seen_at or self.ended_at


@dataclass(frozen=True)
class Need:
    """What one dependency says about one slot: satisfied by ``run``, or why not (``detail``)."""

    dependency: int  # its index in depends_on
    upstream: str  # its label ("marketing_roi", "marketing_roi.load on airflow")
    satisfied: bool
    detail: str
    run: UpstreamRun | None = None
    until: datetime | None = None  # when waiting for it gives up

    def as_json(self) -> dict[str, Any]:
        return {
            "upstream": self.upstream,
            "satisfied": self.satisfied,
            "detail": self.detail,
            "backend": self.run.backend if self.run else None,
            "run_id": self.run.run_id if self.run else None,
            "state": self.run.state if self.run else None,
            "until": self.until.isoformat() if self.until else None,
        }


@dataclass(frozen=True)
class Wait:
    """One slot of the downstream: ``state`` ready (start it), waiting, or timed_out (fail it and alert)."""

    slot: str
    logical_date: datetime | None
    state: WaitState
    since: datetime
    until: datetime
    needs: tuple[Need, ...]

    @property
    def upstream_runs(self) -> list[UpstreamRun]:
        return [n.run for n in self.needs if n.satisfied and n.run is not None]

    @property
    def missing(self) -> list[Need]:
        return [n for n in self.needs if not n.satisfied]


def slot_key(logical_date: datetime | None, run: UpstreamRun | None = None) -> str:
    if logical_date is not None:
        return logical_date.astimezone(UTC).isoformat(timespec="seconds")
    assert run is not None
    return f"run:{run.backend}:{run.run_id}"


def trigger_key(pipeline_id: str, backend: str, slot: str) -> str:
    """The downstream run's id / idempotency key: deterministic in (pipeline, backend, slot), so every replica,
    every restart and a backfill with ``--with-downstream`` name the same run and the backend starts it once.
    Readable (``meta-dep-20261203T010000Z-...``) and within Airflow's run-id alphabet."""
    digest = hashlib.sha256(f"{pipeline_id}\x00{backend}\x00{slot}".encode()).hexdigest()[:16]
    stamp = slot.replace("-", "").replace(":", "").replace("+0000", "Z") if not slot.startswith("run:") else "run"
    return f"meta-dep-{stamp}-{digest}"


def evaluate(
    pipeline: Pipeline,
    runs: Sequence[UpstreamRun],
    since: datetime,
    now: datetime,
) -> list[Wait]:
    """Every slot of ``pipeline`` its upstream ``runs`` (of every dependency, any backend) open, oldest first."""
    deps = pipeline.depends_on
    if not deps:
        return []
    relevant = [r for r in runs if _counts(r, since)]
    if deps[0].align == "latest":
        return _latest(pipeline, relevant, since, now)
    return _same(deps, relevant, now)


def _counts(run: UpstreamRun, since: datetime) -> bool:
    """Started the watch after ``since`` or still going then: only those can start the downstream."""
    if run.ended_at is None:
        return True
    return run.ended_at >= since


def _matches(dep: Dependency, run: UpstreamRun) -> bool:
    return run.pipeline_id == dep.pipeline and (dep.backend is None or run.backend == dep.backend)


def _same(deps: Sequence[Dependency], runs: Sequence[UpstreamRun], now: datetime) -> list[Wait]:
    slots: dict[str, tuple[datetime | None, list[UpstreamRun]]] = {}
    for run in runs:
        if not any(_matches(d, run) for d in deps):
            continue
        if run.logical_date is None and len(deps) > 1:
            continue  # nothing else can be aligned with a run that has no logical date
        key = slot_key(run.logical_date, run)
        slots.setdefault(key, (run.logical_date, []))[1].append(run)
    out = []
    for key, (logical_date, slot_runs) in slots.items():
        since = min((r.began for r in slot_runs if r.began is not None), default=now)
        needs = []
        for i, dep in enumerate(deps):
            mine = [r for r in slot_runs if _matches(dep, r)]
            winner = _first_success(mine, dep.task)
            if winner is not None:
                needs.append(Need(i, dep.label, True, f"succeeded ({winner.backend} run {winner.run_id})", winner))
                continue
            latest = max(mine, key=lambda r: r.began or now, default=None)
            detail = (
                f"{_state_of(latest, dep.task)} ({latest.backend} run {latest.run_id})"
                if latest
                else "no run for this logical date yet"
            )
            needs.append(Need(i, dep.label, False, detail, latest, since + dep.timeout))
        out.append(_wait(key, logical_date, since, needs, now))
    return sorted(out, key=lambda w: (w.logical_date or w.since, w.slot))


def _latest(pipeline: Pipeline, runs: Sequence[UpstreamRun], since: datetime, now: datetime) -> list[Wait]:
    deps = pipeline.depends_on
    begin = max(since, now - LOOKBACK)
    out = []
    for tick in ticks(pipeline.schedule, pipeline.timezone, begin, now, start_date=pipeline.start_date):
        if tick < since:
            continue
        needs = []
        for i, dep in enumerate(deps):
            fresh = [
                r
                for r in runs
                if _matches(dep, r) and r.succeeded(dep.task) and r.ended_at and r.ended_at >= tick - dep.window
            ]
            winner = max(fresh, key=lambda r: r.ended_at or tick, default=None)
            if winner is not None:
                needs.append(Need(i, dep.label, True, f"succeeded at {_iso(winner.ended_at)}", winner))
            else:
                detail = f"no success since {_iso(tick - dep.window)} (within {_short(dep.window)} of the slot)"
                needs.append(Need(i, dep.label, False, detail, None, tick + dep.timeout))
        out.append(_wait(slot_key(tick), tick, tick, needs, now))
    return out


def _wait(key: str, logical_date: datetime | None, since: datetime, needs: list[Need], now: datetime) -> Wait:
    missing = [n for n in needs if not n.satisfied]
    if not missing:
        return Wait(key, logical_date, READY, since, since, tuple(needs))
    until = min(n.until for n in missing if n.until is not None)
    state: WaitState = TIMED_OUT if now >= until else WAITING
    return Wait(key, logical_date, state, since, until, tuple(needs))


def _first_success(runs: Sequence[UpstreamRun], task: str | None) -> UpstreamRun | None:
    done = [r for r in runs if r.succeeded(task)]
    return min(done, key=lambda r: r.ended_at or r.began or datetime.max.replace(tzinfo=UTC), default=None)


def _state_of(run: UpstreamRun, task: str | None) -> str:
    if task is None:
        return run.state
    return f"task {task} {run.task_states.get(task, 'not started')}"


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else "-"


def _short(delta: timedelta) -> str:
    from meta.spec.durations import format_duration

    return format_duration(delta)


# Backend kinds whose schedules cannot express catchup or an end date: the control plane runs those slots itself.
SCHEDULES_WITHOUT_CATCHUP = frozenset({"prefect"})


def schedule_driven_by_control_plane(pipeline: Pipeline, backend_kind: str) -> bool:
    """Whether the control plane, not the backend, starts ``pipeline``'s schedule slots there: Prefect schedules
    create future runs only and never end, so a pipeline with ``catchup: true`` or an ``end_date`` is deployed
    without its schedule and each slot (from ``start_date`` with catchup, until ``end_date``) is started by meta."""
    return (
        backend_kind in SCHEDULES_WITHOUT_CATCHUP
        and not pipeline.depends_on
        and isinstance(pipeline.schedule, CronSchedule | IntervalSchedule)
        and (pipeline.catchup or pipeline.end_date is not None)
    )


def scheduled_slots(pipeline: Pipeline, since: datetime, after: datetime | None, now: datetime) -> list[Wait]:
    """The slots a control-plane-driven schedule owes by ``now``, oldest first, each ready at once: ticks from
    ``start_date`` (with catchup) or from when driving began (``since``), after ``after`` (the newest slot already
    started), up to ``end_date``."""
    begin = (_aware(pipeline.start_date) or since) if pipeline.catchup else since
    begin -= timedelta(microseconds=1)  # a tick exactly at the start counts
    if after is not None:
        begin = max(begin, after)
    until = min(now, _aware(pipeline.end_date) or now)
    found = ticks(pipeline.schedule, pipeline.timezone, begin, until, start_date=pipeline.start_date, limit=1_000_000)
    return [Wait(slot_key(t), t, READY, t, t, ()) for t in found]


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def next_check(waits: Sequence[Wait], pipeline: Pipeline, now: datetime) -> datetime | None:
    """When the answer can change without any new fact: the earliest timeout of a waiting slot, or (align latest)
    the next schedule tick."""
    candidates = [w.until for w in waits if w.state == WAITING]
    deps = pipeline.depends_on
    if not deps or deps[0].align == "latest":  # a schedule of its own (align latest, or driven by the plane)
        from meta.semantics.sla.slots import next_tick

        tick = next_tick(pipeline.schedule, pipeline.timezone, now, pipeline.start_date)
        if tick is not None:
            candidates.append(tick)
    return min(candidates, default=None)
