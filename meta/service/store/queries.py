"""Query functions: each takes a session and leaves committing to the caller (one transaction per unit of work).

``ingest`` is the heart: one batch of neutral events and the cursor covering it, written in the caller's
transaction. Upserts are keyed by the backend's own ids and guarded by ``as_of`` (``INSERT .. ON CONFLICT DO UPDATE
.. WHERE excluded.as_of >= as_of``, on SQLite and PostgreSQL alike), so replaying any prefix of history, in any
order, any number of times, converges to the same rows.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from meta.plugins.observers import EventKind, RunEvent
from meta.service.store.orm import (
    AttemptRow,
    BackendRow,
    CounterRow,
    CursorRow,
    DependencyWaitRow,
    LineageEventRow,
    PipelineRow,
    RunRow,
    SlaSlotRow,
    TriggerRow,
)

CHANGE_COUNTER = "change_seq"


def now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------- ingest


@dataclass(frozen=True)
class IngestResult:
    events: int  # events received
    runs: int  # distinct runs written (inserted or updated)
    attempts: int


def ingest(
    session: Session,
    events: Sequence[RunEvent],
    *,
    cursor: tuple[str, str, str] | None = None,
    team_of: Callable[[str], str | None] = lambda _pipeline: None,
) -> IngestResult:
    """Upsert ``events`` and, in the same transaction, move ``cursor`` = (backend, stream, value)."""
    runs = _newest(e for e in events if e.kind is EventKind.RUN)
    attempts = _newest(e for e in events if e.kind is EventKind.TASK_ATTEMPT)
    seq = _reserve(session, CHANGE_COUNTER, len(runs) + len(attempts))
    if runs:
        _upsert(
            session, RunRow, ["backend", "pipeline_id", "run_id"], [_run_values(e, seq + i) for i, e in enumerate(runs)]
        )
    if attempts:
        base = seq + len(runs)
        _upsert(
            session,
            AttemptRow,
            ["backend", "pipeline_id", "run_id", "task_id", "map_index", "try_number"],
            [_attempt_values(e, base + i) for i, e in enumerate(attempts)],
        )
    _touch_pipelines(session, [*runs, *attempts], team_of)
    if cursor is not None:
        set_cursor(session, *cursor)
    return IngestResult(len(events), len(runs), len(attempts))


def _insert(session: Session) -> Any:
    """The dialect's ``insert`` (both have ``on_conflict_do_update``; SQLAlchemy's generic one has not)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _key(event: RunEvent) -> tuple[Any, ...]:
    return (*event.run_key, event.task_id, event.map_index, event.try_number)


def _newest(events: Iterable[RunEvent]) -> list[RunEvent]:
    """One event per key within a batch (the newest; a tie goes to the later one, as the upsert would)."""
    newest: dict[tuple[Any, ...], RunEvent] = {}
    for event in events:
        key = _key(event)
        held = newest.get(key)
        if held is None or event.as_of >= held.as_of:
            newest[key] = event
    return list(newest.values())


def _run_values(e: RunEvent, seq: int) -> dict[str, Any]:
    return {
        "backend": e.backend,
        "pipeline_id": e.pipeline_id,
        "run_id": e.run_id,
        "state": str(e.state),
        "raw_state": e.raw_state,
        "logical_date": e.logical_date,
        "queued_at": e.queued_at,
        "started_at": e.started_at,
        "ended_at": e.ended_at,
        "as_of": e.as_of,
        "source": str(e.source),
        "external": e.external,
        "extra": dict(e.extra),
        "change_seq": seq,
    }


def _attempt_values(e: RunEvent, seq: int) -> dict[str, Any]:
    return {
        "backend": e.backend,
        "pipeline_id": e.pipeline_id,
        "run_id": e.run_id,
        "task_id": e.task_id,
        "map_index": e.map_index,
        "try_number": e.try_number,
        "state": str(e.state),
        "raw_state": e.raw_state,
        "started_at": e.started_at,
        "ended_at": e.ended_at,
        "as_of": e.as_of,
        "source": str(e.source),
        "extra": dict(e.extra),
        "change_seq": seq,
    }


# Columns a pushed fact may leave empty that an earlier fact filled (an OpenLineage event carries no queued time).
# A polled fact is a whole snapshot and is taken as it is: a cleared Airflow run comes back with no start or end.
_KEEP_IF_NULL = ("logical_date", "queued_at", "started_at", "ended_at", "raw_state")


