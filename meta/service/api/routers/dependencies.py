"""Cross-orchestrator dependencies: the graph (who waits for whom, on which backends) and, per pipeline, what it
waits for right now (which upstream, which logical date, since and until when) and what the control plane started.

Scoped like every endpoint: an edge is shown when the caller sees the downstream's team; a pipeline of another team
answers 404, exactly as if it did not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from sqlalchemy.orm import Session

from meta.service.api.auth import Context, Principal, Viewer
from meta.service.api.routers.common import api_router, not_found
from meta.service.api.schemas import (
    NO_NUL,
    DependencyEdge,
    DependencyGraph,
    DependencyWait,
    PipelineDependencies,
    Problem,
)
from meta.service.context import ServiceContext
from meta.service.dependencies import records
from meta.spec.durations import format_duration

router = api_router("dependencies")
PipelineId = Annotated[str, Path(min_length=1, max_length=250, pattern=NO_NUL)]


def edges(context: ServiceContext, principal: Principal) -> list[DependencyEdge]:
    out = []
    for pipeline in context.pipelines:
        if not pipeline.depends_on or not principal.sees(context.team_of(pipeline.id)):
            continue
        backends = context.workspace.backends_of(pipeline.id)
        for dep in pipeline.depends_on:
            out.append(
                DependencyEdge(
                    pipeline=pipeline.id,
                    upstream=dep.pipeline,
                    task=dep.task,
                    upstream_backend=dep.backend,
                    align=dep.align,
                    within=format_duration(dep.window) if dep.align == "latest" else None,
                    timeout=format_duration(dep.timeout),
                    backends=backends,
                )
            )
    return out


def dependencies_of(
    session: Session, context: ServiceContext, principal: Principal, pipeline_id: str, limit: int
) -> PipelineDependencies:
    """What ``pipeline_id`` waits for, what waits for it, and its newest ``limit`` waits, as ``principal`` sees them."""
    graph = edges(context, principal)
    rows = records.waits_of(session, pipeline_id, principal.teams, limit)
    return PipelineDependencies(
        pipeline=pipeline_id,
        upstreams=[e for e in graph if e.pipeline == pipeline_id],
        downstreams=[e for e in graph if e.upstream == pipeline_id],
        waits=[DependencyWait.model_validate(r) for r in rows],
    )


@router.get("/dependencies", response_model=DependencyGraph, summary="every cross-pipeline dependency")
def dependency_graph(principal: Viewer, context: Context) -> DependencyGraph:
    return DependencyGraph(edges=edges(context, principal))


@router.get(
    "/pipelines/{pipeline_id}/dependencies",
    response_model=PipelineDependencies,
    responses={404: {"model": Problem}},
    summary="what a pipeline waits for, what waits for it, and the runs started for it",
)
def pipeline_dependencies(
    pipeline_id: PipelineId,
    principal: Viewer,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PipelineDependencies:
    team = context.team_of(pipeline_id)
    known = {p.id for p in context.pipelines}
    if not principal.sees(team):
        raise not_found(f"pipeline {pipeline_id!r}")
    if pipeline_id not in known and not any(e.upstream == pipeline_id for e in edges(context, principal)):
        raise not_found(f"pipeline {pipeline_id!r}: no spec of the workspace defines it and nothing depends on it")
    with context.store.reading() as session:
        return dependencies_of(session, context, principal, pipeline_id, limit)
