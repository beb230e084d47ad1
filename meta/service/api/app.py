"""``create_app(context)``: the control plane's FastAPI app. Every route and who may call it:

=======  ==================================================  ==================================================
method   path                                                token
=======  ==================================================  ==================================================
GET      /api/v1/health                                      none
GET      /api/v1/openapi.json, /api/v1/docs                  none (the schema holds no data)
GET      /api/v1/pipelines, /api/v1/pipelines/{id}           viewer+ (team-scoped)
GET      /api/v1/runs, /api/v1/runs/{backend}/{p}/{run}      viewer+ (team-scoped)
GET      /api/v1/slas, /api/v1/slas/history                  viewer+ (team-scoped)
GET      /api/v1/backends                                    viewer+
GET      /api/v1/stream                                      viewer+ (team-scoped server-sent events)
POST     /api/v1/pipelines/{id}/trigger                      operator+ (team-scoped)
GET      /api/v1/tokens; POST /api/v1/tokens                 admin (a team's admin: its team's tokens only)
DELETE   /api/v1/tokens/{id}                                 admin (idem)
POST     /api/v1/lineage                                     ingest only (OpenLineage; Marquez's path)
GET      /metrics                                            metrics, or viewer+ (run counts of its team)
GET      /api/v1/dashboard/board, /dashboard/pipelines/{id}  viewer+ (team-scoped; what the dashboard draws)
POST     /api/v1/session; GET, DELETE /api/v1/session        a viewer+ token in the body; GET: viewer+
GET      /, /pipelines/..., /graph, /backends, /login        none (the dashboard's pages hold no data)
=======  ==================================================  ==================================================

Another team's pipeline, run or token answers 404 exactly like a missing one. ``bootstrap_admin_token`` (the
workspace's ``control_plane.admin_token``, resolved by the caller) is accepted as an admin of every team, and
``bootstrap_ingest_token`` (``control_plane.ingest_token``: what every Airflow's OpenLineage provider is configured
with) as an ingest token; only their hashes are kept. ``stopping``: set it as soon as the server is asked to stop
(SIGTERM / Ctrl-C), before uvicorn drains connections: uvicorn waits for every open response, and an event stream
ends only when ``stopping`` is set.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from meta.service.api import tokens
from meta.service.api.routers import (
    backends,
    dashboard,
    dependencies,
    health,
    lineage,
    metrics,
    migrations,
    pipelines,
    runs,
    session,
    slas,
    stream,
    trigger,
)
from meta.service.api.routers import tokens as token_routes
from meta.service.api.routers.common import PREFIX
from meta.service.context import ServiceContext
from meta.service.dashboard import pages

MIN_BOOTSTRAP_LENGTH = 16


def create_app(
    context: ServiceContext,
    bootstrap_admin_token: str | None = None,
    *,
    bootstrap_ingest_token: str | None = None,
    stopping: threading.Event | None = None,
) -> FastAPI:
    if bootstrap_admin_token is not None and len(bootstrap_admin_token) < MIN_BOOTSTRAP_LENGTH:
        raise ValueError(f"the bootstrap admin token must be at least {MIN_BOOTSTRAP_LENGTH} characters long")
    stop = stopping if stopping is not None else threading.Event()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        # Open streams end. Enough for TestClient; uvicorn runs this only after open responses finish, so a server
        # must set ``stopping`` from its signal handler itself (see meta.service.api.routers.stream).
        stop.set()

    app = FastAPI(
        title="meta control plane",
        version="1",
        description="Every run on every orchestrator in one place. Send `Authorization: Bearer <token>`.",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        swagger_ui_oauth2_redirect_url=f"{PREFIX}/docs/oauth2-redirect",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.context = context
    app.state.bootstrap_admin_hash = tokens.hash_token(bootstrap_admin_token) if bootstrap_admin_token else None
    app.state.bootstrap_ingest_hash = tokens.hash_token(bootstrap_ingest_token) if bootstrap_ingest_token else None
    app.state.stopping = stop
    app.state.open_streams = set()
    app.state.request_counts = Counter()
    app.state.request_lock = threading.Lock()
    for module in (
        health,
        pipelines,
        trigger,
        runs,
        slas,
        dependencies,
        migrations,
        backends,
        stream,
        token_routes,
        lineage,
        metrics,
        dashboard,
        session,
    ):
        app.include_router(module.router)  # each router carries its prefix and auth responses
    pages.mount(app)
    app.add_middleware(metrics.RequestCounter, counts=app.state.request_counts, lock=app.state.request_lock)
    return app
