"""``GET /api/v1/health``: liveness without a token (load balancers and ``meta serve``'s readiness wait)."""

from __future__ import annotations

from fastapi import Request

from meta.service.api.routers.common import api_router
from meta.service.api.schemas import Health
from meta.service.store.db import fingerprint

router = api_router("health", authenticated=False)


@router.get("/health", response_model=Health, summary="the API answers")
def health(request: Request) -> Health:
    store = getattr(request.app.state.context, "store", None)
    url = store.engine.url.render_as_string(hide_password=False) if store is not None else None
    return Health(store=fingerprint(url) if url else None)
