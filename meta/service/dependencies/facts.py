"""The upstream facts a dependency needs, read from the control plane's store in one query per table.

Runs a backfill started (Airflow's ``run_type: backfill``, or a run recorded in ``backfill_dates``) are left out:
a backfill drives its downstreams itself (``meta backfill --with-downstream``) or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from meta.semantics.dependencies import LOOKBACK, UpstreamRun
from meta.service.store.orm import AttemptRow, BackfillDateRow, RunRow
from meta.spec.results import mapped_state
from meta.spec.states import TaskState

_TASK_STATES = frozenset(s.value for s in TaskState)
CHUNK = 500
# A pushed fact may lack the run's logical date that the next poll brings (Prefect's events carry it only in their
# Scheduled state): such a run is left out for this long, so that its downstream starts for the date, not for the
# run. A run still without a date after it (an Airflow 3 run triggered without one) counts as itself.
DATE_GRACE = timedelta(seconds=60)


def upstream_runs(
    session: Session, pipelines: Iterable[str], tasks: Iterable[tuple[str, str]], since: datetime, now: datetime
) -> dict[str, list[UpstreamRun]]:
    """pipeline id -> its runs (any backend) that ended after ``since`` or have not ended, within ``LOOKBACK``;
    ``tasks`` (pipeline, task) whose latest try state is attached to each run."""
    ids = sorted(set(pipelines))
    named: dict[str, set[str]] = {}
    for pipeline, task in tasks:
        named.setdefault(pipeline, set()).add(task)
    oldest = min(since, now - LOOKBACK) - timedelta(minutes=1)
    rows: list[RunRow] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        rows.extend(
            session.scalars(
                select(RunRow)
                .where(RunRow.pipeline_id.in_(chunk))
                .where(or_(RunRow.ended_at.is_(None), RunRow.ended_at >= oldest))
            )
        )
    backfilled = _backfill_runs(session, ids)
    states = _task_states(session, [r for r in rows if r.pipeline_id in named], named)
    out: dict[str, list[UpstreamRun]] = {}
    for row in rows:
        if (row.extra or {}).get("run_type") == "backfill" or (row.backend, row.pipeline_id, row.run_id) in backfilled:
            continue
        if row.logical_date is None and row.source == "push" and now - row.as_of < DATE_GRACE:
            continue
        out.setdefault(row.pipeline_id, []).append(
            UpstreamRun(
                backend=row.backend,
                pipeline_id=row.pipeline_id,
                run_id=row.run_id,
                state=row.state,
                logical_date=row.logical_date,
                started_at=row.started_at,
                ended_at=row.ended_at,
                seen_at=row.queued_at,
                task_states=states.get((row.backend, row.pipeline_id, row.run_id), {}),
            )
        )
    return out


def _summary(states: list[str]) -> str:
    """One state for a task's instances: a lone instance's own; else ``mapped_state``'s order, and a state outside
    meta's vocabulary (a backend's own, e.g. removed) before success, since the task has not simply succeeded."""
    if len(states) == 1:
        return states[0]
    unknown = [s for s in states if s not in _TASK_STATES]
    known = [TaskState(s) for s in states if s in _TASK_STATES]
    summary = str(mapped_state(known)) if known else unknown[0]
    return unknown[0] if unknown and summary in (TaskState.SUCCESS, TaskState.SKIPPED) else summary


def _backfill_runs(session: Session, pipelines: list[str]) -> set[tuple[str, str, str]]:
    found: set[tuple[str, str, str]] = set()
    for start in range(0, len(pipelines), CHUNK):
        rows = session.execute(
            select(BackfillDateRow.backend, BackfillDateRow.pipeline_id, BackfillDateRow.run_id)
            .where(BackfillDateRow.pipeline_id.in_(pipelines[start : start + CHUNK]))
            .where(BackfillDateRow.run_id.is_not(None))
        )
        found.update((b, p, str(r)) for b, p, r in rows)
    return found


def _task_states(
    session: Session, runs: list[RunRow], named: dict[str, set[str]]
) -> dict[tuple[str, str, str], dict[str, str]]:
    """(backend, pipeline, run) -> task id -> the state of its latest try, for the tasks dependencies name. A mapped
    task's state sums its instances up (each instance's latest try; ``meta.spec.results.mapped_state``), so it
    counts as succeeded once every instance has."""
    out: dict[tuple[str, str, str], dict[str, str]] = {}
    if not runs:
        return out
    run_ids = sorted({r.run_id for r in runs})
    task_ids = sorted(set().union(*named.values()))
    latest: dict[tuple[str, str, str, str, int], tuple[int, str]] = {}  # ... map index -> (try, state)
    for start in range(0, len(run_ids), CHUNK):
        rows = session.execute(
            select(
                AttemptRow.backend,
                AttemptRow.pipeline_id,
                AttemptRow.run_id,
                AttemptRow.task_id,
                AttemptRow.map_index,
                AttemptRow.try_number,
                AttemptRow.state,
            ).where(AttemptRow.run_id.in_(run_ids[start : start + CHUNK]), AttemptRow.task_id.in_(task_ids))
        )
        for backend, pipeline, run_id, task_id, map_index, try_number, state in rows:
            if task_id not in named.get(pipeline, ()):
                continue
            key = (backend, pipeline, run_id, task_id, map_index)
            if key not in latest or try_number >= latest[key][0]:
                latest[key] = (try_number, state)
    instances: dict[tuple[str, str, str, str], dict[int, str]] = {}
    for (backend, pipeline, run_id, task_id, map_index), (_, state) in latest.items():
        instances.setdefault((backend, pipeline, run_id, task_id), {})[map_index] = state
    for (backend, pipeline, run_id, task_id), by_index in instances.items():
        expanded = {i: s for i, s in by_index.items() if i >= 0}  # once expanded, the unexpanded row is history
        states = list(expanded.values()) if expanded else list(by_index.values())
        out.setdefault((backend, pipeline, run_id), {})[task_id] = _summary(states)
    return out
