"""The dependency engine: starts each downstream pipeline on its backends once its upstreams succeeded, exactly once.

A tick re-judges only the downstreams whose upstreams' runs changed since the last tick (the store's change
counter) or whose next check is due (a timeout, a schedule tick of ``align: latest``); the observer runtime wakes
the engine as soon as it stores a change (``wake``), so a push event (OpenLineage, Prefect's websocket) starts the
downstream within the same second, and polling makes it certain when a push was lost.

Exactly once: a ready slot is claimed (``waiting`` -> ``triggering``, a conditional UPDATE only one caller wins),
then started on the backend with a key deterministic in (pipeline, backend, slot) (Airflow's ``dag_run_id``: 409 is
"already there"; Prefect's ``idempotency_key``; the local runner's exclusive run log), then recorded ``triggered``
with the run and the upstream runs that satisfied it. A crash between any two steps leaves a ``triggering`` row
that the next tick, here or on another replica, finishes with the same key: the backend starts nothing new.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from meta.builtin.operators.alerts import AlertEvent
from meta.plugins.observers import BackendUnreachable, Triggerable
from meta.semantics.dependencies import (
    READY,
    TIMED_OUT,
    Wait,
    evaluate,
    next_check,
    schedule_driven_by_control_plane,
    scheduled_slots,
    trigger_key,
)
from meta.service.dependencies import records
from meta.service.dependencies.facts import upstream_runs
from meta.service.due import DueQueue
from meta.service.lease import Lease
from meta.service.migrations import routing
from meta.service.sla.notices import AlertSender, Sender, default_sender
from meta.service.store.db import Store
from meta.service.store.orm import AttemptRow, DependencyWaitRow, RunRow
from meta.spec.model import Pipeline
from meta.spec.workspace import Workspace

log = logging.getLogger("meta.service.dependencies")
Subject = records.Subject
MAX_ALERT_ATTEMPTS = 8


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TickReport:
    judged: int  # downstream subjects evaluated
    triggered: int  # runs started (or confirmed) this tick
    timed_out: int
    alerts: int
    seconds: float


class DependencyEngine:
    def __init__(
        self,
        store: Store,
        workspace: Workspace,
        pipelines: Sequence[Pipeline],
        triggerers: Mapping[str, Triggerable],
        *,
        team_of: Callable[[str], str | None] = lambda _pipeline: None,
        params_of: Callable[[str, str, str], Mapping[str, Any] | None] | None = None,
        lease: Lease | None = None,
        sender: Sender | None = None,
        interval: float = 1.0,
        refresh_every: float = 30.0,
        clock: Callable[[], datetime] = utc_now,
        act: bool = True,
        companions: Sequence[Callable[[datetime], object]] = (),
    ):
        self.store = store
        self.act = act  # False: record what waits for what, start nothing (``meta why`` without a server)
        # other leader work ticked with this loop, woken by the same changes (the dataset forwarder)
        self.companions = list(companions)
        self.workspace = workspace
        self.kinds = {name: backend.kind for name, backend in workspace.backends.items()}
        # pipelines with depends_on, and those whose schedule a backend cannot keep (Prefect with catchup/end_date)
        self.pipelines = {
            p.id: p
            for p in pipelines
            if p.depends_on or any(schedule_driven_by_control_plane(p, kind) for kind in set(self.kinds.values()))
        }
        self.triggerers = dict(triggerers)
        self.team_of = team_of
        self.params_of = params_of  # (backend, pipeline, run id) -> that run's params, None when unknown
        self.lease = lease
        self.holder = lease.holder if lease else "engine"
        self.sender = sender or default_sender()
        self.interval = interval
        self.refresh_every = refresh_every
        self.clock = clock
        self.subjects: list[Subject] = []
        self.since: dict[Subject, datetime] = {}
        self.upstream_of: dict[str, set[str]] = {}  # upstream pipeline id -> downstream ids
        self.due: DueQueue[str] = DueQueue()
        self.last_seq: int | None = None
        self.refreshed_at: float | None = None
        self.leading = False
        self.routes: dict[str, routing.Route] = {}  # pipelines being migrated: where they are live now
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ running

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dependency-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def nudge(self, *_: Any) -> None:
        """Something was stored (the observer runtime's change listener): tick now rather than at the interval."""
        self.wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the store or a backend may be down for a while: keep going, say why
                log.exception("dependency engine tick failed; retrying")
            self.wake.wait(self.interval)
            self.wake.clear()

    # ------------------------------------------------------------------------------------------ one tick

    def tick(self, now: datetime | None = None) -> TickReport:
        started = time.perf_counter()
        now = now or self.clock()
        if self.lease is not None:
            was_leading, self.leading = self.leading, self.lease.acquire()
            if not self.leading:
                return TickReport(0, 0, 0, 0, time.perf_counter() - started)
            if not was_leading:  # another replica led meanwhile: judge every downstream again
                self.refreshed_at, self.subjects, self.last_seq = None, [], None
        with self.store.reading() as session:
            routes = routing.routes(session)
        if routes != self.routes:  # a switch (meta migrate cutover/rollback) moved a pipeline: drive it there now
            self.routes, self.refreshed_at = routes, None
        if self.refreshed_at is None or time.monotonic() - self.refreshed_at >= self.refresh_every:
            self.refresh(now)
        pipelines = self._changed() | self._due(now)
        triggered = timed_out = 0
        for pipeline_id in sorted(pipelines):
            t, o = self._judge(pipeline_id, now)
            triggered, timed_out = triggered + t, timed_out + o
        alerts = 0
        if self.act:
            triggered += self._finish_unfinished(now)
            alerts = self._deliver_alerts(now)
            for companion in self.companions:
                try:
                    companion(now)
                except Exception:  # one job's failure (a store outage) must not stop the others; retried next tick
                    log.exception("%s failed; retrying", getattr(companion, "__qualname__", companion))
        return TickReport(len(pipelines), triggered, timed_out, alerts, time.perf_counter() - started)

    def refresh(self, now: datetime) -> None:
        """The downstreams to drive: every pipeline with ``depends_on`` on every backend it is placed on."""
        subjects = [
            (b, pid)
            for pid, pipeline in sorted(self.pipelines.items())
            for b in self._backends_of(pid)
            if pipeline.depends_on
            or (schedule_driven_by_control_plane(pipeline, self.kinds.get(b, "")) and not self._switched(pid))
        ]
        with self.store.transaction() as session:
            self.since = records.tracking_since(session, subjects, now)
        self.upstream_of = {}
        for pid, pipeline in self.pipelines.items():
            for dep in pipeline.depends_on:
                self.upstream_of.setdefault(dep.pipeline, set()).add(pid)
        # Every downstream is judged again at each refresh: a change whose sequence number committed out of order
        # (PostgreSQL writers) and so slipped past ``_changed`` costs at most one refresh interval, never a trigger.
        for pid in {p for _, p in subjects}:
            self._schedule(pid, now)
        self.subjects = subjects
        self.refreshed_at = time.monotonic()

    def _backends_of(self, pipeline_id: str) -> list[str]:
        """Where to drive the pipeline: its placements, or where a migration made it live."""
        placed = self.workspace.backends_of(pipeline_id)
        route = self.routes.get(pipeline_id)
        return route.backends(placed) if route is not None else placed

    def _switched(self, pipeline_id: str) -> bool:
        """Cut over (or mid-switch): its schedule slots are the migration engine's to start, not this one's."""
        route = self.routes.get(pipeline_id)
        return route is not None and route.only is not None

    def _changed(self) -> set[str]:
        """Downstreams whose upstreams' runs or task tries changed since the last tick."""
        with self.store.reading() as session:
            if self.last_seq is None:  # first tick: everything is judged (``refresh`` scheduled it)
                self.last_seq = int(
                    max(
                        session.scalar(select(func.max(RunRow.change_seq))) or 0,
                        session.scalar(select(func.max(AttemptRow.change_seq))) or 0,
                    )
                )
                return set()
            changed: set[str] = set()
            newest = self.last_seq
            for table in (RunRow, AttemptRow):
                rows = session.execute(
                    select(table.pipeline_id, func.max(table.change_seq))
                    .where(table.change_seq > self.last_seq)
                    .group_by(table.pipeline_id)
                )
                for pipeline_id, seq in rows:
                    changed.update(self.upstream_of.get(pipeline_id, ()))
                    newest = max(newest, int(seq))
        self.last_seq = newest
        return changed

    def _due(self, now: datetime) -> set[str]:
        return self.due.pop_due(now)

    def _schedule(self, key: str, at: datetime) -> None:
        self.due.schedule(key, at)

    # ------------------------------------------------------------------------------------------ judging

    def _judge(self, pipeline_id: str, now: datetime) -> tuple[int, int]:
        pipeline = self.pipelines.get(pipeline_id)
        backends = [b for b, p in self.subjects if p == pipeline_id]
        if pipeline is None or not backends:
            return 0, 0
        try:
            return self._judge_on(pipeline, backends, now)
        except BaseException:
            self._schedule(pipeline_id, now)  # judged again next tick: a store outage delays, never loses
            raise

    def _judge_on(self, pipeline: Pipeline, backends: list[str], now: datetime) -> tuple[int, int]:
        if not pipeline.depends_on:
            return self._run_schedule(pipeline, backends, now), 0
        names = {d.pipeline for d in pipeline.depends_on}
        tasks = [(d.pipeline, d.task) for d in pipeline.depends_on if d.task]
        oldest = min(self.since[(b, pipeline.id)] for b in backends)
        with self.store.reading() as session:
            runs = upstream_runs(session, names, tasks, oldest, now)
        found = [r for name in names for r in runs.get(name, [])]
        triggered = timed_out = 0
        soonest: datetime | None = None
        for backend in backends:
            subject = (backend, pipeline.id)
            waits = evaluate(pipeline, found, self.since[subject], now)
            handed = self.routes[pipeline.id].after_slot if pipeline.id in self.routes else None
            if handed is not None:  # those slots ran on the side that handed over (meta migrate cutover)
                waits = [w for w in waits if w.logical_date is None or w.logical_date > handed]
            with self.store.transaction() as session:
                waits = records.settle_run_keys(session, subject, found, waits)
                rows = records.record_waits(session, subject, self.team_of(pipeline.id), waits, now)
            for wait in waits:
                row = rows.get(wait.slot)
                if not self.act or row is None or row.state != records.WAITING:
                    continue
                if wait.state == READY:
                    triggered += self._trigger(pipeline, backend, wait, row, now)
                elif wait.state == TIMED_OUT:
                    timed_out += self._time_out(pipeline, row, wait, now)
            check = next_check(waits, pipeline, now)
            if check is not None and (soonest is None or check < soonest):
                soonest = check
        if soonest is not None:
            self._schedule(pipeline.id, soonest)
        return triggered, timed_out

    def _run_schedule(self, pipeline: Pipeline, backends: list[str], now: datetime) -> int:
        """A schedule the backend cannot keep (``schedule_driven_by_control_plane``): start each owed slot, oldest
        first, at most ``max_active_runs`` (Airflow's default 16) running at once, like Airflow's catchup."""
        started = 0
        for backend in backends:
            subject = (backend, pipeline.id)
            with self.store.reading() as session:
                after = records.newest_started(session, subject)
                running = records.active_runs(session, subject)
            budget = (pipeline.max_active_runs or 16) - running
            owed = scheduled_slots(pipeline, self.since[subject], after, now)[: max(0, budget)]
            with self.store.transaction() as session:
                rows = records.record_waits(session, subject, self.team_of(pipeline.id), owed, now)
            for wait in owed:
                row = rows.get(wait.slot)
                if self.act and row is not None and row.state == records.WAITING:
                    started += self._trigger(pipeline, backend, wait, row, now)
            if len(owed) == budget and budget > 0:
                self._schedule(pipeline.id, now + timedelta(seconds=5))  # more owed: look again soon
        check = next_check([], pipeline, now)
        if check is not None:
            self._schedule(pipeline.id, check)
        return started

    # ------------------------------------------------------------------------------------------ acting

    def _trigger(self, pipeline: Pipeline, backend: str, wait: Wait, row: DependencyWaitRow, now: datetime) -> int:
        key = trigger_key(pipeline.id, backend, wait.slot)
        with self.store.transaction() as session:
            if not routing.still_routed(session, pipeline.id, backend, now):
                return 0  # a switch moved it meanwhile: the next tick drives it where it is live
            if not records.claim(
                session, row.id, records.TRIGGERING, self.holder, now, trigger_key=key, run_url=None, error=None
            ):
                return 0  # another replica (or an earlier tick) took it
        log.info(
            "starting %s on %s for %s: %s",
            pipeline.id,
            backend,
            wait.slot,
            ", ".join(f"{r.pipeline_id} {r.run_id} on {r.backend}" for r in wait.upstream_runs),
        )
        first = wait.upstream_runs[0] if wait.upstream_runs else None
        upstream = {"backend": first.backend, "pipeline": first.pipeline_id, "run_id": first.run_id} if first else None
        return self._start(backend, pipeline.id, row.id, key, self._params(pipeline, upstream), wait.logical_date, now)

    def _start(
        self,
        backend: str,
        pipeline_id: str,
        row_id: int,
        key: str,
        params: Mapping[str, Any],
        logical_date: datetime | None,
        now: datetime,
    ) -> int:
        triggerer = self.triggerers.get(backend)
        if triggerer is None:
            with self.store.transaction() as session:
                records.settle(session, row_id, now, error=f"backend {backend!r} cannot start runs")
            return 0
        try:
            result = triggerer.trigger(pipeline_id, key, params, logical_date)
        except Exception as exc:  # kept ``triggering``: retried with the same key next tick
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]
            if not isinstance(exc, BackendUnreachable):
                log.warning("starting %s on %s (%s) failed: %s; retrying", pipeline_id, backend, key, reason)
            with self.store.transaction() as session:
                records.settle(
                    session,
                    row_id,
                    now,
                    error=reason,
                    attempts=DependencyWaitRow.attempts + 1,
                    state=records.TRIGGERING,
                )
            return 0
        with self.store.transaction() as session:
            records.settle(
                session,
                row_id,
                now,
                state=records.TRIGGERED,
                run_id=result.run_id,
                run_url=result.url,
                triggered_at=now,
                error=None,
            )
        return 1

    def _finish_unfinished(self, now: datetime) -> int:
        """Rows claimed but not confirmed: a crash after the claim, or a backend that refused or was down."""
        with self.store.reading() as session:
            pending = records.unfinished(session)
        done = 0
        for row in pending:
            if row.trigger_key is None:
                continue
            if row.attempts and row.updated_at and (now - row.updated_at).total_seconds() < min(60, 2**row.attempts):
                continue  # back off on a backend that keeps refusing
            pipeline = self.pipelines.get(row.pipeline_id)
            if pipeline is None:
                continue
            params = self._params(pipeline, row.upstream_runs[0] if row.upstream_runs else None)
            done += self._start(row.backend, row.pipeline_id, row.id, row.trigger_key, params, row.logical_date, now)
        return done

    def _time_out(self, pipeline: Pipeline, row: DependencyWaitRow, wait: Wait, now: datetime) -> int:
        channels = list(pipeline.alerts.on_failure)
        with self.store.transaction() as session:
            won = records.claim(
                session,
                row.id,
                records.TIMED_OUT,
                self.holder,
                now,
                timed_out_at=now,
                alert_status=records.ALERT_DUE if channels else records.ALERT_NONE,
            )
        if won:
            log.warning(
                "%s on %s gave up waiting for %s (%s): %s",
                pipeline.id,
                row.backend,
                wait.slot,
                ", ".join(n.upstream for n in wait.missing),
                "; ".join(n.detail for n in wait.missing),
            )
        return int(won)

    def _deliver_alerts(self, now: datetime) -> int:
        with self.store.reading() as session:
            due = records.alerts_due(session)
        sent = 0
        for row in due:
            pipeline = self.pipelines.get(row.pipeline_id)
            channels = list(pipeline.alerts.on_failure) if pipeline else []
            event = timeout_alert(row, self.workspace)
            if row.alert_status == records.ALERT_IN_FLIGHT and isinstance(self.sender, AlertSender):
                self.sender.reclaim(channels, event)  # a delivery a crash interrupted: finish it, never lose it
            with self.store.transaction() as session:
                records.settle(session, row.id, now, alert_status=records.ALERT_IN_FLIGHT)
            try:
                failed = any(o.status == "failed" for o in self.sender(channels, event))
            except Exception:
                log.exception("the timeout alert of %s %s could not be sent", row.pipeline_id, row.slot)
                failed = True
            status = records.ALERT_SENT
            if failed:
                status = records.ALERT_FAILED if row.attempts + 1 >= MAX_ALERT_ATTEMPTS else records.ALERT_DUE
            with self.store.transaction() as session:
                records.settle(
                    session,
                    row.id,
                    now,
                    alert_status=status,
                    attempts=DependencyWaitRow.attempts + (1 if failed else 0),
                )
            sent += not failed
        return sent

    # ------------------------------------------------------------------------------------------ params

    def _params(self, pipeline: Pipeline, first: Mapping[str, str] | None) -> dict[str, Any]:
        """The downstream's params: those it declares of the first upstream run's (``first``: backend, pipeline,
        run_id; align same only), else none (its defaults apply)."""
        if not first or not pipeline.depends_on or pipeline.depends_on[0].align != "same" or self.params_of is None:
            return {}
        try:
            given = self.params_of(first["backend"], first["pipeline"], first["run_id"]) or {}
        except Exception:  # params are a courtesy: a run starts with its defaults rather than not at all
            log.warning(
                "could not read the params of %s %s on %s", first["pipeline"], first["run_id"], first["backend"]
            )
            given = {}
        return {name: value for name, value in given.items() if name in pipeline.params}


def timeout_alert(row: DependencyWaitRow, workspace: Workspace) -> AlertEvent:
    missing = [w for w in row.waiting_for or [] if not w.get("satisfied")]
    what = "; ".join(f"{w['upstream']}: {w['detail']}" for w in missing) or "its upstreams"
    backend = workspace.backends.get(row.backend)
    return AlertEvent(
        pipeline_id=row.pipeline_id,
        run_id=row.slot,
        event="failure",
        backend=backend.kind if backend else row.backend,
        logical_date=row.logical_date,
        state="upstream_failed",
        message=(
            f"{row.pipeline_id} on {row.backend} did not start for {row.slot}: it waited for {what} from "
            f"{row.since.isoformat(timespec='seconds')} until {row.until.isoformat(timespec='seconds')} and gave up"
        ),
        dedup_key=f"dependency_timeout:{row.backend}:{row.slot}",
        extra={"backend_name": row.backend, "slot": row.slot},
    )
