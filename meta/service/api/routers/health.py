"""``GET /api/v1/health``: liveness without a token (load balancers and ``meta serve``'s readiness wait)."""

from __future__ import annotations

from fastapi import APIRouter

from meta.service.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, summary="the API answers")
def health() -> Health:
    return Health()
