"""``POST /pipelines/{id}/trigger``: start a run on the pipeline's backend, exactly once per key.

The key is what the backend deduplicates on (Airflow's ``dag_run_id``: 409 = already there; Prefect's
``idempotency_key``: the same run again). Unless the client gives ``key``, it is derived: ``meta-`` + the first 40
hex digits of SHA-256 over the canonical JSON of (pipeline, backend, params, request_id). So an identical request
(a retry after a timeout, a double click) names the same run and never starts a second one; a client that wants a
new run with the same params sends a new ``request_id`` (``meta trigger`` sends a fresh one per invocation and
reuses it on retries). Without a ``request_id`` the same params start one run, ever: exactly once by default.

Order: the store is asked first (a known key answers 200 with the recorded run, the backend is not called), then
the backend, then the key is recorded (``TriggerRow``). A crash between the last two is harmless: the retry calls
the backend with the same key, which starts nothing new, and records it then.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Annotated, Any

from fastapi import HTTPException, Path, Response

from meta.plugins.observers import BackendUnreachable, TriggerResult
from meta.service.api.auth import Context, Operator, Principal
from meta.service.api.routers.common import api_router, clean_json, not_found, scrub
from meta.service.api.schemas import NO_NUL, Problem, Trigger, TriggerRequest
from meta.service.context import ServiceContext
from meta.service.migrations import routing
from meta.service.store import queries
from meta.service.store.orm import TriggerRow

log = logging.getLogger(__name__)
router = api_router("pipelines")
PipelineId = Annotated[str, Path(min_length=1, max_length=250, pattern=NO_NUL)]


def derive_key(pipeline_id: str, backend: str, params: dict[str, Any], request_id: str | None) -> str:
    """The default idempotency key: deterministic in (pipeline, backend, params, request_id)."""
    canonical = json.dumps(
        {"pipeline": pipeline_id, "backend": backend, "params": params, "request_id": request_id},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return "meta-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def _backend_for(context: ServiceContext, principal: Principal, pipeline_id: str, asked: str | None) -> str:
    with context.store.reading() as session:
        seen = queries.pipeline(session, pipeline_id, None)
        route = routing.routes(session).get(pipeline_id)
    team = seen[0].team if seen else context.team_of(pipeline_id)
    if not principal.sees(team):
        raise not_found(f"pipeline {pipeline_id!r}")
    if route is not None:  # being migrated: it runs where the migration made it live (meta migrate)
        candidates = route.backends(context.workspace.backends_of(pipeline_id) + [r.backend for r in seen])
        if not candidates:
            raise HTTPException(409, f"pipeline {pipeline_id!r} is being switched (meta migrate); try again")
        candidates = list(dict.fromkeys(candidates))
    else:
        candidates = context.workspace.backends_of(pipeline_id)
        candidates += [row.backend for row in seen if row.backend not in candidates]
    if not candidates:
        raise not_found(f"pipeline {pipeline_id!r}: it is placed on no backend of the workspace and was never seen")
    if asked is None:
        if len(candidates) > 1:
            raise HTTPException(
                422, f"pipeline {pipeline_id!r} is on several backends ({', '.join(candidates)}): name one as 'backend'"
            )
        return candidates[0]
    if asked not in candidates:
        raise not_found(
            f"pipeline {pipeline_id!r} on backend {asked!r}: it is placed on or seen on {', '.join(candidates)} only"
        )
    return asked


@router.post(
    "/pipelines/{pipeline_id}/trigger",
    response_model=Trigger,
    status_code=201,
    responses={
        200: {"model": Trigger, "description": "this key had already started the run; nothing new was started"},
        404: {"model": Problem},
        409: {"model": Problem, "description": "the backend cannot trigger, or the key belongs to another request"},
        502: {"model": Problem},
        503: {"model": Problem},
    },
    summary="start a run (idempotent)",
)
def trigger(
    pipeline_id: PipelineId, body: TriggerRequest, principal: Operator, context: Context, response: Response
) -> Trigger:
    clean_json(body.params, "params")
    backend = _backend_for(context, principal, pipeline_id, body.backend)
    triggerer = context.triggerers.get(backend)
    if triggerer is None:
        kind = getattr(context.workspace.backends.get(backend), "kind", "unknown")
        raise HTTPException(
            409, f"backend {backend!r} (kind {kind}) cannot start runs from the control plane: it has no triggerer"
        )
    key = body.key or derive_key(pipeline_id, backend, body.params, body.request_id)
    with context.store.reading() as session:
        known = session.get(TriggerRow, key)
    if known is not None:
        if (known.backend, known.pipeline_id) != (backend, pipeline_id) or known.params != body.params:
            raise HTTPException(409, f"key {key!r} already started another request (other pipeline, backend or params)")
        response.status_code = 200
        return Trigger.of(known).model_copy(update={"created": False})
    try:
        result: TriggerResult = triggerer.trigger(pipeline_id, key, body.params, logical_date=None)
    except BackendUnreachable as exc:
        log.warning("trigger of %s on %s: backend unreachable: %s", pipeline_id, backend, scrub(str(exc)))
        raise HTTPException(503, f"backend {backend!r} did not answer: {scrub(str(exc))}") from None
    except Exception as exc:  # any refusal is the backend's answer, reported without secrets
        log.warning("trigger of %s on %s failed: %s: %s", pipeline_id, backend, type(exc).__name__, scrub(str(exc)))
        raise HTTPException(
            502, f"backend {backend!r} refused the run: {type(exc).__name__}: {scrub(str(exc))}"
        ) from None
    with context.store.transaction() as session:
        row = queries.record_trigger(
            session,
            {
                "key": key,
                "backend": backend,
                "pipeline_id": pipeline_id,
                "run_id": result.run_id,
                "created": result.created,
                "requested_by": principal.name[:100],
                "requested_at": queries.now(),
                "params": body.params,
            },
        )
        recorded = Trigger.of(row, url=result.url)
    # A concurrent identical request may have recorded the key first: the backend still answered "already there".
    response.status_code = 201 if result.created else 200
    return recorded.model_copy(update={"created": result.created})
