"""What the dashboard's pages show, read from the store in a few queries each (the board of 1,000 pipelines on 3
backends must answer in well under 150 ms on SQLite): the SLA board (team -> pipeline -> one cell per backend) and
one pipeline's page (its tasks, its runs on every backend, the latest run's task states, its SLA history)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from meta.semantics.sla import PENDING
from meta.service.sla import board as sla_board
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
    last_run: RunRow | None = None


@dataclass
class BoardRow:
    pipeline: str
    team: str | None
    cells: list[BoardCell] = field(default_factory=list)


def board_rows(session: Session, teams: frozenset[str] | None, now: datetime) -> list[BoardRow]:
    """Every pipeline the teams own, by team then id, each with one cell per backend it is on."""
    placed = select(PipelineRow).order_by(PipelineRow.team, PipelineRow.pipeline_id, PipelineRow.backend)
    if teams is not None:
        placed = placed.where(PipelineRow.team.in_(sorted(teams)))
    newest = select(func.max(RunRow.id)).group_by(RunRow.backend, RunRow.pipeline_id)
    latest_statement = select(RunRow).where(RunRow.id.in_(newest))
    if teams is not None:
        latest_statement = latest_statement.join(
            PipelineRow,
            (PipelineRow.backend == RunRow.backend) & (PipelineRow.pipeline_id == RunRow.pipeline_id),
        ).where(PipelineRow.team.in_(sorted(teams)))
    latest = {(r.backend, r.pipeline_id): r for r in session.scalars(latest_statement)}
    slas = {(c.subject, c.backend): c for c in sla_board.board(session, teams, now)}
    rows: dict[str, BoardRow] = {}
    for placement in session.scalars(placed):
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


def _fill(cell: BoardCell, sla: sla_board.Cell) -> None:
    cell.sla = sla.state
    cell.next_deadline = sla.next_deadline
    cell.missed_in_window = sla.missed_in_window
    if sla.attention:
        first = sla.attention[0]
        cell.detail = f"{first.kind}: {first.detail}"[:300]
    elif sla.latest is not None:
        cell.detail = f"{sla.latest.kind}: {sla.latest.detail}"[:300]
    elif sla.state == PENDING:
        cell.detail = "no verdict yet"


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
