"""What the dashboard's pages read, each in one call: the SLA board and one pipeline's page. Team-scoped like every
route (another team's pipeline answers 404); shaped for drawing, the fuller records are under /pipelines, /runs,
/slas and /dependencies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path, Response

from meta.service.api.auth import Context, Viewer
from meta.service.api.routers.common import api_router, not_found
from meta.service.api.routers.dependencies import dependencies_of
from meta.service.api.routers.slas import cell_schema
from meta.service.api.schemas import (
    NO_NUL,
    Attempt,
    DashboardBackendRuns,
    DashboardBoard,
    DashboardPipeline,
    DashboardTask,
    Problem,
    Run,
    SlaSlot,
)
from meta.service.dashboard import views

router = api_router("dashboard")
PipelineId = Annotated[str, Path(min_length=1, max_length=250, pattern=NO_NUL)]
WAITS = 10  # the newest dependency waits a pipeline page lists


@router.get("/dashboard/board", response_model=DashboardBoard, summary="the SLA board: team -> pipeline -> backend")
def board(principal: Viewer, context: Context) -> Response:
    # Plain dicts into JSON, past pydantic: 3,000 cells would spend most of the request building and re-checking
    # models (the response_model still documents the shape, and the API tests check answers against it).
    now = datetime.now(UTC)
    rows = views.board_rows(context.store, principal.teams, now)
    teams: dict[str | None, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    backends: set[str] = set()
    for row in rows:
        cells = []
        for cell in row.cells:
            counts[cell.sla] = counts.get(cell.sla, 0) + 1
            backends.add(cell.backend)
            cells.append(
                {
                    "backend": cell.backend,
                    "external": cell.external,
                    "sla": cell.sla,
                    "next_deadline": _iso(cell.next_deadline),
                    "missed_in_window": cell.missed_in_window,
                    "detail": cell.detail,
                    "last_run": _last_run(cell.last_run),
                }
            )
        teams.setdefault(row.team, []).append({"id": row.pipeline, "cells": cells})
    body = {
        "as_of": now.isoformat(),
        "counts": counts,
        "backends": sorted(backends | set(context.workspace.backends)),
        "teams": [{"team": team, "pipelines": pipelines} for team, pipelines in teams.items()],
    }
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _last_run(run: Any) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "run_id": run.run_id,
        "state": run.state,
        "started_at": _iso(run.started_at),
        "ended_at": _iso(run.ended_at),
        "url": run.url,
    }


@router.get(
    "/dashboard/pipelines/{pipeline_id}",
    response_model=DashboardPipeline,
    responses={404: {"model": Problem}},
    summary="one pipeline's page: tasks, runs on every backend, SLA history",
)
def pipeline(pipeline_id: PipelineId, principal: Viewer, context: Context) -> DashboardPipeline:
    now = datetime.now(UTC)
    with context.store.reading() as session:
        page = views.pipeline_page(session, pipeline_id, principal.teams, now, context.pipelines, context.team_of)
        if page is None:
            raise not_found(f"pipeline {pipeline_id!r}")
        kinds = {name: spec.kind for name, spec in context.workspace.backends.items()}
        return DashboardPipeline(
            id=page.pipeline,
            team=page.team,
            structure="spec" if page.structure == "spec" else "observed",
            tasks=[DashboardTask(id=t.id, upstream=t.upstream, trigger_rule=t.trigger_rule) for t in page.tasks],
            backends=[
                DashboardBackendRuns(
                    backend=b.backend,
                    kind=kinds.get(b.backend, "unknown"),
                    external=b.external,
                    runs=[Run.of(r) for r in b.runs],
                    attempts=[Attempt.of(a) for a in b.attempts],
                )
                for b in page.backends
            ],
            sla=[cell_schema(c) for c in page.sla_cells],
            sla_history=[SlaSlot.model_validate(r) for r in page.sla_history],
            dependencies=dependencies_of(session, context, principal, page.pipeline, WAITS),
        )
