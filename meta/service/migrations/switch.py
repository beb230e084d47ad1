"""Starting a shadow, cutting over and rolling back (``meta migrate shadow|cutover|rollback``), step by step.

Every step is recorded in the store before the next one, and every step is safe to repeat: a switch interrupted at
any point (Ctrl-C, SIGKILL, a backend down) is finished by running the same command again.

Cutover (``shadowing`` -> ``cutting_over`` -> ``target_live``):
  1. remember whether the source was paused (rollback restores it);
  2. pause the source *between runs* where pausing stalls a run in flight (Airflow): a run already going finishes
     on the source;
  3. read the hand-off slot: the newest logical date among the source's runs, once it is stable;
  4. deploy the pipeline on the target without a schedule of its own (``shadow.unscheduled``) and make sure the
     target runs it (Airflow: the DAG parsed and unpaused);
  5. ``target_live`` with ``handoff_slot`` and ``owed_from``: from now the control plane starts each slot after the
     hand-off on the target (``engine``), so no slot is lost however long the switch took, and none runs twice.

Rollback (``target_live`` -> ``rolling_back`` -> ``shadowing``):
  1. ``rolling_back``: the control plane claims no slot for the target after this (a claim checks the phase in its
     own transaction); the newest slot it claimed is the hand-off back;
  2. where the source's scheduler would otherwise run those slots again when resumed (Airflow: the newest slot at
     unpause, or every slot with catchup), each slot the target ran is recorded on the source as handled
     (``mark_handled``: a finished run with a note naming where it ran), while the source is still paused;
  3. resume the source if it was running before the cutover; until its scheduler has a run of its own after the
     hand-off, the control plane starts each slot it has no run for (Prefect creates only future runs), once
     (``engine._settle``);
  4. ``shadowing`` again: the pipeline is live on the source, the shadow copy on the target resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from meta.service.migrations import records
from meta.service.migrations.shadow import ShadowCopy, shadow_copy, unscheduled
from meta.service.migrations.slots import owed_from
from meta.service.store.db import Store
from meta.service.store.orm import MigrationRow
from meta.spec.errors import MetaError
from meta.spec.model import Pipeline
from meta.spec.workspace import Migration

Echo = Callable[[str], None]
STABLE_READS = 2  # the hand-off slot is read until this many reads in a row agree (a run being created settles)


def utc_now() -> datetime:
    return datetime.now(UTC)


class SwitchError(MetaError):
    """A switch step that cannot be done now (a backend down, a run that does not end): run the command again."""


@dataclass
class Side:
    """One backend of the move: its workspace name and its observer (Triggerable and Switchable)."""

    backend: str
    observer: Any


@dataclass
class Switch:
    store: Store
    pipeline: Pipeline
    source: Side
    target: Side
    deploy: Callable[[Pipeline, str], None]  # (pipeline, backend name): deploy it there, as ``meta deploy`` does
    by: str = "cli"
    echo: Echo = print
    clock: Callable[[], datetime] = utc_now
    sleep: Callable[[float], None] = time.sleep
    timeout: float = 600.0  # how long a step waits for a backend (a run to end, a DAG to be parsed)
    poll: float = 1.0

    # ------------------------------------------------------------------------------------------ shadow

    def start_shadow(self, settings: Migration, team: str | None) -> ShadowCopy:
        """Deploy the shadow copy on the target and record the migration (``shadowing``)."""
        pid = self.pipeline.id
        with self.store.reading() as session:
            existing = records.get(session, pid)
        if existing is not None and existing.target_backend != self.target.backend:
            raise MetaError(
                f"{pid} is already being migrated to {existing.target_backend!r} (phase {existing.phase}); "
                "finish or roll back that migration first"
            )
        if existing is not None and existing.phase != records.SHADOWING:
            raise MetaError(f"{pid} is {existing.phase} on {existing.target_backend}; shadowing is already done")
        copy = shadow_copy(self.pipeline, settings)
        self.echo(f"deploying the shadow copy {copy.pipeline.id} on {self.target.backend}")
        self.deploy(copy.pipeline, self.target.backend)
        self._runnable(self.target, copy.pipeline.id)
        now = self.clock()
        if existing is None:
            with self.store.transaction() as session:
                session.add(
                    MigrationRow(
                        pipeline_id=pid,
                        team=team,
                        source_backend=self.source.backend,
                        target_backend=self.target.backend,
                        shadow_id=copy.pipeline.id,
                        phase=records.SHADOWING,
                        shadow_since=now,
                        history=[records.history_entry("shadow", self.by, now, to=self.target.backend)],
                        created_at=now,
                        updated_at=now,
                    )
                )
        return copy

    # ------------------------------------------------------------------------------------------ cutover

    def cutover(self) -> MigrationRow:
        pid = self.pipeline.id
        row = self._row()
        if row.phase == records.TARGET_LIVE:
            self.echo(f"{pid} is already live on {row.target_backend}")
            return row
        if row.phase == records.ROLLING_BACK:
            raise MetaError(f"{pid} is rolling back; finish it first: meta migrate rollback {pid}")
        if row.phase == records.SHADOWING:
            was_paused = self.source.observer.is_paused(pid)
            with self.store.transaction() as session:
                records.set_phase(
                    session, pid, [records.SHADOWING], records.CUTTING_OVER, self.clock(), source_was_paused=was_paused
                )
        self.echo(f"pausing {pid} on {self.source.backend}")
        paused_at = self.clock()
        self._pause_between_runs(self.source, pid)
        if self.pipeline.depends_on:  # upstream successes from the pause on count for the target (routing)
            with self.store.transaction() as session:
                records.track_dependencies_from(session, self.target.backend, pid, paused_at)
        handoff = self._stable(lambda: self.source.observer.newest_logical_date(pid))
        self.echo(f"hand-off slot: {_iso(handoff) or 'none (the source never ran it)'}")
        self.echo(f"deploying {pid} on {self.target.backend} (its slots are started by the control plane)")
        self.deploy(unscheduled(self.pipeline), self.target.backend)
        self._runnable(self.target, pid)
        now = self.clock()
        first = owed_from(self.pipeline, handoff, now) if self.pipeline.schedule is not None else None
        with self.store.transaction() as session:
            records.restart_sla_watch(session, self.target.backend, pid, now)
            records.set_phase(
                session, pid, [records.CUTTING_OVER], records.TARGET_LIVE, now, handoff_slot=handoff, owed_from=first
            )
            records.append_history(
                session,
                pid,
                records.history_entry(
                    "cutover",
                    self.by,
                    now,
                    source=self.source.backend,
                    target=self.target.backend,
                    handoff_slot=handoff,
                    owed_from=first,
                ),
            )
        self.echo(f"{pid} is live on {self.target.backend}; the first slot it owes: {_iso(first) or '-'}")
        return self._row()

    # ------------------------------------------------------------------------------------------ rollback

    def rollback(self) -> MigrationRow:
        pid = self.pipeline.id
        row = self._row()
        if row.phase == records.SHADOWING:
            self.echo(f"{pid} is live on {row.source_backend} already; nothing to roll back")
            return row
        if row.phase == records.CUTTING_OVER:
            self.echo(f"the cutover of {pid} did not finish; putting the source back")
            with self.store.transaction() as session:
                records.set_phase(session, pid, [records.CUTTING_OVER], records.ROLLING_BACK, self.clock())
        elif row.phase == records.TARGET_LIVE:
            with self.store.transaction() as session:
                records.set_phase(session, pid, [records.TARGET_LIVE], records.ROLLING_BACK, self.clock())
        with self.store.reading() as session:
            row = records.get(session, pid) or row
            ran = records.ran_on(session, pid, self.target.backend, row.handoff_slot)
        handoff = max((slot for slot, _run in ran), default=row.handoff_slot)
        self.echo(f"hand-off slot back: {_iso(handoff) or 'none'} ({len(ran)} slot(s) ran on {self.target.backend})")
        source = self.source.observer
        for slot, run in ran:  # the source is paused: recording them starts nothing
            note = f"ran on {self.target.backend} as {run} (meta migrate)"
            source.mark_handled(pid, slot, records.run_key("handled", pid, slot), note)
        if row.source_was_paused:
            self.echo(f"{pid} was paused on {self.source.backend} before the cutover; it stays paused")
        else:
            self.echo(f"resuming {pid} on {self.source.backend}")
            source.set_paused(pid, False)
        now = self.clock()
        settle = (
            not row.source_was_paused
            and handoff is not None
            and self.pipeline.schedule is not None
            and not self.pipeline.depends_on
            and source.has_scheduler
        )
        # Until the source's own scheduler has a run after the hand-off, the control plane starts the slots it
        # would otherwise lose (Prefect creates runs only in the future): the engine settles them (``_settle``).
        first = owed_from(self.pipeline, handoff, now) if settle else None
        with self.store.transaction() as session:
            records.restart_sla_watch(session, self.source.backend, pid, now)
            records.set_phase(
                session, pid, [records.ROLLING_BACK], records.SHADOWING, now, handoff_slot=handoff, owed_from=first
            )
            records.append_history(
                session,
                pid,
                records.history_entry(
                    "rollback",
                    self.by,
                    now,
                    source=self.source.backend,
                    target=self.target.backend,
                    handoff_slot=handoff,
                ),
            )
        self.echo(f"{pid} is live on {self.source.backend} again; the shadow copy on {self.target.backend} resumes")
        return self._row()

    # ------------------------------------------------------------------------------------------ steps

    def _row(self) -> MigrationRow:
        with self.store.reading() as session:
            row = records.get(session, self.pipeline.id)
        if row is None:
            raise MetaError(
                f"{self.pipeline.id} is not being migrated: start with `meta migrate shadow {self.pipeline.id} "
                "--to BACKEND`"
            )
        return row

    def _pause_between_runs(self, side: Side, pid: str) -> None:
        """Pause ``pid``; where pausing would stall a run in flight, only while none is (else wait for it)."""
        observer = side.observer
        deadline = time.monotonic() + self.timeout
        while True:
            if not observer.pausing_stalls_runs:
                observer.set_paused(pid, True)
                return
            if observer.unfinished_runs(pid) == 0:
                observer.set_paused(pid, True)
                if observer.unfinished_runs(pid) == 0:
                    return
                observer.set_paused(pid, False)  # a run started meanwhile: let it finish on this side first
            if time.monotonic() > deadline:
                raise SwitchError(
                    f"{pid} on {side.backend} still has a run in flight after {self.timeout:.0f}s; run the command "
                    "again when it ended (nothing was switched)"
                )
            self.echo(f"waiting for {pid}'s run in flight on {side.backend} to end")
            self.sleep(max(self.poll, 2.0))

    def _stable(self, read: Callable[[], datetime | None]) -> datetime | None:
        last: object = object()
        agreeing = 0
        while agreeing < STABLE_READS:
            value = read()
            agreeing = agreeing + 1 if value == last else 1
            last = value
            if agreeing < STABLE_READS:
                self.sleep(self.poll)
        return last  # type: ignore[return-value]

    def _runnable(self, side: Side, pid: str) -> None:
        """Wait until ``side`` knows ``pid`` (Airflow parses a new DAG file within seconds) and make sure it is not
        paused (Airflow may create DAGs paused)."""
        observer = side.observer
        paused = self._wait(lambda: _known_paused(observer, pid), f"{side.backend} to load {pid}")
        if paused:
            observer.set_paused(pid, False)

    def _wait(self, read: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + self.timeout
        shown = False
        while True:
            value = read()
            if value is not None:
                return value
            if time.monotonic() > deadline:
                raise SwitchError(f"gave up waiting for {what} after {self.timeout:.0f}s; run the command again")
            if not shown:
                self.echo(f"waiting for {what}")
                shown = True
            self.sleep(self.poll)


def _known_paused(observer: Any, pid: str) -> bool | None:
    try:
        return bool(observer.is_paused(pid))
    except Exception:  # not there yet (404) or the backend busy: asked again
        return None


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value is not None else None
