"""The migration tables (``migrations``, ``migration_runs``, ``migration_slots``) and the claims that make each
shadow run and each driven slot start once.

A shadow run or a driven slot is claimed by inserting its row (``triggering``) under a unique key (pipeline, logical
date / slot): of two replicas, or of a restarted engine and a stale one, exactly one inserts it. The backend is then
asked with a key deterministic in that row, and the row is marked ``triggered``; a row left ``triggering`` (a crash
after the claim) is asked again with the same key, which the backend answers with the run it already started.

A driven slot is claimed only while the migration is ``target_live``, in the same transaction that checks it (an
UPDATE of the migration row, which PostgreSQL locks and SQLite serialises): a rollback that flips the phase first
sees every slot claimed before it and no slot is claimed after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from meta.service.store.orm import (
    DependencyTrackingRow,
    DependencyWaitRow,
    MigrationRow,
    MigrationRunRow,
    MigrationSlotRow,
    RunRow,
    SlaTrackingRow,
)
from meta.service.store.queries import _insert

SHADOWING, CUTTING_OVER, TARGET_LIVE, ROLLING_BACK = "shadowing", "cutting_over", "target_live", "rolling_back"
PHASES = (SHADOWING, CUTTING_OVER, TARGET_LIVE, ROLLING_BACK)
TRIGGERING, TRIGGERED = "triggering", "triggered"
HANDLED_PREFIX = "meta-handled-"  # run ids of the runs a rollback records on the source (``run_key("handled", ...)``)


def run_key(kind: str, pipeline_id: str, when: datetime) -> str:
    """``meta-shadow-20261204T060000Z-<hash>`` / ``meta-slot-...``: a run id within Airflow's alphabet, readable,
    and deterministic in (kind, pipeline, logical date), so a retry names the run the first try started."""
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.sha256(f"{kind}\x00{pipeline_id}\x00{stamp}".encode()).hexdigest()[:12]
    return f"meta-{kind}-{stamp}-{digest}"


# ---------------------------------------------------------------------------------------------- migrations


def get(session: Session, pipeline_id: str) -> MigrationRow | None:
    return session.get(MigrationRow, pipeline_id)


def live_backend(row: MigrationRow) -> str:
    """The backend the pipeline is live on: the target once cut over, else the source."""
    return row.target_backend if row.phase == TARGET_LIVE else row.source_backend


def every(session: Session) -> list[MigrationRow]:
    return list(session.scalars(select(MigrationRow).order_by(MigrationRow.pipeline_id)))


def history_entry(action: str, by: str, now: datetime, **detail: Any) -> dict[str, Any]:
    entry = {"action": action, "by": by, "at": now.astimezone(UTC).isoformat(timespec="seconds")}
    entry.update(
        {
            k: (v.astimezone(UTC).isoformat(timespec="seconds") if isinstance(v, datetime) else v)
            for k, v in detail.items()
        }
    )
    return entry


def set_phase(
    session: Session, pipeline_id: str, expected: Sequence[str], phase: str, now: datetime, **values: Any
) -> bool:
    """Move the migration to ``phase`` if it is in one of ``expected`` (a conditional UPDATE: one caller wins)."""
    result = session.execute(
        update(MigrationRow)
        .where(MigrationRow.pipeline_id == pipeline_id, MigrationRow.phase.in_(list(expected)))
        .values(phase=phase, updated_at=now, **values)
    )
    return bool(getattr(result, "rowcount", 0))


def append_history(session: Session, pipeline_id: str, entry: dict[str, Any]) -> None:
    row = session.get(MigrationRow, pipeline_id)
    if row is not None:
        row.history = [*(row.history or []), entry]


# ---------------------------------------------------------------------------------------------- shadow runs


def live_runs_to_shadow(session: Session, migration: MigrationRow) -> list[RunRow]:
    """The source's runs of the pipeline with a logical date, queued or started since shadowing began, that have
    no shadow yet (oldest first)."""
    since = migration.shadow_since
    shadowed = select(MigrationRunRow.logical_date).where(MigrationRunRow.pipeline_id == migration.pipeline_id)
    rows = session.scalars(
        select(RunRow)
        .where(
            RunRow.backend == migration.source_backend,
            RunRow.pipeline_id == migration.pipeline_id,
            RunRow.logical_date.is_not(None),
            or_(RunRow.logical_date >= since, RunRow.queued_at >= since, RunRow.started_at >= since),
            RunRow.logical_date.not_in(shadowed),
            RunRow.run_id.not_like(f"{HANDLED_PREFIX}%"),  # a slot the target ran, recorded on the source
        )
        .order_by(RunRow.logical_date)
    )
    return list(rows)


def claim_shadow(session: Session, migration: MigrationRow, live: RunRow, now: datetime) -> MigrationRunRow | None:
    """The pair's row, inserted ``triggering``; None when another caller claimed this logical date first."""
    assert live.logical_date is not None
    key = run_key("shadow", migration.pipeline_id, live.logical_date)
    statement = (
        _insert(session)(MigrationRunRow)
        .values(
            pipeline_id=migration.pipeline_id,
            logical_date=live.logical_date,
            live_backend=live.backend,
            live_run_id=live.run_id,
            shadow_backend=migration.target_backend,
            shadow_pipeline=migration.shadow_id,
            trigger_key=key,
            state=TRIGGERING,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["pipeline_id", "logical_date"])
    )
    if not getattr(session.execute(statement), "rowcount", 0):
        return None
    return session.scalars(
        select(MigrationRunRow).where(
            MigrationRunRow.pipeline_id == migration.pipeline_id, MigrationRunRow.logical_date == live.logical_date
        )
    ).one()


