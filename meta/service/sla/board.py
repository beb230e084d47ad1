"""Reading SLA state for people: the board (one cell per pipeline and backend) and the slot history.

A cell's state answers "do I need to look at this now": ``missed`` while a miss of the window is unresolved, else
``at_risk`` or ``unknown`` when a slot is, else the state of the newest decided slot (``met``, or ``missed`` for a
late run that since succeeded), else ``pending``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from meta.semantics.sla import AT_RISK, MET, MISSED, PENDING, UNKNOWN
from meta.service.store.orm import SlaSlotRow

OPEN = (PENDING, AT_RISK, UNKNOWN)
WINDOW = timedelta(hours=24)


@dataclass
class Cell:
    subject: str
    backend: str
    team: str | None
    state: str = PENDING
    counts: dict[str, int] = field(default_factory=dict)  # slots of the window by state
    missed_in_window: int = 0
    next_deadline: datetime | None = None
    attention: list[SlaSlotRow] = field(default_factory=list)  # unresolved misses, at-risk and unknown slots
    missed: list[SlaSlotRow] = field(default_factory=list)  # misses recorded in the window, resolved or not
    latest: SlaSlotRow | None = None  # the newest decided slot


def scoped(statement: Select[Any], teams: frozenset[str] | None) -> Select[Any]:
    return statement if teams is None else statement.where(SlaSlotRow.team.in_(sorted(teams)))


def board(
    session: Session,
    teams: frozenset[str] | None,
    now: datetime,
    *,
    backend: str | None = None,
    subject: str | None = None,
    window: timedelta = WINDOW,
) -> list[Cell]:
    since = now - window
    statement = scoped(select(SlaSlotRow), teams).where(
        or_(
            SlaSlotRow.state.in_(OPEN),
            SlaSlotRow.deadline >= since,
            SlaSlotRow.missed_at >= since,
            SlaSlotRow.resolved_at >= since,
        )
    )
    if backend:
        statement = statement.where(SlaSlotRow.backend == backend)
    if subject:
        statement = statement.where(SlaSlotRow.subject == subject)
    cells: dict[tuple[str, str], Cell] = {}
    for row in session.scalars(statement.order_by(SlaSlotRow.deadline, SlaSlotRow.id)):
        cell = cells.get((row.subject, row.backend))
        if cell is None:
            cell = cells[(row.subject, row.backend)] = Cell(row.subject, row.backend, row.team)
        cell.counts[row.state] = cell.counts.get(row.state, 0) + 1
        if row.state == MISSED and row.missed_at is not None and row.missed_at >= since:
            cell.missed_in_window += 1
            cell.missed.append(row)
        if row.state in (AT_RISK, UNKNOWN) or (row.state == MISSED and row.resolved_at is None):
            cell.attention.append(row)
        if row.state in OPEN and row.deadline is not None and row.deadline > now:
            if cell.next_deadline is None or row.deadline < cell.next_deadline:
                cell.next_deadline = row.deadline
        if row.state in (MET, MISSED) and (
            cell.latest is None or (row.deadline or now) >= (cell.latest.deadline or now)
        ):
            cell.latest = row
    for cell in cells.values():
        cell.state = _state_of(cell)
    return sorted(cells.values(), key=lambda c: (c.team or "", c.subject, c.backend))


def _state_of(cell: Cell) -> str:
    states = {row.state for row in cell.attention}
    for state in (MISSED, AT_RISK, UNKNOWN):
        if state in states:
            return state
    return cell.latest.state if cell.latest is not None else PENDING


def history(
    session: Session,
    teams: frozenset[str] | None,
    *,
    backend: str | None = None,
    subject: str | None = None,
    kind: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[SlaSlotRow]:
    """Slots newest first (by row id), keyset-paged below ``before_id``."""
    statement = scoped(select(SlaSlotRow), teams)
    if backend:
        statement = statement.where(SlaSlotRow.backend == backend)
    if subject:
        statement = statement.where(SlaSlotRow.subject == subject)
    if kind:
        statement = statement.where(SlaSlotRow.kind == kind)
    if state:
        statement = statement.where(SlaSlotRow.state == state)
    if since:
        statement = statement.where(SlaSlotRow.deadline >= since)
    if before_id is not None:
        statement = statement.where(SlaSlotRow.id < before_id)
    return list(session.scalars(statement.order_by(SlaSlotRow.id.desc()).limit(limit)))
