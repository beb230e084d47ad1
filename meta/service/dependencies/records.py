"""The dependency engine's rows (``dependency_tracking``, ``dependency_waits``) and the claims that make each action
happen once.

A wait row moves ``waiting`` -> ``triggering`` -> ``triggered``, or ``waiting`` -> ``timed_out``. Each move out of
``waiting`` is a conditional UPDATE (``... WHERE state = 'waiting'``): of two replicas, or of a restarted engine and
a stale one, exactly one wins it. A row left ``triggering`` (the engine died after the claim) is triggered again with
the same deterministic key, which the backend answers with the run it already started.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from meta.semantics.dependencies import UpstreamRun, Wait, slot_key
from meta.service.store.orm import DependencyTrackingRow, DependencyWaitRow, RunRow
from meta.service.store.queries import CHANGE_COUNTER, _insert, _reserve

WAITING, TRIGGERING, TRIGGERED, TIMED_OUT = "waiting", "triggering", "triggered", "timed_out"
ALERT_DUE, ALERT_IN_FLIGHT, ALERT_SENT, ALERT_FAILED, ALERT_NONE = "due", "in_flight", "sent", "failed", "none"
Subject = tuple[str, str]  # (backend, downstream pipeline id)


def tracking_since(session: Session, subjects: Sequence[Subject], now: datetime) -> dict[Subject, datetime]:
    """When driving began for each subject (``now`` for new ones; kept across restarts)."""
    if subjects:
        statement = _insert(session)(DependencyTrackingRow).on_conflict_do_nothing(
            index_elements=["backend", "pipeline_id"]
        )
        session.execute(statement, [{"backend": b, "pipeline_id": p, "since": now} for b, p in sorted(set(subjects))])
    rows = session.execute(
        select(DependencyTrackingRow.backend, DependencyTrackingRow.pipeline_id, DependencyTrackingRow.since)
    )
    return {(b, p): since for b, p, since in rows}


def rows_of(session: Session, subject: Subject, slots: Sequence[str]) -> dict[str, DependencyWaitRow]:
    if not slots:
        return {}
    backend, pipeline = subject
    found = session.scalars(
        select(DependencyWaitRow).where(
            DependencyWaitRow.backend == backend,
            DependencyWaitRow.pipeline_id == pipeline,
            DependencyWaitRow.slot.in_(list(slots)),
        )
    )
    return {row.slot: row for row in found}


def settle_run_keys(
    session: Session, subject: Subject, runs: Sequence[UpstreamRun], waits: Sequence[Wait]
) -> list[Wait]:
    """``waits`` without the slots already handled under another key. A run seen without its logical date (a pushed
    state, past ``facts.DATE_GRACE``) got a wait keyed by the run (``run:<backend>:<id>``); once its date is known,
    its slot is the date's. A run-keyed wait still waiting is dropped, replaced by the date's (else it would wait
    until its timeout and alert for nothing); one already claimed or triggered keeps the run, and the date's wait
    is not recorded, so nothing starts twice. The delete is conditional: of two replicas, a claim that won keeps
    it."""
    dated = {slot_key(None, r): slot_key(r.logical_date) for r in runs if r.logical_date is not None}
    handled = set()
    for key, row in rows_of(session, subject, list(dated)).items():
        removed = session.execute(
            delete(DependencyWaitRow).where(DependencyWaitRow.id == row.id, DependencyWaitRow.state == WAITING)
        )
        if not removed.rowcount:  # type: ignore[attr-defined]
            handled.add(dated[key])
    handled -= set(rows_of(session, subject, sorted(handled)))  # the date's own wait, if stored, stays in charge
    return [w for w in waits if w.slot not in handled]


def record_waits(
    session: Session, subject: Subject, team: str | None, waits: Sequence[Wait], now: datetime
) -> dict[str, DependencyWaitRow]:
    """Insert new slots and refresh what still-waiting ones wait for; returns slot -> row (every slot of ``waits``).
    Rows past ``waiting`` are history: their fields are not rewritten."""
    existing = rows_of(session, subject, [w.slot for w in waits])
    fresh = [w for w in waits if w.slot not in existing]
    stale = [
        (existing[w.slot], w)
        for w in waits
        if w.slot in existing and existing[w.slot].state == WAITING and _fields(w) != _row_fields(existing[w.slot])
    ]
    seq = _reserve(session, CHANGE_COUNTER, len(fresh) + len(stale))
    backend, pipeline = subject
    if fresh:
        statement = _insert(session)(DependencyWaitRow).on_conflict_do_nothing(
            index_elements=["backend", "pipeline_id", "slot"]
        )
        session.execute(
            statement,
            [
                {
                    "backend": backend,
                    "pipeline_id": pipeline,
                    "team": team,
                    "slot": w.slot,
                    "logical_date": w.logical_date,
                    "state": WAITING,
                    "attempts": 0,
                    "updated_at": now,
                    "change_seq": seq + i,
                    **_fields(w),
                }
                for i, w in enumerate(fresh)
            ],
        )
    for i, (row, wait) in enumerate(stale, start=len(fresh)):
        session.execute(
            update(DependencyWaitRow)
            .where(DependencyWaitRow.id == row.id, DependencyWaitRow.state == WAITING)
            .values(updated_at=now, change_seq=seq + i, **_fields(wait))
        )
    return rows_of(session, subject, [w.slot for w in waits])


def _fields(wait: Wait) -> dict[str, Any]:
    return {
        "since": wait.since,
        "until": wait.until,
        "waiting_for": [n.as_json() for n in wait.needs],
        "upstream_runs": [
            {"backend": r.backend, "pipeline": r.pipeline_id, "run_id": r.run_id} for r in wait.upstream_runs
        ],
    }


def _row_fields(row: DependencyWaitRow) -> dict[str, Any]:
    return {"since": row.since, "until": row.until, "waiting_for": row.waiting_for, "upstream_runs": row.upstream_runs}


def claim(session: Session, row_id: int, to_state: str, holder: str, now: datetime, **values: Any) -> bool:
    """Move a waiting row to ``to_state`` if nobody else did: True for the one caller that won."""
    seq = _reserve(session, CHANGE_COUNTER, 1)
    won = session.execute(
        update(DependencyWaitRow)
        .where(DependencyWaitRow.id == row_id, DependencyWaitRow.state == WAITING)
        .values(state=to_state, claimed_by=holder, updated_at=now, change_seq=seq, **values)
        .returning(DependencyWaitRow.id)
        .execution_options(synchronize_session=False)
    ).first()
    return won is not None


def settle(session: Session, row_id: int, now: datetime, **values: Any) -> None:
    seq = _reserve(session, CHANGE_COUNTER, 1)
    session.execute(
        update(DependencyWaitRow)
        .where(DependencyWaitRow.id == row_id)
        .values(updated_at=now, change_seq=seq, **values)
        .execution_options(synchronize_session=False)
    )


def unfinished(session: Session, limit: int = 200) -> list[DependencyWaitRow]:
    """Rows claimed for a trigger that has not been confirmed (a crash, a backend that was down)."""
    return list(session.scalars(select(DependencyWaitRow).where(DependencyWaitRow.state == TRIGGERING).limit(limit)))


def alerts_due(session: Session, limit: int = 100) -> list[DependencyWaitRow]:
    return list(
        session.scalars(
            select(DependencyWaitRow)
            .where(DependencyWaitRow.alert_status.in_([ALERT_DUE, ALERT_IN_FLIGHT]))
            .order_by(DependencyWaitRow.id)
            .limit(limit)
        )
    )


def waits_of(
    session: Session, pipeline_id: str, teams: frozenset[str] | None, limit: int = 50
) -> list[DependencyWaitRow]:
    """The newest waits of a downstream pipeline (any backend), for ``meta why`` and the API."""
    query = select(DependencyWaitRow).where(DependencyWaitRow.pipeline_id == pipeline_id)
    if teams is not None:
        query = query.where(DependencyWaitRow.team.in_(sorted(teams)))
    return list(
        session.scalars(query.order_by(DependencyWaitRow.since.desc(), DependencyWaitRow.id.desc()).limit(limit))
    )


def newest_started(session: Session, subject: Subject) -> datetime | None:
    """The logical date of the newest slot of ``subject`` already claimed (a driven schedule continues after it)."""
    backend, pipeline = subject
    return session.scalar(
        select(func.max(DependencyWaitRow.logical_date)).where(
            DependencyWaitRow.backend == backend,
            DependencyWaitRow.pipeline_id == pipeline,
            DependencyWaitRow.state != WAITING,
        )
    )


def active_runs(session: Session, subject: Subject) -> int:
    """Runs the engine started for ``subject`` that have not been observed to end (a claim not yet confirmed, a run
    not yet observed, a run still going): what ``max_active_runs`` counts."""
    backend, pipeline = subject
    joined = (
        select(func.count())
        .select_from(DependencyWaitRow)
        .outerjoin(
            RunRow,
            (RunRow.backend == DependencyWaitRow.backend)
            & (RunRow.pipeline_id == DependencyWaitRow.pipeline_id)
            & (RunRow.run_id == DependencyWaitRow.run_id),
        )
        .where(
            DependencyWaitRow.backend == backend,
            DependencyWaitRow.pipeline_id == pipeline,
            DependencyWaitRow.state.in_([TRIGGERING, TRIGGERED]),
            RunRow.ended_at.is_(None),
        )
    )
    return int(session.scalar(joined) or 0)
