"""The upstream facts a dependency needs, read from the control plane's store in one query per table.

Runs a backfill started (Airflow's ``run_type: backfill``, or a run recorded in ``backfill_dates``) are left out:
a backfill drives its downstreams itself (``meta backfill --with-downstream``) or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from meta.semantics.dependencies import LOOKBACK, UpstreamRun
from meta.service.store.orm import AttemptRow, BackfillDateRow, RunRow

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
    """(backend, pipeline, run) -> task id -> the state of its latest try, for the tasks dependencies name."""
    out: dict[tuple[str, str, str], dict[str, str]] = {}
    if not runs:
        return out
    run_ids = sorted({r.run_id for r in runs})
    task_ids = sorted(set().union(*named.values()))
    for start in range(0, len(run_ids), CHUNK):
        latest = (
            select(
                AttemptRow.backend,
                AttemptRow.pipeline_id,
                AttemptRow.run_id,
                AttemptRow.task_id,
                func.max(AttemptRow.try_number).label("try_number"),
            )
            .where(AttemptRow.run_id.in_(run_ids[start : start + CHUNK]), AttemptRow.task_id.in_(task_ids))
            .where(AttemptRow.map_index == -1)
            .group_by(AttemptRow.backend, AttemptRow.pipeline_id, AttemptRow.run_id, AttemptRow.task_id)
            .subquery()
        )
        rows = session.execute(
            select(AttemptRow.backend, AttemptRow.pipeline_id, AttemptRow.run_id, AttemptRow.task_id, AttemptRow.state)
            .join(
                latest,
                (AttemptRow.backend == latest.c.backend)
                & (AttemptRow.pipeline_id == latest.c.pipeline_id)
                & (AttemptRow.run_id == latest.c.run_id)
                & (AttemptRow.task_id == latest.c.task_id)
                & (AttemptRow.try_number == latest.c.try_number),
            )
            .where(AttemptRow.map_index == -1)
        )
        for backend, pipeline, run_id, task_id, state in rows:
            if task_id in named.get(pipeline, ()):
                out.setdefault((backend, pipeline, run_id), {})[task_id] = state
    return out
