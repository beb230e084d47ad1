"""Backends with their observer's health. Never a credential: the URL loses any userinfo, nothing else is read."""

from __future__ import annotations

from meta.service.api.auth import Context, Viewer
from meta.service.api.routers.common import api_router
from meta.service.api.schemas import Backend, public_url
from meta.service.store import queries

router = api_router("backends")


@router.get("/backends", response_model=list[Backend], summary="every backend and its health")
def list_backends(principal: Viewer, context: Context) -> list[Backend]:
    with context.store.reading() as session:
        rows = {row.name: Backend.of(row) for row in queries.backends(session)}
    # Backends in the workspace that no observer has reported on yet are listed too, as "unknown".
    for name, spec in context.workspace.backends.items():
        if name not in rows:
            url = getattr(spec, "url", "") or ""
            rows[name] = Backend.model_validate(
                {
                    "name": name,
                    "kind": spec.kind,
                    "url": public_url(url),
                    "health": "unknown",
                    "last_success_at": None,
                    "last_error_at": None,
                    "last_error": None,
                    "lag_seconds": None,
                    "events_total": 0,
                    "requests_total": 0,
                }
            )
    return [rows[name] for name in sorted(rows)]
