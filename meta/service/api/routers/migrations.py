"""Pipelines being moved between backends (``meta migrate``): each migration's phase and sides, and its report
(live and shadow runs compared, run by run).

Scoped like every endpoint: a migration is shown when the caller sees its pipeline's team; another team's answers
404, exactly as if it did not exist. Starting and switching are commands (``meta migrate``), not API calls: they
act on the backends with the workspace's deploy credentials.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from meta.service.api.auth import Context, Viewer
from meta.service.api.routers.common import api_router, not_found
from meta.service.api.schemas import NO_NUL, Problem
from meta.service.migrations import records
from meta.service.migrations.report import migration_report

router = api_router("migrations")
PipelineId = Annotated[str, Path(min_length=1, max_length=250, pattern=NO_NUL)]


@router.get("/migrations", response_model=list[dict[str, Any]], summary="every migration the caller may see")
def list_migrations(principal: Viewer, context: Context) -> list[dict[str, Any]]:
    with context.store.reading() as session:
        rows = [r for r in records.every(session) if principal.sees(r.team)]
        return [
            {
                "pipeline_id": r.pipeline_id,
                "phase": r.phase,
                "source_backend": r.source_backend,
                "target_backend": r.target_backend,
                "live_on": records.live_backend(r),
                "shadow_id": r.shadow_id,
                "handoff_slot": r.handoff_slot.isoformat() if r.handoff_slot else None,
                "history": list(r.history or []),
            }
            for r in rows
        ]


@router.get(
    "/migrations/{pipeline_id}",
    response_model=dict[str, Any],
    responses={404: {"model": Problem}},
    summary="a migration's report: live and shadow runs compared, run by run",
)
def migration(pipeline_id: PipelineId, principal: Viewer, context: Context) -> dict[str, Any]:
    with context.store.reading() as session:
        row = records.get(session, pipeline_id)
        if row is None or not principal.sees(row.team):
            raise not_found(f"migration of {pipeline_id!r}")
        return migration_report(session, pipeline_id, context.workspace.migrations.get(pipeline_id)).to_json()