def _upsert(
    session: Session, table: type[RunRow] | type[AttemptRow], keys: list[str], rows: list[dict[str, Any]]
) -> None:
    statement = _insert(session)(table)
    excluded = statement.excluded
    target = table.__table__.c
    updates: dict[str, Any] = {}
    for column in rows[0]:
        if column in keys:
            continue
        if column in _KEEP_IF_NULL:
            updates[column] = case(
                (excluded.source == "push", func.coalesce(excluded[column], target[column])), else_=excluded[column]
            )
        else:
            updates[column] = excluded[column]
    statement = statement.on_conflict_do_update(index_elements=keys, set_=updates, where=excluded.as_of >= target.as_of)
    session.execute(statement, rows)


def _touch_pipelines(session: Session, events: list[RunEvent], team_of: Callable[[str], str | None]) -> None:
    seen: dict[tuple[str, str], bool] = {}
    for e in events:
        seen[(e.backend, e.pipeline_id)] = seen.get((e.backend, e.pipeline_id), False) or e.external
    if not seen:
        return
    at = now()
    statement = _insert(session)(PipelineRow)
    statement = statement.on_conflict_do_update(
        index_elements=["backend", "pipeline_id"],
        # a DAG first seen before meta deployed it becomes meta-built once it is placed
        set_={"last_seen_at": statement.excluded.last_seen_at, "external": statement.excluded.external},
    )
    session.execute(
        statement,
        [
            {
                "backend": backend,
                "pipeline_id": pipeline,
                "team": team_of(pipeline),
                "external": external,
                "first_seen_at": at,
                "last_seen_at": at,
            }
            for (backend, pipeline), external in sorted(seen.items())
        ],
    )


def _reserve(session: Session, counter: str, count: int) -> int:
    """Reserve ``count`` consecutive values of ``counter``; returns the first. One upsert: the first writers on a
    fresh database cannot both insert the row, and the row lock (PostgreSQL) or the write lock (SQLite) serialises
    concurrent writers, so values are unique and increase in commit order."""
    if count == 0:
        return 0
    statement = _insert(session)(CounterRow).values(name=counter, value=count)
    statement = statement.on_conflict_do_update(
        index_elements=["name"], set_={"value": CounterRow.value + count}
    ).returning(CounterRow.value)
    return int(session.execute(statement).scalar_one()) - count + 1


# ---------------------------------------------------------------------------------------------- cursors


def get_cursor(session: Session, backend: str, stream: str) -> str | None:
    row = session.get(CursorRow, (backend, stream))
    return row.value if row else None


def set_cursor(session: Session, backend: str, stream: str, value: str) -> None:
    row = session.get(CursorRow, (backend, stream))
    if row is None:
        session.add(CursorRow(backend=backend, stream=stream, value=value, updated_at=now()))
    else:
        row.value, row.updated_at = value, now()


# ---------------------------------------------------------------------------------------------- backends


def upsert_backend(session: Session, name: str, kind: str, url: str) -> BackendRow:
    row = session.get(BackendRow, name)
    if row is None:
        row = BackendRow(name=name, kind=kind, url=url, health="unknown", events_total=0, requests_total=0)
        session.add(row)
    else:
        row.kind, row.url = kind, url
    return row


def record_health(
    session: Session,
    name: str,
    *,
    health: str,
    error: str | None = None,
    lag_seconds: float | None = None,
    events: int = 0,
    requests: int = 0,
    complete_as_of: datetime | None = None,
) -> None:
    """``complete_as_of``: when the successful poll cycle began (default: now). ``last_success_at`` keeps it: the
    store holds every fact the backend had at that instant, which is what the SLA engine needs before it calls a
    deadline missed (the cycle's end would claim facts the backend may have changed since it was read)."""
    row = session.get(BackendRow, name)
    if row is None:
        return
    at = now()
    row.health = health
    if error is None:
        row.last_success_at = complete_as_of or at
        row.lag_seconds = lag_seconds
    else:
        row.last_error_at, row.last_error = at, error[:500]
    row.events_total = (row.events_total or 0) + events
    row.requests_total = (row.requests_total or 0) + requests


def backends(session: Session) -> list[BackendRow]:
    return list(session.scalars(select(BackendRow).order_by(BackendRow.name)))


