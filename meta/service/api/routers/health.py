"""``GET /api/v1/health``: liveness without a token (load balancers and ``meta serve``'s readiness wait)."""

from __future__ import annotations

from meta.service.api.routers.common import api_router
from meta.service.api.schemas import Health

router = api_router("health", authenticated=False)


@router.get("/health", response_model=Health, summary="the API answers")
def health() -> Health:
    return Health()
