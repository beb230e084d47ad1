"""The SLA engine's rows: when watching began, each slot's state, and the notices each miss owes.

Everything that decides "this is a new miss" happens in SQL, not in memory: ``missed_at`` and ``resolved_at`` are
kept by ``COALESCE`` in the upsert, and notices are inserted with ``ON CONFLICT DO NOTHING`` on their unique key, so
a restarted engine (or a second one) that judges the same slot again neither forgets nor repeats anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from meta.semantics.sla import AT_RISK, MISSED, SlotStatus
from meta.service.sla.subjects import WatchedSubject
from meta.service.store.orm import SlaNoticeRow, SlaSlotRow, SlaTrackingRow
from meta.service.store.queries import CHANGE_COUNTER, _insert, _reserve

MISS, ESCALATION, RECOVERY = "miss", "escalation", "recovery"
DUE, SENT, NATIVE, CANCELLED, FAILED, RATE_LIMITED = "due", "sent", "native", "cancelled", "failed", "rate_limited"

SlotKey = tuple[str, str, str, str]  # backend, subject, kind, slot
CHUNK = 500


@dataclass
class SlotMemory:
    """What the engine last wrote for a slot: it rewrites a row only when one of these changes."""

    state: str
    deadline: datetime | None
    run_id: str | None
    missed: bool
    resolved: bool


def tracking_since(session: Session, subjects: list[WatchedSubject], now: datetime) -> dict[tuple[str, str], datetime]:
    """When watching began for each subject (inserted as ``now`` for new ones)."""
    keys = [s.key for s in subjects]
    if keys:
        statement = _insert(session)(SlaTrackingRow).on_conflict_do_nothing(index_elements=["backend", "subject"])
        session.execute(statement, [{"backend": b, "subject": s, "since": now} for b, s in sorted(set(keys))])
    rows = session.execute(select(SlaTrackingRow.backend, SlaTrackingRow.subject, SlaTrackingRow.since))
    return {(b, s): since for b, s, since in rows}


def remembered(session: Session, since: datetime) -> dict[SlotKey, SlotMemory]:
    """Slots updated since ``since``: the engine's starting memory after a restart."""
    rows = session.scalars(select(SlaSlotRow).where(SlaSlotRow.updated_at >= since))
    return {
        (r.backend, r.subject, r.kind, r.slot): SlotMemory(
            r.state, r.deadline, r.run_id, r.missed_at is not None, r.resolved_at is not None
        )
        for r in rows
    }


def memory_of(status: SlotStatus, missed: bool) -> SlotMemory:
    return SlotMemory(
        MISSED if missed else status.state,
        status.deadline,
        status.run_id,
        missed,
        missed and status.resolved_at is not None,
    )


def write_slots(
    session: Session, items: list[tuple[WatchedSubject, SlotStatus]], now: datetime
) -> list[tuple[bool, bool]]:
    """Upsert each (subject, status); returns (newly missed, newly resolved) for each, in order. One read of what
    is stored and one upsert per chunk, whatever the number of subjects (a first start writes thousands)."""
    if not items:
        return []
    before = _stored(session, items)
    seq = _reserve(session, CHANGE_COUNTER, len(items))
    rows, out = [], []
    for i, (subject, status) in enumerate(items):
        held = before.get((*subject.key, status.kind, status.slot))
        was_missed = held is not None and held[0] is not None
        was_resolved = held is not None and held[1] is not None
        missed = was_missed or status.state == MISSED
        resolved = missed and (was_resolved or status.resolved_at is not None)
        rows.append(
            {
                "backend": subject.backend,
                "subject": subject.subject,
                "team": subject.team,
                "kind": status.kind,
                "slot": status.slot,
                "state": MISSED if missed else status.state,
                "deadline": status.deadline,
                "detail": status.detail[:1000],
                "run_id": status.run_id,
                "task_id": status.task_id,
                "first_at_risk_at": now if status.state == AT_RISK else None,
                "missed_at": now if status.state == MISSED else None,
                "resolved_at": status.resolved_at if missed else None,
                "updated_at": now,
                "change_seq": seq + i,
            }
        )
        out.append((missed and not was_missed, resolved and not was_resolved))
    for start in range(0, len(rows), CHUNK):
        _upsert_slots(session, rows[start : start + CHUNK])
    return out


def _stored(
    session: Session, items: list[tuple[WatchedSubject, SlotStatus]]
) -> dict[SlotKey, tuple[datetime | None, datetime | None]]:
    """(missed_at, resolved_at) of the stored rows among ``items``' slots."""
    wanted = {(*subject.key, status.kind, status.slot) for subject, status in items}
    by_backend: dict[str, set[str]] = {}
    for backend, name, _kind, _slot in wanted:
        by_backend.setdefault(backend, set()).add(name)
    slots = sorted({slot for *_, slot in wanted})
    out = {}
    for backend, names in by_backend.items():
        ordered = sorted(names)
        for start in range(0, len(ordered), CHUNK):
            for row in session.execute(
                select(
                    SlaSlotRow.subject, SlaSlotRow.kind, SlaSlotRow.slot, SlaSlotRow.missed_at, SlaSlotRow.resolved_at
                ).where(
                    SlaSlotRow.backend == backend,
                    SlaSlotRow.subject.in_(ordered[start : start + CHUNK]),
                    SlaSlotRow.slot.in_(slots) if len(slots) <= CHUNK else SlaSlotRow.slot.is_not(None),
                )
            ):
                key = (backend, row.subject, row.kind, row.slot)
                if key in wanted:
                    out[key] = (row.missed_at, row.resolved_at)
    return out


