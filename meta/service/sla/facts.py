"""What the store knows about one watched subject, shaped as ``meta.semantics.sla.Facts``.

Reads are bounded (the horizon of slots the engine judges, plus enough history for at-risk projections), so a
tick costs the same whether a pipeline has ten runs or a hundred thousand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from meta.semantics.sla import AttemptFact, Facts, RunFact
from meta.service.sla.subjects import WatchedSubject
from meta.service.store.orm import AttemptRow, BackendRow, RunRow

HORIZON = timedelta(days=2)
HISTORY = 20  # successful runs (or task tries) behind the at-risk projection
RECENT_RUNS = 200  # at most this many runs judged per subject per tick
FINISHED_HISTORY = 50  # finished runs behind an average-runtime deadline (Airflow's max_runs is at most this here)
CHUNK = 500  # pipelines per IN list


def read_many(
    session: Session, wanted: Sequence[tuple[WatchedSubject, datetime]], now: datetime
) -> dict[tuple[str, str], Facts]:
    """Facts of many subjects in a few queries (runs, recent successes, finished runs for each chunk of pipelines
    of one backend), not a few queries per subject: a tick judging a thousand pipelines stays one round of reads."""
    as_of = _all_as_of(session)
    out: dict[tuple[str, str], Facts] = {}
    by_backend: dict[str, list[tuple[WatchedSubject, datetime]]] = {}
    for subject, since in wanted:
        if subject.is_dataset:
            out[subject.key] = _dataset_facts(session, subject, since, as_of)
        else:
            by_backend.setdefault(subject.backend, []).append((subject, since))
    for backend, group in by_backend.items():
        for start in range(0, len(group), CHUNK):
            chunk = group[start : start + CHUNK]
            out.update(_pipeline_facts(session, backend, chunk, now, as_of.get(backend)))
    return out


def _pipeline_facts(
    session: Session,
    backend: str,
    chunk: list[tuple[WatchedSubject, datetime]],
    now: datetime,
    as_of: datetime | None,
) -> dict[tuple[str, str], Facts]:
    ids = sorted({s.subject for s, _ in chunk})
    # a slot's deadline is up to two days after its tick: read that far before the oldest window of the chunk
    window = min(max(since, now - HORIZON) for _, since in chunk) - timedelta(days=2)
    runs: dict[str, list[RunRow]] = {}
    for row in session.scalars(
        select(RunRow)
        .where(
            RunRow.backend == backend,
            RunRow.pipeline_id.in_(ids),
            or_(RunRow.ended_at.is_(None), RunRow.ended_at >= window, RunRow.logical_date >= window),
        )
        .order_by(RunRow.id.desc())
    ):
        held = runs.setdefault(row.pipeline_id, [])
        if len(held) < RECENT_RUNS:
            held.append(row)
    successes = _newest_per_pipeline(session, backend, ids, ("success",), HISTORY)
    averaged = [s.subject for s, _ in chunk if _averages(s)]
    finished = _newest_per_pipeline(session, backend, averaged, ("success", "failed"), FINISHED_HISTORY)
    out = {}
    for subject, since in chunk:
        mine, won = runs.get(subject.subject, []), successes.get(subject.subject, [])
        attempts: list[AttemptFact] = []
        task_durations: dict[str, Sequence[float]] = {}
        if subject.spec.task_limits:
            attempts, task_durations = _attempt_facts(session, subject, [r.run_id for r in mine])
        out[subject.key] = Facts(
            runs=[_run_fact(r) for r in mine],
            attempts=attempts,
            success_ends=sorted(r.ended_at for r in won if r.ended_at is not None),
            durations=[d for d in (_duration(r) for r in won) if d is not None],
            finished_durations=[d for d in (_duration(r) for r in finished.get(subject.subject, [])) if d is not None],
            task_durations=task_durations,
            as_of=as_of,
            tracking_since=since,
        )
    return out


def _averages(subject: WatchedSubject) -> bool:
    sla = subject.spec.sla
    return sla is not None and any(d.reference == "average_runtime" for d in sla.deadlines)


def _newest_per_pipeline(
    session: Session, backend: str, ids: list[str], states: tuple[str, ...], limit: int
) -> dict[str, list[RunRow]]:
    """The ``limit`` newest finished runs in ``states`` of each pipeline, newest first (one windowed query)."""
    if not ids:
        return {}
    rank = (
        func.row_number()
        .over(partition_by=RunRow.pipeline_id, order_by=(RunRow.ended_at.desc(), RunRow.id.desc()))
        .label("rank")
    )
    ranked = (
        select(RunRow.id, rank)
        .where(
            RunRow.backend == backend,
            RunRow.pipeline_id.in_(ids),
            RunRow.state.in_(states),
            RunRow.ended_at.is_not(None),
        )
        .subquery()
    )
    rows = session.scalars(
        select(RunRow)
        .join(ranked, ranked.c.id == RunRow.id)
        .where(ranked.c.rank <= limit)
        .order_by(RunRow.pipeline_id, RunRow.ended_at.desc(), RunRow.id.desc())
    )
    out: dict[str, list[RunRow]] = {}
    for row in rows:
        out.setdefault(row.pipeline_id, []).append(row)
    return out


def _all_as_of(session: Session) -> dict[str, datetime]:
    """Backend -> the instant up to which the store holds all its facts (its last good poll)."""
    return {
        name: at for name, at in session.execute(select(BackendRow.name, BackendRow.last_success_at)) if at is not None
    }


def combined_as_of(as_of: dict[str, datetime], backends: Sequence[str]) -> datetime | None:
    """Facts of several backends are complete up to the oldest of their last good polls (None: one never answered)."""
    found = [as_of.get(b) for b in set(backends)]
    return None if not found or any(f is None for f in found) else min(f for f in found if f is not None)


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


def _dataset_facts(session: Session, subject: WatchedSubject, since: datetime, as_of: dict[str, datetime]) -> Facts:
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
        as_of=combined_as_of(as_of, [b for b, _, _ in subject.producers]),
        tracking_since=since,
    )
