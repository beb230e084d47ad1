"""Runs across every backend (filtered, keyset-paged, newest first) and one run with all its task attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import HTTPException, Path, Query

from meta.plugins.observers import UnifiedState
from meta.service.api.auth import Context, Viewer
from meta.service.api.routers.common import api_router, aware, not_found
from meta.service.api.schemas import NO_NUL, Attempt, Problem, Run, RunDetail, RunPage
from meta.service.store import queries

router = api_router("runs")

Text = Annotated[str | None, Query(min_length=1, max_length=250, pattern=NO_NUL)]
PathKey = Annotated[str, Path(min_length=1, max_length=250, pattern=NO_NUL)]
MAX_ID = 2**62


def _checked_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        (value,) = queries.decode_cursor(cursor)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    if not 0 <= value < MAX_ID:
        raise HTTPException(400, "invalid cursor: pass the next_cursor of a previous page unchanged")
    return cursor


@router.get("/runs", response_model=RunPage, responses={400: {"model": Problem}}, summary="runs, newest first")
def list_runs(
    principal: Viewer,
    context: Context,
    team: Annotated[str | None, Query(max_length=63, pattern=r"^[a-z][a-z0-9_\-]*$")] = None,
    backend: Text = None,
    pipeline: Text = None,
    state: Annotated[UnifiedState | None, Query(description="unified state")] = None,
    since: Annotated[datetime | None, Query(description="started at or after (naive: UTC)")] = None,
    until: Annotated[datetime | None, Query(description="started before (naive: UTC)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
) -> RunPage:
    teams = principal.teams
    if team is not None:
        if teams is not None and team not in teams:
            return RunPage(runs=[], next_cursor=None)  # another team's runs: none visible, exactly as if it had none
        teams = frozenset({team})
    where = queries.RunFilter(
        teams=teams,
        backend=backend,
        pipeline_id=pipeline,
        state=state.value if state else None,
        since=aware(since, "since"),
        until=aware(until, "until"),
    )
    with context.store.reading() as session:
        rows, next_cursor = queries.list_runs(session, where, limit=limit, cursor=_checked_cursor(cursor))
    return RunPage(runs=[Run.of(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/runs/{backend}/{pipeline_id}/{run_id}",
    response_model=RunDetail,
    responses={404: {"model": Problem}},
    summary="one run and every attempt of its tasks",
)
def get_run(backend: PathKey, pipeline_id: PathKey, run_id: PathKey, principal: Viewer, context: Context) -> RunDetail:
    with context.store.reading() as session:
        row = queries.get_run(session, backend, pipeline_id, run_id, principal.teams)
        if row is None:
            raise not_found(f"run {run_id!r} of pipeline {pipeline_id!r} on backend {backend!r}")
        attempts = queries.attempts_of(session, backend, pipeline_id, run_id)
    return RunDetail(run=Run.of(row), attempts=[Attempt.of(a) for a in attempts])
