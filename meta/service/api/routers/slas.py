"""SLA status: the board (per pipeline and backend, with counts) and the history of every judged slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import HTTPException, Query

from meta.semantics.sla import STATES
from meta.service.api.auth import Context, Principal, Viewer
from meta.service.api.routers.common import api_router, aware
from meta.service.api.schemas import NO_NUL, Problem, SlaBoard, SlaCell, SlaHistory, SlaSlot
from meta.service.sla import board as boards
from meta.service.store import queries

router = api_router("slas")

Text = Annotated[str | None, Query(min_length=1, max_length=250, pattern=NO_NUL)]
TeamQuery = Annotated[str | None, Query(max_length=63, pattern=r"^[a-z][a-z0-9_\-]*$")]
StateQuery = Annotated[str | None, Query(pattern="^(" + "|".join(STATES) + ")$", description="one SLA state")]


def _teams(principal: Principal, team: str | None) -> frozenset[str] | None:
    """The teams to show (None: every team). Ask ``principal.sees(team)`` first: another team's answers nothing."""
    return frozenset({team}) if team is not None else principal.teams


def cell_schema(c: boards.Cell) -> SlaCell:
    return SlaCell(
        pipeline=c.subject,
        backend=c.backend,
        team=c.team,
        state=c.state,
        counts=c.counts,
        missed_in_window=c.missed_in_window,
        next_deadline=c.next_deadline,
        attention=[SlaSlot.model_validate(r) for r in c.attention],
        missed=[SlaSlot.model_validate(r) for r in c.missed],
        latest=SlaSlot.model_validate(c.latest) if c.latest is not None else None,
    )


@router.get("/slas", response_model=SlaBoard, summary="the SLA board: every pipeline on every backend")
def sla_board(
    principal: Viewer,
    context: Context,
    team: TeamQuery = None,
    backend: Text = None,
    pipeline: Text = None,
    state: StateQuery = None,
    window_hours: Annotated[float, Query(gt=0, le=24 * 31, description="how far back misses count")] = 24,
) -> SlaBoard:
    now = datetime.now(UTC)
    cells: list[SlaCell] = []
    if team is None or principal.sees(team):  # another team's board is empty, exactly as if it had no SLAs
        with context.store.reading() as session:
            found = boards.board(
                session,
                _teams(principal, team),
                now,
                backend=backend,
                subject=pipeline,
                window=timedelta(hours=window_hours),
            )
        cells = [cell_schema(c) for c in found if state is None or c.state == state]
    counts: dict[str, int] = {}
    for cell in cells:
        counts[cell.state] = counts.get(cell.state, 0) + 1
    return SlaBoard(as_of=now, window_hours=window_hours, counts=counts, cells=cells)


@router.get(
    "/slas/history",
    response_model=SlaHistory,
    responses={400: {"model": Problem}},
    summary="judged SLA slots, newest first",
)
def sla_history(
    principal: Viewer,
    context: Context,
    team: TeamQuery = None,
    backend: Text = None,
    pipeline: Text = None,
    kind: Text = None,
    state: StateQuery = None,
    since: Annotated[datetime | None, Query(description="deadline at or after (naive: UTC)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
) -> SlaHistory:
    if team is not None and not principal.sees(team):
        return SlaHistory(slots=[], next_cursor=None)
    before = None
    if cursor is not None:
        try:
            (before,) = queries.decode_cursor(cursor)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
    with context.store.reading() as session:
        rows = boards.history(
            session,
            _teams(principal, team),
            backend=backend,
            subject=pipeline,
            kind=kind,
            state=state,
            since=aware(since, "since"),
            before_id=before,
            limit=limit + 1,
        )
    next_cursor = queries.encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return SlaHistory(slots=[SlaSlot.model_validate(r) for r in rows[:limit]], next_cursor=next_cursor)
