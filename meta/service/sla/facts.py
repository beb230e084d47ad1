"""What the store knows about one watched subject, shaped as ``meta.semantics.sla.Facts``.

Reads are bounded (the horizon of slots the engine judges, plus enough history for at-risk projections), so a
tick costs the same whether a pipeline has ten runs or a hundred thousand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from meta.semantics.sla import AttemptFact, Facts, RunFact
from meta.service.sla.subjects import WatchedSubject
from meta.service.store.orm import AttemptRow, BackendRow, RunRow

HORIZON = timedelta(days=2)
HISTORY = 20  # successful runs (or task tries) behind the at-risk projection
RECENT_RUNS = 200  # at most this many runs judged per subject per tick
FINISHED_HISTORY = 50  # finished runs behind an average-runtime deadline (Airflow's max_runs is at most this here)


def read_facts(session: Session, subject: WatchedSubject, since: datetime, now: datetime) -> Facts:
    if subject.is_dataset:
        return _dataset_facts(session, subject, since, now)
    backend, pipeline_id = subject.key
    window = max(since, now - HORIZON) - timedelta(days=2)  # a slot's deadline is up to two days after its tick
    runs = list(
        session.scalars(
            select(RunRow)
            .where(
                RunRow.backend == backend,
                RunRow.pipeline_id == pipeline_id,
                or_(RunRow.ended_at.is_(None), RunRow.ended_at >= window, RunRow.logical_date >= window),
            )
            .order_by(RunRow.id.desc())
            .limit(RECENT_RUNS)
        )
    )
    successes = list(
        session.scalars(
            select(RunRow)
            .where(
                RunRow.backend == backend,
                RunRow.pipeline_id == pipeline_id,
                RunRow.state == "success",
                RunRow.ended_at.is_not(None),
            )
            .order_by(RunRow.ended_at.desc())
            .limit(HISTORY)
        )
    )
    finished: list[RunRow] = []
    if subject.spec.sla is not None and any(d.reference == "average_runtime" for d in subject.spec.sla.deadlines):
        finished = list(
            session.scalars(
                select(RunRow)
                .where(
                    RunRow.backend == backend,
                    RunRow.pipeline_id == pipeline_id,
                    RunRow.state.in_(("success", "failed")),
                    RunRow.ended_at.is_not(None),
                )
                .order_by(RunRow.ended_at.desc())
                .limit(FINISHED_HISTORY)
            )
        )
    attempts: list[AttemptFact] = []
    task_durations: dict[str, Sequence[float]] = {}
    if subject.spec.task_limits:
        attempts, task_durations = _attempt_facts(session, subject, [r.run_id for r in runs])
    return Facts(
        runs=[_run_fact(r) for r in runs],
        attempts=attempts,
        success_ends=sorted(r.ended_at for r in successes if r.ended_at is not None),
        durations=[d for d in (_duration(r) for r in successes) if d is not None],
        finished_durations=[d for d in (_duration(r) for r in finished) if d is not None],
        task_durations=task_durations,
        as_of=backend_as_of(session, [backend]),
        tracking_since=since,
    )


def backend_as_of(session: Session, backends: list[str]) -> datetime | None:
    """The instant up to which the store holds every fact of all ``backends``: their oldest last good poll."""
    if not backends:
        return None
    rows = list(session.scalars(select(BackendRow.last_success_at).where(BackendRow.name.in_(backends))))
    if len(rows) < len(set(backends)) or any(r is None for r in rows):
        return None
    return min(r for r in rows if r is not None)


def _run_fact(row: RunRow) -> RunFact:
    return RunFact(row.run_id, row.state, row.logical_date, row.queued_at, row.started_at, row.ended_at)


def _duration(row: RunRow) -> float | None:
    begin = row.started_at or row.queued_at
    if begin is None or row.ended_at is None:
        return None
    return max(0.0, (row.ended_at - begin).total_seconds())


def _attempt_facts(
    session: Session, subject: WatchedSubject, run_ids: list[str]
) -> tuple[list[AttemptFact], dict[str, Sequence[float]]]:
    backend, pipeline_id = subject.key
    tasks = sorted(subject.spec.task_limits)
    attempts: list[AttemptFact] = []
    if run_ids:
        rows = session.scalars(
            select(AttemptRow).where(
                AttemptRow.backend == backend,
                AttemptRow.pipeline_id == pipeline_id,
                AttemptRow.run_id.in_(run_ids),
                AttemptRow.task_id.in_(tasks),
            )
        )
        attempts = [
            AttemptFact(a.run_id, a.task_id, a.try_number, a.state, a.started_at, a.ended_at, a.map_index) for a in rows
        ]
    durations: dict[str, Sequence[float]] = {}
    for task in tasks:
        done = session.scalars(
            select(AttemptRow)
            .where(
                AttemptRow.backend == backend,
                AttemptRow.pipeline_id == pipeline_id,
                AttemptRow.task_id == task,
                AttemptRow.state == "success",
                AttemptRow.ended_at.is_not(None),
                AttemptRow.started_at.is_not(None),
            )
            .order_by(AttemptRow.ended_at.desc())
            .limit(HISTORY)
        )
        durations[task] = [(a.ended_at - a.started_at).total_seconds() for a in done if a.ended_at and a.started_at]
    return attempts, durations


def _dataset_facts(session: Session, subject: WatchedSubject, since: datetime, now: datetime) -> Facts:
    """A dataset is as fresh as the last success of any task that writes it, on any backend."""
    if not subject.producers:
        return Facts(as_of=None, tracking_since=since)
    clauses = [
        and_(AttemptRow.backend == b, AttemptRow.pipeline_id == p, AttemptRow.task_id == t)
        for b, p, t in subject.producers
    ]
    ends = list(
        session.scalars(
            select(AttemptRow.ended_at)
            .where(or_(*clauses), AttemptRow.state == "success", AttemptRow.ended_at.is_not(None))
            .order_by(AttemptRow.ended_at.desc())
            .limit(HISTORY)
        )
    )
    return Facts(
        success_ends=sorted(e for e in ends if e is not None),
        as_of=backend_as_of(session, sorted({b for b, _, _ in subject.producers})),
        tracking_since=since,
    )
