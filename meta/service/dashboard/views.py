"""What the dashboard's pages show, read from the store in a few queries each (the board of 1,000 pipelines on 3
backends aims at 150 ms on SQLite: bench/bench_dashboard.py): the SLA board (team -> pipeline -> one cell per
backend) and one pipeline's page (its tasks, its runs on every backend, the latest run's task states, its SLA
history)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, case, func, select, union_all
from sqlalchemy.orm import Session

from meta.semantics.sla import AT_RISK, MET, MISSED, PENDING, UNKNOWN
from meta.service.sla import board as sla_board
from meta.service.store.db import Store
from meta.service.store.orm import AttemptRow, PipelineRow, RunRow, SlaSlotRow
from meta.spec.model import Pipeline

NO_SLA = "none"  # a cell whose pipeline has no SLA on that backend
RUNS_PER_BACKEND = 20
SLA_HISTORY = 50


@dataclass
class BoardCell:
    backend: str
    external: bool
    sla: str = NO_SLA
    next_deadline: datetime | None = None
    missed_in_window: int = 0
    detail: str = ""  # what needs attention (the first unresolved miss, at-risk or unknown slot)
    last_run: Row[Any] | None = None  # run_id, state, started_at, ended_at, url


@dataclass
class BoardRow:
    pipeline: str
    team: str | None
    cells: list[BoardCell] = field(default_factory=list)


def board_rows(store: Store, teams: frozenset[str] | None, now: datetime) -> list[BoardRow]:
    """Every pipeline the teams own, by team then id, each with one cell per backend it is on. Reads columns, not
    ORM objects, in a few queries whatever the number of pipelines; the newest runs are read on a second
    connection while this one counts the SLA slots (SQLite and PostgreSQL both answer two readers at once)."""
    latest_future = _READER.submit(_read, store, lambda session: latest_runs(session, teams))
    placed = select(PipelineRow.pipeline_id, PipelineRow.backend, PipelineRow.team, PipelineRow.external)
    if teams is not None:
        placed = placed.where(PipelineRow.team.in_(sorted(teams)))
    with store.reading() as session:
        slas = sla_cells(session, teams, now)
        placements = session.execute(placed.order_by(PipelineRow.pipeline_id, PipelineRow.backend)).all()
    latest = latest_future.result()
    rows: dict[str, BoardRow] = {}
    for placement in placements:
        row = rows.get(placement.pipeline_id)
        if row is None:
            row = rows[placement.pipeline_id] = BoardRow(placement.pipeline_id, placement.team)
        cell = BoardCell(placement.backend, placement.external)
        cell.last_run = latest.get((placement.backend, placement.pipeline_id))
        sla = slas.pop((placement.pipeline_id, placement.backend), None)
        if sla is not None:
            _fill(cell, sla)
        row.cells.append(cell)
    for (subject, backend), sla in slas.items():  # datasets' freshness, and SLAs of pipelines not seen yet
        row = rows.get(subject)
        if row is None:
            row = rows[subject] = BoardRow(subject, sla.team)
        cell = BoardCell(backend, external=False)
        _fill(cell, sla)
        row.cells.append(cell)
    return sorted(rows.values(), key=lambda r: (r.team or "", r.pipeline))


_READER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dashboard-read")


def _read(store: Store, query: Callable[[Session], Any]) -> Any:
    with store.reading() as session:
        return query(session)


def latest_runs(session: Session, teams: frozenset[str] | None) -> dict[tuple[str, str], Row[Any]]:
    """The newest run (highest id) of every (backend, pipeline): its id, state, times and UI link."""
    newest = select(func.max(RunRow.id)).group_by(RunRow.backend, RunRow.pipeline_id)
    columns = (RunRow.backend, RunRow.pipeline_id, RunRow.run_id, RunRow.state, RunRow.started_at, RunRow.ended_at)
    # the UI link only, extracted by the database: decoding 3,000 JSON documents costs more than the query
    url = RunRow.extra["url"].as_string().label("url")
    latest_statement = select(*columns, url).where(RunRow.id.in_(newest))
    if teams is not None:
        latest_statement = latest_statement.join(
            PipelineRow,
            (PipelineRow.backend == RunRow.backend) & (PipelineRow.pipeline_id == RunRow.pipeline_id),
        ).where(PipelineRow.team.in_(sorted(teams)))
    return {(r.backend, r.pipeline_id): r for r in session.execute(latest_statement)}


@dataclass
class SlaSummary:
    team: str | None
    state: str
    next_deadline: datetime | None
    missed_in_window: int
    detail: str = ""


def sla_cells(
    session: Session, teams: frozenset[str] | None, now: datetime, window: timedelta = sla_board.WINDOW
) -> dict[tuple[str, str], SlaSummary]:
    """Each (subject, backend)'s SLA state as ``sla.board.board`` judges it, counted by the database in one
    GROUP BY (a board of 3,000 cells has tens of thousands of slots in its window), plus the slots that need
    attention, which are few, for the cells' detail."""
    since = now - window
    # The window as sla.board has it (open, or deadline / miss / resolution since), as two parts that are each an
    # index range: the recent deadlines, and the older slots still open or missed recently (by state).
    older = (SlaSlotRow.deadline < since) | SlaSlotRow.deadline.is_(None)
    lingering = SlaSlotRow.state.in_(sla_board.OPEN) | (
        (SlaSlotRow.state == MISSED) & ((SlaSlotRow.missed_at >= since) | (SlaSlotRow.resolved_at >= since))
    )
    columns = (
        SlaSlotRow.id,
        SlaSlotRow.subject,
        SlaSlotRow.backend,
        SlaSlotRow.team,
        SlaSlotRow.state,
        SlaSlotRow.deadline,
        SlaSlotRow.missed_at,
        SlaSlotRow.resolved_at,
    )
    parts = [select(*columns).where(SlaSlotRow.deadline >= since), select(*columns).where(older & lingering)]
    if teams is not None:
        parts = [part.where(SlaSlotRow.team.in_(sorted(teams))) for part in parts]
    slots = union_all(*parts).subquery()
    state, deadline = slots.c.state, slots.c.deadline

    def count(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    def newest(of: str, column: Any) -> Any:
        return func.max(case((state == of, column), else_=None))

    statement = select(
        slots.c.subject,
        slots.c.backend,
        func.max(slots.c.team).label("team"),
        count((state == MISSED) & slots.c.resolved_at.is_(None)).label("unresolved"),
        count(state == AT_RISK).label("at_risk"),
        count(state == UNKNOWN).label("unknown"),
        count((state == MISSED) & (slots.c.missed_at >= since)).label("missed_in_window"),
        func.min(case((state.in_(sla_board.OPEN) & (deadline > now), deadline), else_=None)).label("next"),
        newest(MET, func.coalesce(deadline, now)).label("met_at"),
        newest(MISSED, func.coalesce(deadline, now)).label("missed_at"),
        newest(MET, slots.c.id).label("met_id"),
        newest(MISSED, slots.c.id).label("missed_id"),
    ).group_by(slots.c.subject, slots.c.backend)
    cells: dict[tuple[str, str], SlaSummary] = {}
    for row in session.execute(statement):
        if row.unresolved:
            verdict = MISSED
        elif row.at_risk:
            verdict = AT_RISK
        elif row.unknown:
            verdict = UNKNOWN
        elif row.met_at is None and row.missed_at is None:
            verdict = PENDING
        else:  # the newest decided slot's verdict (by deadline, then id, as the board orders them)
            met, missed = (_utc(row.met_at), row.met_id), (_utc(row.missed_at), row.missed_id)
            verdict = MET if missed[0] is None or (met[0] is not None and met > missed) else MISSED
        cells[(row.subject, row.backend)] = SlaSummary(row.team, verdict, _utc(row.next), int(row.missed_in_window))
    # The slots that need attention, found by state (ix_sla_slots_state_deadline): the first one gives the detail.
    unresolved = (SlaSlotRow.state == MISSED) & SlaSlotRow.resolved_at.is_(None)
    in_window = (SlaSlotRow.deadline >= since) | (older & lingering)
    attention = (
        select(SlaSlotRow.subject, SlaSlotRow.backend, SlaSlotRow.kind, SlaSlotRow.detail)
        .where(SlaSlotRow.state.in_((AT_RISK, UNKNOWN)) | unresolved, in_window)
        .order_by(SlaSlotRow.deadline, SlaSlotRow.id)
    )
    if teams is not None:
        attention = attention.where(SlaSlotRow.team.in_(sorted(teams)))
    for slot in session.execute(attention):
        cell = cells.get((slot.subject, slot.backend))
        if cell is not None and not cell.detail:
            cell.detail = f"{slot.kind}: {slot.detail}"[:300]
    return cells


def _utc(value: Any) -> datetime | None:
    """A MIN() over a UTC column comes back without the column's type on SQLite: a string or a naive time."""
    if value is None or isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value
    parsed = datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _fill(cell: BoardCell, sla: SlaSummary) -> None:
    cell.sla = sla.state
    cell.next_deadline = sla.next_deadline
    cell.missed_in_window = sla.missed_in_window
    cell.detail = sla.detail


@dataclass
class BackendRuns:
    backend: str
    external: bool
    runs: list[RunRow]
    attempts: list[AttemptRow]  # every try of the newest run's tasks


@dataclass
class Task:
    id: str
    upstream: list[str]
    trigger_rule: str | None = None


@dataclass
class PipelinePage:
    pipeline: str
    team: str | None
    structure: str  # "spec": drawn from the meta pipeline's tasks; "observed": task ids seen in runs, no edges
    tasks: list[Task]
    backends: list[BackendRuns]
    sla_cells: list[sla_board.Cell]
    sla_history: list[SlaSlotRow]


def pipeline_page(
    session: Session,
    pipeline_id: str,
    teams: frozenset[str] | None,
    now: datetime,
    specs: Sequence[Pipeline],
    team_of: Callable[[str], str | None],
) -> PipelinePage | None:
    """The pipeline's page, or None when the teams own no such pipeline (the caller answers 404). A workspace
    pipeline not seen on any backend yet has a page too (its tasks, no runs); ``team_of`` tells whose it is."""
    statement = select(PipelineRow).where(PipelineRow.pipeline_id == pipeline_id).order_by(PipelineRow.backend)
    if teams is not None:
        statement = statement.where(PipelineRow.team.in_(sorted(teams)))
    placements = list(session.scalars(statement))
    spec = next((p for p in specs if p.id == pipeline_id), None)
    if not placements and (spec is None or not _owned(team_of(pipeline_id), teams)):
        return None
    backends = []
    for placement in placements:
        runs = list(
            session.scalars(
                select(RunRow)
                .where(RunRow.backend == placement.backend, RunRow.pipeline_id == pipeline_id)
                .order_by(RunRow.id.desc())
                .limit(RUNS_PER_BACKEND)
            )
        )
        attempts = []
        if runs:
            attempts = list(
                session.scalars(
                    select(AttemptRow)
                    .where(
                        AttemptRow.backend == placement.backend,
                        AttemptRow.pipeline_id == pipeline_id,
                        AttemptRow.run_id == runs[0].run_id,
                    )
                    .order_by(AttemptRow.task_id, AttemptRow.map_index, AttemptRow.try_number)
                )
            )
        backends.append(BackendRuns(placement.backend, placement.external, runs, attempts))
    if spec is not None:
        structure = "spec"
        tasks = [
            Task(t.id, list(t.upstream), str(t.trigger_rule) if t.trigger_rule is not None else None)
            for t in spec.tasks
        ]
    else:
        structure = "observed"
        seen = sorted({a.task_id for b in backends for a in b.attempts})
        tasks = [Task(task_id, []) for task_id in seen]
    team = placements[0].team if placements else team_of(pipeline_id)
    return PipelinePage(
        pipeline=pipeline_id,
        team=team,
        structure=structure,
        tasks=tasks,
        backends=backends,
        sla_cells=sla_board.board(session, teams, now, subject=pipeline_id),
        sla_history=sla_board.history(session, teams, subject=pipeline_id, limit=SLA_HISTORY),
    )


def _owned(team: str | None, teams: frozenset[str] | None) -> bool:
    return teams is None or team in teams