def _upsert_slots(session: Session, rows: list[dict[str, Any]]) -> None:
    statement = _insert(session)(SlaSlotRow)
    excluded, target = statement.excluded, SlaSlotRow.__table__.c
    keep = ("first_at_risk_at", "missed_at", "resolved_at")
    updates = {
        column: (func.coalesce(target[column], excluded[column]) if column in keep else excluded[column])
        for column in rows[0]
        if column not in ("backend", "subject", "kind", "slot")
    }
    # a recorded miss stays a miss, whatever a later judgement says (the history must not change)
    updates["state"] = case((target.missed_at.is_not(None), MISSED), else_=excluded.state)
    statement = statement.on_conflict_do_update(index_elements=["backend", "subject", "kind", "slot"], set_=updates)
    session.execute(statement, rows)


def owe_notices(
    session: Session,
    subject: WatchedSubject,
    status: SlotStatus,
    newly_missed: bool,
    newly_resolved: bool,
    now: datetime,
) -> None:
    """The notices a change of ``status`` owes, each inserted once (the unique key absorbs any repetition)."""
    backend, name = subject.key
    base = {"backend": backend, "subject": name, "kind": status.kind, "slot": status.slot, "attempts": 0}
    rows = []
    if newly_missed:
        native = status.kind in subject.native
        rows.append(
            {
                **base,
                "stage": MISS,
                "channels": list(subject.channels),
                "status": NATIVE if native else DUE,
                "due_at": now,
            }
        )
        if subject.escalation is not None and status.resolved_at is None:
            rows.append(
                {
                    **base,
                    "stage": ESCALATION,
                    "channels": list(subject.escalation.channels),
                    "status": DUE,
                    "due_at": now + subject.escalation.after,
                }
            )
    if newly_resolved:
        same_slot = (
            SlaNoticeRow.backend == backend,
            SlaNoticeRow.subject == name,
            SlaNoticeRow.kind == status.kind,
            SlaNoticeRow.slot == status.slot,
        )
        session.execute(
            update(SlaNoticeRow)
            .where(*same_slot, SlaNoticeRow.stage == ESCALATION, SlaNoticeRow.status == DUE)
            .values(status=CANCELLED)
        )
        escalated = session.scalar(
            select(SlaNoticeRow.channels).where(
                *same_slot, SlaNoticeRow.stage == ESCALATION, SlaNoticeRow.status == SENT
            )
        )
        announced = session.scalar(select(SlaNoticeRow.id).where(*same_slot, SlaNoticeRow.stage == MISS))
        if announced is not None or newly_missed:  # a recovery only follows a miss someone was told about
            channels = list(dict.fromkeys([*subject.channels, *(escalated or [])]))
            rows.append({**base, "stage": RECOVERY, "channels": channels, "status": DUE, "due_at": now})
    rows = [r for r in rows if r["channels"] or r["status"] == NATIVE]
    if rows:
        statement = _insert(session)(SlaNoticeRow).on_conflict_do_nothing(
            index_elements=["backend", "subject", "kind", "slot", "stage"]
        )
        session.execute(statement, rows)


def due_notices(session: Session, now: datetime, limit: int = 100) -> list[SlaNoticeRow]:
    return list(
        session.scalars(
            select(SlaNoticeRow)
            .where(SlaNoticeRow.status == DUE, SlaNoticeRow.due_at <= now)
            .order_by(SlaNoticeRow.due_at, SlaNoticeRow.id)
            .limit(limit)
        )
    )


def slot_of(session: Session, notice: SlaNoticeRow) -> SlaSlotRow | None:
    return session.scalar(
        select(SlaSlotRow).where(
            SlaSlotRow.backend == notice.backend,
            SlaSlotRow.subject == notice.subject,
            SlaSlotRow.kind == notice.kind,
            SlaSlotRow.slot == notice.slot,
        )
    )


def settle(
    session: Session,
    notice_id: int,
    status: str,
    outcome: list[dict[str, str | None]],
    now: datetime,
    retry_in: timedelta | None = None,
) -> None:
    """Record a delivery: ``status`` final, or still due in ``retry_in`` when a channel failed."""
    values: dict[str, object] = {"outcome": outcome, "attempts": SlaNoticeRow.attempts + 1}
    if retry_in is not None:
        values["due_at"] = now + retry_in
    else:
        values["status"] = status
        values["sent_at"] = now if status == SENT else None
    session.execute(update(SlaNoticeRow).where(SlaNoticeRow.id == notice_id).values(**values))
