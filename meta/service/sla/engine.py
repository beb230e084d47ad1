"""The SLA engine: a timer thread (every second) that judges every watched subject and delivers what is owed.

A tick evaluates only what may have changed: subjects whose runs or task tries changed since the last tick (the
store's change counter), and subjects whose own next check is due (a deadline, a projected at-risk instant, a new
schedule slot; ``meta.semantics.sla.evaluate`` says when). So a hanging run is judged at its deadline, and ten
thousand quiet pipelines cost nothing between their deadlines. When a deadline has passed but the backend's facts
do not reach it yet, the engine asks that backend's observer to poll now (``poll_now``) rather than wait for its
interval: a miss is only called once the backend's own answer from after the deadline is in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meta.semantics.sla import SlotStatus, evaluate
from meta.service.due import DueQueue
from meta.service.lease import Lease
from meta.service.migrations import routing
from meta.service.sla import facts as facts_of
from meta.service.sla import notices, records
from meta.service.sla.subjects import DATASET_BACKEND, WatchedSubject, watched_subjects
from meta.service.store.db import Store
from meta.service.store.orm import AttemptRow, PipelineRow, RunRow
from meta.spec.model import Pipeline
from meta.spec.workspace import Workspace

log = logging.getLogger("meta.service.sla")

Key = tuple[str, str]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TickReport:
    evaluated: int  # subjects judged this tick
    written: int  # slot rows written (changed states)
    missed: int  # new misses recorded
    notices: int  # notices delivered or retried
    seconds: float


class SlaEngine:
    def __init__(
        self,
        store: Store,
        workspace: Workspace,
        pipelines: Sequence[Pipeline],
        *,
        team_of: Callable[[str], str | None] = lambda _pipeline: None,
        poll_now: Callable[[str], None] | None = None,
        sender: notices.Sender | None = None,
        deliver: bool = True,
        interval: float = 1.0,
        refresh_every: float = 30.0,
        clock: Callable[[], datetime] = utc_now,
        lease: Lease | None = None,
    ):
        self.store = store
        self.lease = lease  # among replicas, only the leader judges and alerts
        self.leading = False
        self.workspace = workspace
        self.pipelines = list(pipelines)
        self.team_of = team_of
        self.poll_now = poll_now
        self.sender = sender or notices.default_sender()
        self.deliver = deliver
        self.interval = interval
        self.refresh_every = refresh_every
        self.clock = clock
        self.subjects: dict[Key, WatchedSubject] = {}
        self.since: dict[Key, datetime] = {}
        self.due: DueQueue[Key] = DueQueue()
        self.memory: dict[records.SlotKey, records.SlotMemory] = {}
        self.last_seq = 0
        self.refreshed_at: float | None = None
        self.routes: dict[str, routing.Route] = {}  # pipelines being migrated: where they are live now
        self.polled_at: dict[str, float] = {}
        self.kinds = {name: backend.kind for name, backend in workspace.backends.items()}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ running

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sla-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the store may be down for a while: keep the timer alive, say why
                log.exception("SLA engine tick failed; retrying")
            self._stop.wait(self.interval)

    # ------------------------------------------------------------------------------------------ one tick

    def tick(self, now: datetime | None = None) -> TickReport:
        started = time.perf_counter()
        now = now or self.clock()
        if self.lease is not None:
            was_leading, leading = self.leading, self.lease.acquire()
            self.leading = leading
            if not leading:
                return TickReport(0, 0, 0, 0, time.perf_counter() - started)
            if not was_leading:
                # another replica led meanwhile: start from what the store says, and judge everything again
                self.refreshed_at, self.subjects = None, {}
        with self.store.reading() as session:
            routes = routing.routes(session)
        if routes != self.routes:  # a switch (meta migrate cutover/rollback): watch the pipeline where it is live
            self.routes, self.refreshed_at = routes, None
        if self.refreshed_at is None or time.monotonic() - self.refreshed_at >= self.refresh_every:
            self.refresh(now)
        keys = self._changed() | self._due(now)
        try:
            written, missed, waiting = self._judge(keys, now)
        except BaseException:
            # Nothing of this tick is stored: keep its subjects due and forget what it meant to write, so a store
            # outage delays a miss, never loses it.
            for key in keys:
                self._schedule(key, now)
            self.memory = {k: m for k, m in self.memory.items() if (k[0], k[1]) not in keys}
            raise
        for backend in sorted(waiting):
            self._ask_poll(backend)
        sent = 0
        if self.deliver:
            sent = len(notices.deliver_due(self.store, now, self.sender, lambda b: self.kinds.get(b, b)))
        return TickReport(len(keys), written, missed, sent, time.perf_counter() - started)

    def _judge(self, keys: set[Key], now: datetime) -> tuple[int, int, set[str]]:
        """Judge ``keys`` and record what changed: (slots written, new misses, backends whose facts are awaited)."""
        written = missed = 0
        waiting: set[str] = set()
        if keys:
            judged = []
            subjects = [self.subjects[key] for key in sorted(keys) if key in self.subjects]
            with self.store.reading() as session:
                # History from before watching began is judged (the board shows the truth at once), but only
                # misses from after it are announced: a first start must not page anyone for last night.
                known = facts_of.read_many(session, [(s, self.since[s.key] - facts_of.HORIZON) for s in subjects], now)
                for subject in subjects:
                    key, found = subject.key, known[subject.key]
                    evaluation = evaluate(subject.spec, found, now)
                    ongoing = {r.run_id for r in found.runs if not r.ended}
                    judged.append((subject, evaluation.statuses, self.since[key], ongoing))
                    self._schedule(key, evaluation.next_check)
                    if evaluation.waiting_for_facts:
                        waiting.update(self._backends_of(subject))
            with self.store.transaction() as session:
                written, missed = self._record(session, judged, now)
        return written, missed, waiting

    def refresh(self, now: datetime) -> None:
        """Re-derive the watched subjects (new DAGs seen, teams changed) and, the first time, the slots' memory."""
        with self.store.reading() as session:
            seen = list(session.execute(select(PipelineRow.backend, PipelineRow.pipeline_id)))
            first = self.refreshed_at is None
            if first:
                self.memory = records.remembered(session, now - timedelta(days=5))
                self.last_seq = int(
                    max(
                        session.scalar(select(func.max(RunRow.change_seq))) or 0,
                        session.scalar(select(func.max(AttemptRow.change_seq))) or 0,
                    )
                )
        subjects = {
            s.key: s for s in watched_subjects(self.workspace, self.pipelines, seen, self.team_of, self._live_on)
        }
        with self.store.transaction() as session:
            self.since = records.tracking_since(session, list(subjects.values()), now)
        for key in subjects.keys() - self.subjects.keys():
            self._schedule(key, now)  # new subjects are judged at once
        self.subjects = subjects
        self.refreshed_at = time.monotonic()
        cutoff = now - timedelta(days=5)
        self.memory = {k: m for k, m in self.memory.items() if m.deadline is None or m.deadline >= cutoff}

    def _live_on(self, pipeline_id: str) -> list[str]:
        placed = self.workspace.backends_of(pipeline_id)
        route = self.routes.get(pipeline_id)
        return route.backends(placed) if route is not None else placed

    def _changed(self) -> set[Key]:
        """Subjects whose runs or task tries changed since the last tick."""
        with self.store.reading() as session:
            changed: set[Key] = set()
            newest = self.last_seq
            for table in (RunRow, AttemptRow):
                rows = session.execute(
                    select(table.backend, table.pipeline_id, func.max(table.change_seq))
                    .where(table.change_seq > self.last_seq)
                    .group_by(table.backend, table.pipeline_id)
                )
                for backend, pipeline_id, seq in rows:
                    changed.add((backend, pipeline_id))
                    newest = max(newest, int(seq))
        self.last_seq = newest
        hit = {key for key in changed if key in self.subjects}
        if changed:
            for subject in self.subjects.values():
                if subject.is_dataset and any((b, p) in changed for b, p, _ in subject.producers):
                    hit.add(subject.key)
        return hit

    def _due(self, now: datetime) -> set[Key]:
        return self.due.pop_due(now)

    def _schedule(self, key: Key, at: datetime) -> None:
        self.due.schedule(key, at)

    def _record(
        self,
        session: Session,
        judged: list[tuple[WatchedSubject, list[SlotStatus], datetime, set[str]]],
        now: datetime,
    ) -> tuple[int, int]:
        """Write the slots whose state changed since the engine last wrote them, and owe their notices.
        ``judged``: (subject, statuses, when watching began, runs still going)."""
        changed = []
        for subject, statuses, since, ongoing in judged:
            for status in statuses:
                slot_key = (*subject.key, status.kind, status.slot)
                held = self.memory.get(slot_key)
                memory = records.memory_of(status, (held.missed if held else False) or status.state == "missed")
                if held != memory:
                    changed.append((subject, status, slot_key, memory, since, ongoing))
        results = records.write_slots(session, [(c[0], c[1]) for c in changed], now)
        missed = 0
        for (subject, status, slot_key, memory, since, ongoing), (newly_missed, newly_resolved) in zip(
            changed, results, strict=True
        ):
            self.memory[slot_key] = memory
            announce = status.deadline is None or status.deadline >= since or status.run_id in ongoing
            if (newly_missed or newly_resolved) and announce:
                records.owe_notices(session, subject, status, newly_missed, newly_resolved, now)
            if newly_missed:
                missed += 1
                # announced misses are news for the operator; older ones, found on a first start, are history
                log.log(
                    logging.WARNING if announce else logging.DEBUG,
                    "SLA missed: %s on %s, %s slot %s (%s)",
                    subject.subject,
                    subject.backend,
                    status.kind,
                    status.slot,
                    status.detail,
                )
        return len(changed), missed

    def _backends_of(self, subject: WatchedSubject) -> set[str]:
        if subject.backend == DATASET_BACKEND:
            return {b for b, _, _ in subject.producers}
        return {subject.backend}

    def _ask_poll(self, backend: str) -> None:
        if self.poll_now is None:
            return
        last = self.polled_at.get(backend)
        if last is not None and time.monotonic() - last < 1.0:
            return
        self.polled_at[backend] = time.monotonic()
        try:
            self.poll_now(backend)
        except Exception:
            log.exception("could not wake the observer of %s", backend)