def run_of(session: Session, backend: str, pipeline_id: str, run_id: str | None) -> RunRow | None:
    if run_id is None:
        return None
    return session.scalars(
        select(RunRow).where(RunRow.backend == backend, RunRow.pipeline_id == pipeline_id, RunRow.run_id == run_id)
    ).first()


def pending_shadows(session: Session) -> list[MigrationRunRow]:
    return list(session.scalars(select(MigrationRunRow).where(MigrationRunRow.state == TRIGGERING)))


def pairs(session: Session, pipeline_id: str) -> list[MigrationRunRow]:
    return list(
        session.scalars(
            select(MigrationRunRow)
            .where(MigrationRunRow.pipeline_id == pipeline_id)
            .order_by(MigrationRunRow.logical_date)
        )
    )


def uncompared(session: Session) -> list[MigrationRunRow]:
    return list(
        session.scalars(
            select(MigrationRunRow).where(MigrationRunRow.state == TRIGGERED, MigrationRunRow.comparison.is_(None))
        )
    )


# ---------------------------------------------------------------------------------------------- driven slots


def claim_slot(
    session: Session, migration: MigrationRow, backend: str, slot: datetime, now: datetime, phase: str = TARGET_LIVE
) -> MigrationSlotRow | None:
    """The slot's row, inserted ``triggering`` for ``backend``, only while the migration is still in ``phase``
    (checked by an UPDATE in this transaction); None when the phase moved on or the slot is already claimed."""
    still_live = session.execute(
        update(MigrationRow)
        .where(MigrationRow.pipeline_id == migration.pipeline_id, MigrationRow.phase == phase)
        .values(updated_at=now)
    )
    if not getattr(still_live, "rowcount", 0):
        return None
    statement = (
        _insert(session)(MigrationSlotRow)
        .values(
            pipeline_id=migration.pipeline_id,
            slot=slot,
            backend=backend,
            trigger_key=run_key("slot", migration.pipeline_id, slot),
            state=TRIGGERING,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["pipeline_id", "slot"])
    )
    if not getattr(session.execute(statement), "rowcount", 0):
        return None
    return session.scalars(
        select(MigrationSlotRow).where(
            MigrationSlotRow.pipeline_id == migration.pipeline_id, MigrationSlotRow.slot == slot
        )
    ).one()


def newest_slot(session: Session, pipeline_id: str) -> datetime | None:
    row = session.scalars(
        select(MigrationSlotRow.slot)
        .where(MigrationSlotRow.pipeline_id == pipeline_id)
        .order_by(MigrationSlotRow.slot.desc())
        .limit(1)
    ).first()
    return row


def pending_slots(session: Session) -> list[MigrationSlotRow]:
    return list(session.scalars(select(MigrationSlotRow).where(MigrationSlotRow.state == TRIGGERING)))


def slots(session: Session, pipeline_id: str) -> list[MigrationSlotRow]:
    return list(
        session.scalars(
            select(MigrationSlotRow).where(MigrationSlotRow.pipeline_id == pipeline_id).order_by(MigrationSlotRow.slot)
        )
    )


def ran_on(session: Session, pipeline_id: str, backend: str, after: datetime | None) -> list[tuple[datetime, str]]:
    """(slot, run) the control plane started (or is starting) on ``backend`` after the hand-off ``after``: schedule
    slots it drove, and the logical dates the dependency engine started there (a pipeline with ``depends_on``)."""
    found: dict[datetime, str] = {}
    for slot in slots(session, pipeline_id):
        if slot.backend == backend and (after is None or slot.slot > after):
            found[slot.slot] = slot.run_id or slot.trigger_key
    waits = session.scalars(
        select(DependencyWaitRow).where(
            DependencyWaitRow.backend == backend,
            DependencyWaitRow.pipeline_id == pipeline_id,
            DependencyWaitRow.state.in_(["triggering", "triggered"]),
            DependencyWaitRow.logical_date.is_not(None),
        )
    )
    for wait in waits:
        assert wait.logical_date is not None
        if after is None or wait.logical_date > after:
            found.setdefault(wait.logical_date, wait.run_id or wait.trigger_key or wait.slot)
    return sorted(found.items())


def track_dependencies_from(session: Session, backend: str, pipeline_id: str, since: datetime) -> None:
    """The dependency engine counts upstream successes for (backend, pipeline) from ``since`` on (a cutover: from
    the moment the source was paused, so an upstream ending during the switch is not lost)."""
    statement = _insert(session)(DependencyTrackingRow).values(backend=backend, pipeline_id=pipeline_id, since=since)
    session.execute(statement.on_conflict_do_update(index_elements=["backend", "pipeline_id"], set_={"since": since}))


def restart_sla_watch(session: Session, backend: str, pipeline_id: str, since: datetime) -> None:
    """The SLA engine announces misses of (backend, pipeline) only from ``since`` on: a side taking over is not paged
    for slots the other side ran (the slots of a switch are judged where they ran)."""
    statement = _insert(session)(SlaTrackingRow).values(backend=backend, subject=pipeline_id, since=since)
    session.execute(statement.on_conflict_do_update(index_elements=["backend", "subject"], set_={"since": since}))