def set_teams(session: Session, team_of: Callable[[str], str | None]) -> None:
    """Re-derive every pipeline's team from the workspace (teams may have changed since the rows were written)."""
    for row in session.scalars(select(PipelineRow)):
        team = team_of(row.pipeline_id)
        if row.team != team:
            row.team = team


# ---------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class RunFilter:
    teams: frozenset[str] | None = None  # None: every team (admin); else only pipelines of these teams
    backend: str | None = None
    pipeline_id: str | None = None
    state: str | None = None
    since: datetime | None = None  # started at or after
    until: datetime | None = None


def _scoped(statement: Select[Any], teams: frozenset[str] | None) -> Select[Any]:
    if teams is None:
        return statement
    return statement.join(
        PipelineRow, and_(PipelineRow.backend == RunRow.backend, PipelineRow.pipeline_id == RunRow.pipeline_id)
    ).where(PipelineRow.team.in_(sorted(teams)))


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise ValueError("invalid cursor: pass the next_cursor of a previous page unchanged") from None
    if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], int):
        raise ValueError("invalid cursor: pass the next_cursor of a previous page unchanged")
    return values


def list_runs(
    session: Session, where: RunFilter, limit: int = 100, cursor: str | None = None
) -> tuple[list[RunRow], str | None]:
    """Newest first (by row id, which follows first sighting), keyset-paged: the next page starts below the last id."""
    statement = _scoped(select(RunRow), where.teams)
    if where.backend:
        statement = statement.where(RunRow.backend == where.backend)
    if where.pipeline_id:
        statement = statement.where(RunRow.pipeline_id == where.pipeline_id)
    if where.state:
        statement = statement.where(RunRow.state == where.state)
    if where.since:
        statement = statement.where(RunRow.started_at >= where.since)
    if where.until:
        statement = statement.where(RunRow.started_at < where.until)
    if cursor:
        statement = statement.where(RunRow.id < decode_cursor(cursor)[0])
    rows = list(session.scalars(statement.order_by(RunRow.id.desc()).limit(limit + 1)))
    next_cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def get_run(
    session: Session, backend: str, pipeline_id: str, run_id: str, teams: frozenset[str] | None
) -> RunRow | None:
    statement = _scoped(select(RunRow), teams).where(
        RunRow.backend == backend, RunRow.pipeline_id == pipeline_id, RunRow.run_id == run_id
    )
    return session.scalars(statement).first()


def attempts_of(session: Session, backend: str, pipeline_id: str, run_id: str) -> list[AttemptRow]:
    statement = (
        select(AttemptRow)
        .where(AttemptRow.backend == backend, AttemptRow.pipeline_id == pipeline_id, AttemptRow.run_id == run_id)
        .order_by(AttemptRow.task_id, AttemptRow.map_index, AttemptRow.try_number)
    )
    return list(session.scalars(statement))


def pipelines(session: Session, teams: frozenset[str] | None) -> list[PipelineRow]:
    statement = select(PipelineRow).order_by(PipelineRow.pipeline_id, PipelineRow.backend)
    if teams is not None:
        statement = statement.where(PipelineRow.team.in_(sorted(teams)))
    return list(session.scalars(statement))


def pipeline(session: Session, pipeline_id: str, teams: frozenset[str] | None) -> list[PipelineRow]:
    return [row for row in pipelines(session, teams) if row.pipeline_id == pipeline_id]


def latest_runs(session: Session, teams: frozenset[str] | None) -> dict[tuple[str, str], RunRow]:
    """The newest run (highest id) of every (backend, pipeline): what ``meta status`` shows."""
    newest = select(func.max(RunRow.id)).group_by(RunRow.backend, RunRow.pipeline_id)
    statement = _scoped(select(RunRow), teams).where(RunRow.id.in_(newest))
    return {(r.backend, r.pipeline_id): r for r in session.scalars(statement)}


