"""The migration engine: what the control plane does for each pipeline being moved, every tick of the leader.

* ``shadowing``: for each live run on the source (with a logical date, since shadowing began) start the shadow copy
  on the target for the same logical date, with the live run's params, once (``records.claim_shadow``).
* ``target_live`` (after ``meta migrate cutover``): the target has no schedule of its own; start each schedule slot
  after the hand-off slot on the target, once (``records.claim_slot``), oldest first.
* any phase: finish claims a crash left ``triggering`` (same key: the backend starts nothing new), and compare each
  live/shadow pair once both runs ended (``comparer``; the result is stored with the pair).

Run as a companion of the dependency engine (same leader lease, same wake-ups on stored changes), so it costs no
thread and follows pushes within the second.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from meta.plugins.observers import BackendUnreachable, Triggerable
from meta.service.migrations import records
from meta.service.migrations.slots import owed
from meta.service.store.db import Store
from meta.service.store.orm import MigrationRow, MigrationRunRow, MigrationSlotRow, RunRow
from meta.spec.model import Pipeline

log = logging.getLogger("meta.service.migrations")
ENDED = ("success", "failed", "skipped", "upstream_failed", "cancelled")
ClaimRow = TypeVar("ClaimRow", MigrationRunRow, MigrationSlotRow)
Comparer = Callable[[Any, MigrationRow, MigrationRunRow, RunRow, RunRow], dict[str, Any]]


def utc_now() -> datetime:
    return datetime.now(UTC)


class MigrationEngine:
    def __init__(
        self,
        store: Store,
        pipelines: Sequence[Pipeline],
        triggerers: Mapping[str, Triggerable],
        *,
        params_of: Callable[[str, str, str], Mapping[str, Any] | None] | None = None,
        comparer: Comparer | None = None,
        holder: str = "migrations",
    ):
        self.store = store
        self.pipelines = {p.id: p for p in pipelines}
        self.triggerers = dict(triggerers)
        self.params_of = params_of
        self.comparer = comparer
        self.holder = holder

    def tick(self, now: datetime | None = None) -> int:
        """One pass over every migration; returns the runs started (or confirmed) by it."""
        now = now or utc_now()
        with self.store.reading() as session:
            migrations = records.every(session)
        started = 0
        for migration in migrations:
            try:
                if migration.phase == records.SHADOWING:
                    started += self._shadow(migration, now)
                    if migration.owed_from is not None:
                        started += self._settle(migration, now)
                elif migration.phase == records.TARGET_LIVE:
                    started += self._drive(migration, now)
            except Exception:  # one pipeline's trouble (a backend down) must not stop the others
                log.exception("migration of %s: tick failed; retrying", migration.pipeline_id)
        started += self._finish_unfinished(now)
        self._compare_ended(now)
        return started

    # ------------------------------------------------------------------------------------------ shadowing

    def _shadow(self, migration: MigrationRow, now: datetime) -> int:
        with self.store.reading() as session:
            live_runs = records.live_runs_to_shadow(session, migration)
        started = 0
        for live in live_runs:
            with self.store.transaction() as session:
                row = records.claim_shadow(session, migration, live, now)
            if row is None:
                continue
            log.info(
                "shadowing %s %s (%s on %s) on %s as %s",
                migration.pipeline_id,
                live.logical_date,
                live.run_id,
                live.backend,
                migration.target_backend,
                migration.shadow_id,
            )
            started += self._start_shadow(row, now)
        return started

    def _start_shadow(self, row: MigrationRunRow, now: datetime) -> int:
        params = self._live_params(row)
        outcome = self._ask(row.shadow_backend, row.shadow_pipeline, row.trigger_key, params, row.logical_date)
        return record_outcome(self.store, MigrationRunRow, row.id, "shadow_run_id", outcome, now)

    def _live_params(self, row: MigrationRunRow) -> dict[str, Any]:
        if self.params_of is None:
            return {}
        try:
            given = self.params_of(row.live_backend, row.pipeline_id, row.live_run_id) or {}
        except Exception:  # params are a courtesy: the shadow then runs with its defaults, as the report shows
            log.warning("could not read the params of %s %s", row.pipeline_id, row.live_run_id)
            return {}
        pipeline = self.pipelines.get(row.pipeline_id)
        return {k: v for k, v in given.items() if pipeline is None or k in pipeline.params}

    # ------------------------------------------------------------------------------------------ target live

    def _drive(self, migration: MigrationRow, now: datetime) -> int:
        pipeline = self.pipelines.get(migration.pipeline_id)
        if pipeline is None or pipeline.schedule is None or migration.owed_from is None:
            return 0
        if pipeline.depends_on:  # started by the dependency engine where it is live (routing)
            return 0
        with self.store.reading() as session:
            newest = records.newest_slot(session, migration.pipeline_id)
        after = max((d for d in (newest, migration.handoff_slot) if d is not None), default=None)
        started = 0
        for slot in owed(pipeline, after, migration.owed_from, now):
            with self.store.transaction() as session:
                row = records.claim_slot(session, migration, migration.target_backend, slot, now)
            if row is None:
                continue
            log.info("starting %s's slot %s on %s (the control plane schedules it)", pipeline.id, row.slot, row.backend)
            started += self._start_slot(row, now)
        return started

    def _settle(self, migration: MigrationRow, now: datetime) -> int:
        """After a rollback: start each slot after the hand-off that the source has no run for, until its own
        scheduler has planned a run (its ``next_native_slot``); then the source schedules alone.

        Safe against the source's scheduler: a slot is started only once it is due (Prefect creates runs ahead of
        time, never for a time past; Airflow keeps one run per logical date), and only when the source, asked
        directly, has no run for it."""
        pipeline = self.pipelines.get(migration.pipeline_id)
        source = self.triggerers.get(migration.source_backend)
        if pipeline is None or source is None or migration.owed_from is None:
            return 0
        native = source.next_native_slot(migration.pipeline_id)  # type: ignore[attr-defined]
        with self.store.reading() as session:
            newest = records.newest_slot(session, migration.pipeline_id)
        after = max((d for d in (newest, migration.handoff_slot) if d is not None), default=None)
        started = 0
        for slot in owed(pipeline, after, migration.owed_from, now):
            if native is not None and slot >= native:
                break
            if source.has_run_at(migration.pipeline_id, slot):  # type: ignore[attr-defined]
                continue
            with self.store.transaction() as session:
                row = records.claim_slot(
                    session, migration, migration.source_backend, slot, now, phase=records.SHADOWING
                )
            if row is not None:
                log.info(
                    "starting %s's slot %s on %s (before its own scheduler resumes)", pipeline.id, slot, row.backend
                )
                started += self._start_slot(row, now)
        if native is not None and (after is None or native > after):
            with self.store.transaction() as session:  # the source's scheduler took over: nothing more to settle
                records.set_phase(
                    session, migration.pipeline_id, [records.SHADOWING], records.SHADOWING, now, owed_from=None
                )
        return started

    def _start_slot(self, row: MigrationSlotRow, now: datetime) -> int:
        return start_slot(self.store, self.triggerers, row, now)

    # ------------------------------------------------------------------------------------------ both

    def _ask(
        self, backend: str, pipeline_id: str, key: str, params: Mapping[str, Any], logical_date: datetime | None
    ) -> str:
        return ask(self.triggerers, backend, pipeline_id, key, params, logical_date)

    def _finish_unfinished(self, now: datetime) -> int:
        with self.store.reading() as session:
            shadows, slots = records.pending_shadows(session), records.pending_slots(session)
        done = 0
        for shadow in shadows:
            if shadow.attempts and (now - shadow.updated_at).total_seconds() < min(60, 2**shadow.attempts):
                continue  # back off on a target that keeps refusing
            done += self._start_shadow(shadow, now)
        for slot in slots:
            if slot.attempts and (now - slot.updated_at).total_seconds() < min(60, 2**slot.attempts):
                continue
            done += self._start_slot(slot, now)
        return done

    def _compare_ended(self, now: datetime) -> None:
        if self.comparer is None:
            return
        with self.store.reading() as session:
            waiting = records.uncompared(session)
        for pair in waiting:
            with self.store.reading() as session:
                live = records.run_of(session, pair.live_backend, pair.pipeline_id, pair.live_run_id)
                shadow = records.run_of(session, pair.shadow_backend, pair.shadow_pipeline, pair.shadow_run_id)
                migration = records.get(session, pair.pipeline_id)
            if live is None or shadow is None or migration is None:
                continue
            if live.state not in ENDED or shadow.state not in ENDED:
                continue
            try:
                with self.store.reading() as session:
                    comparison = self.comparer(session, migration, pair, live, shadow)
            except Exception:  # a warehouse that is down: compared on a later tick
                log.exception("comparing %s %s failed; retrying", pair.pipeline_id, pair.logical_date)
                continue
            with self.store.transaction() as session:
                found = session.get(MigrationRunRow, pair.id)
                if found is not None and found.comparison is None:
                    found.comparison, found.compared_at = comparison, now


class _Failed(str):
    """An error text where a run id was expected (``ask``)."""


def ask(
    triggerers: Mapping[str, Triggerable],
    backend: str,
    pipeline_id: str,
    key: str,
    params: Mapping[str, Any],
    logical_date: datetime | None,
) -> str:
    """The run id the backend started (or had started) for ``key``; a ``_Failed`` text when it could not be asked:
    the claim stays ``triggering`` and is retried with the same key."""
    triggerer = triggerers.get(backend)
    if triggerer is None:
        return _Failed(f"backend {backend!r} cannot start runs")
    try:
        return triggerer.trigger(pipeline_id, key, params, logical_date).run_id
    except Exception as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]
        if not isinstance(exc, BackendUnreachable):
            log.warning("starting %s on %s (%s) failed: %s; retrying", pipeline_id, backend, key, reason)
        return _Failed(reason)


def start_slot(store: Store, triggerers: Mapping[str, Triggerable], row: MigrationSlotRow, now: datetime) -> int:
    """Ask the slot's backend for its run (claimed before) and record the run: 1 when it is started."""
    outcome = ask(triggerers, row.backend, row.pipeline_id, row.trigger_key, {}, row.slot)
    return record_outcome(store, MigrationSlotRow, row.id, "run_id", outcome, now)


def record_outcome(
    store: Store, table: type[ClaimRow], row_id: int, run_field: str, outcome: str, now: datetime
) -> int:
    """A claimed row after its backend was asked: ``triggered`` with the run (1), or still ``triggering`` with the
    error and one more attempt (0: retried with the same key)."""
    with store.transaction() as session:
        found = session.get(table, row_id)
        if found is None:
            return 0
        found.updated_at = now
        if isinstance(outcome, _Failed):
            found.attempts, found.error = found.attempts + 1, str(outcome)
            return 0
        setattr(found, run_field, outcome)
        found.state, found.triggered_at, found.error = records.TRIGGERED, now, None
    return 1
