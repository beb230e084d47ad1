"""Pipelines the store has seen (meta-built and external), each with its backends and the latest run on each."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from meta.service.api.auth import Context, Viewer
from meta.service.api.routers.common import api_router, not_found
from meta.service.api.schemas import NO_NUL, Pipeline, Problem
from meta.service.store import queries
from meta.service.store.orm import PipelineRow

router = api_router("pipelines")
PipelineId = Annotated[str, Path(min_length=1, max_length=250, pattern=NO_NUL)]


def _grouped(rows: list[PipelineRow]) -> dict[str, list[PipelineRow]]:
    grouped: dict[str, list[PipelineRow]] = {}
    for row in rows:
        grouped.setdefault(row.pipeline_id, []).append(row)
    return grouped


@router.get("/pipelines", response_model=list[Pipeline], summary="every pipeline this token's team owns")
def list_pipelines(principal: Viewer, context: Context) -> list[Pipeline]:
    with context.store.reading() as session:
        rows = queries.pipelines(session, principal.teams)
        latest = queries.latest_runs(session, principal.teams)
    return [Pipeline.of(group, latest) for group in _grouped(rows).values()]


@router.get(
    "/pipelines/{pipeline_id}", response_model=Pipeline, responses={404: {"model": Problem}}, summary="one pipeline"
)
def get_pipeline(pipeline_id: PipelineId, principal: Viewer, context: Context) -> Pipeline:
    with context.store.reading() as session:
        rows = queries.pipeline(session, pipeline_id, principal.teams)
        if not rows:
            raise not_found(f"pipeline {pipeline_id!r}")
        latest = queries.latest_runs(session, principal.teams)
    return Pipeline.of(rows, latest)