def changes_since(
    session: Session, seq: int, teams: frozenset[str] | None, limit: int = 500
) -> list[RunRow | AttemptRow | SlaSlotRow | DependencyWaitRow]:
    """Runs, attempts, SLA slots and dependency waits whose change_seq is above ``seq``, in change order: the API's
    change stream. The four share one counter, so their changes interleave in the order they were written."""
    runs = list(
        session.scalars(
            _scoped(select(RunRow), teams).where(RunRow.change_seq > seq).order_by(RunRow.change_seq).limit(limit)
        )
    )
    attempt_statement = select(AttemptRow).where(AttemptRow.change_seq > seq)
    if teams is not None:
        attempt_statement = attempt_statement.join(
            PipelineRow,
            and_(PipelineRow.backend == AttemptRow.backend, PipelineRow.pipeline_id == AttemptRow.pipeline_id),
        ).where(PipelineRow.team.in_(sorted(teams)))
    attempts = list(session.scalars(attempt_statement.order_by(AttemptRow.change_seq).limit(limit)))
    teamed: list[SlaSlotRow | DependencyWaitRow] = []
    for table in (SlaSlotRow, DependencyWaitRow):
        statement = select(table).where(table.change_seq > seq)
        if teams is not None:
            statement = statement.where(table.team.in_(sorted(teams)))
        teamed.extend(session.scalars(statement.order_by(table.change_seq).limit(limit)))
    merged: list[RunRow | AttemptRow | SlaSlotRow | DependencyWaitRow] = sorted(
        [*runs, *attempts, *teamed], key=lambda row: row.change_seq
    )
    return merged[:limit]


def counts_by_state(session: Session) -> list[tuple[str, str, int]]:
    """(backend, state, runs) for /metrics."""
    statement = select(RunRow.backend, RunRow.state, func.count()).group_by(RunRow.backend, RunRow.state)
    return [(b, s, int(n)) for b, s, n in session.execute(statement)]


def history(session: Session, backend: str) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """(runs, attempts) of one backend as plain tuples: what fault-injection tests compare with the backend's API."""
    runs = {
        (r.pipeline_id, r.run_id, r.state) for r in session.scalars(select(RunRow).where(RunRow.backend == backend))
    }
    attempts = {
        (a.pipeline_id, a.run_id, a.task_id, a.map_index, a.try_number, a.state)
        for a in session.scalars(select(AttemptRow).where(AttemptRow.backend == backend))
    }
    return runs, attempts


__all__ = [
    "IngestResult",
    "RunFilter",
    "attempts_of",
    "backends",
    "changes_since",
    "counts_by_state",
    "get_cursor",
    "get_run",
    "history",
    "ingest",
    "latest_runs",
    "list_runs",
    "pipeline",
    "pipelines",
    "record_health",
    "set_cursor",
    "set_teams",
    "upsert_backend",
]


# ---------------------------------------------------------------------------------------------- the API's own
# Added for meta.service.api (the REST API); nothing above this section was changed for it.


def current_change_seq(session: Session) -> int:
    """The newest committed change number: where a change stream without ``Last-Event-ID`` starts."""
    row = session.get(CounterRow, CHANGE_COUNTER)
    return int(row.value) if row else 0


def counts_by_state_of(session: Session, teams: frozenset[str] | None) -> list[tuple[str, str, int]]:
    """(backend, state, runs) of the pipelines of ``teams`` (None: every team): /metrics for a team's token."""
    statement: Select[Any] = _scoped(select(RunRow.backend, RunRow.state, func.count()), teams)  # type: ignore[arg-type]
    statement = statement.group_by(RunRow.backend, RunRow.state).order_by(RunRow.backend, RunRow.state)
    return [(b, s, int(n)) for b, s, n in session.execute(statement)]


def count_events(session: Session, counts: dict[str, int]) -> None:
    """Add pushed events to each backend's ``events_total`` (polled ones are counted by ``record_health``)."""
    for name, count in sorted(counts.items()):
        session.execute(
            update(BackendRow).where(BackendRow.name == name).values(events_total=BackendRow.events_total + count)
        )


def store_lineage(session: Session, values: dict[str, Any]) -> bool:
    """Insert one raw OpenLineage event unless its ``payload_sha`` is stored already; True when inserted."""
    statement = _insert(session)(LineageEventRow).values(**values)
    statement = statement.on_conflict_do_nothing(index_elements=["payload_sha"])
    # RETURNING, not rowcount: psycopg's rowcount is not 0 for a row skipped by DO NOTHING.
    return session.execute(statement.returning(LineageEventRow.id)).scalar() is not None


def record_trigger(session: Session, values: dict[str, Any]) -> TriggerRow:
    """Insert the trigger unless its key is known (a concurrent identical request won); returns the stored row."""
    session.execute(_insert(session)(TriggerRow).values(**values).on_conflict_do_nothing(index_elements=["key"]))
    row = session.get(TriggerRow, values["key"], populate_existing=True)
    assert row is not None
    return row
