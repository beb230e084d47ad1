"""``POST /api/v1/lineage``: OpenLineage events (the path Marquez serves), with the control plane's ingest token.

Like Marquez, the raw event is stored as received (``LineageEventRow``; a re-sent event, same SHA-256 of its
canonical JSON, is stored once). ``context.lineage`` maps Airflow's events to neutral run/attempt events, which are
ingested in the same transaction as the raw row, so a crash keeps both or neither. Events meta does not map (Spark,
dbt, any other producer) map to nothing and are kept as lineage only. A mapper that fails on an event does not
lose it: the raw event is stored and polling reconciles the runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Body, Response

from meta.service.api.auth import Context, Ingest
from meta.service.api.routers.common import api_router, clean_json
from meta.service.api.schemas import LineageAccepted, Problem
from meta.service.store import queries

log = logging.getLogger(__name__)
router = api_router("lineage")


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _row(payload: dict[str, Any], sha: str) -> dict[str, Any]:
    job: dict[str, Any] = payload["job"] if isinstance(payload.get("job"), dict) else {}
    run: dict[str, Any] = payload["run"] if isinstance(payload.get("run"), dict) else {}
    return {
        "payload_sha": sha,
        "received_at": queries.now(),
        "event_time": _time(payload.get("eventTime")),
        "event_type": _text(payload.get("eventType"), 16),
        "producer": _text(payload.get("producer"), 2000),
        "job_namespace": _text(job.get("namespace"), 250),
        "job_name": _text(job.get("name"), 2000),
        "run_uuid": _text(run.get("runId"), 64),
        "payload": payload,
    }


@router.post(
    "/lineage",
    response_model=LineageAccepted,
    status_code=201,
    responses={422: {"model": Problem}},
    summary="receive one OpenLineage event",
)
def receive_lineage(
    payload: Annotated[dict[str, Any], Body(description="an OpenLineage RunEvent (any producer)")],
    principal: Ingest,
    context: Context,
    response: Response,
) -> LineageAccepted:
    clean_json(payload, "the event")
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    sha = hashlib.sha256(canonical.encode()).hexdigest()
    try:
        events = list(context.lineage(payload))
    except Exception as exc:  # a mapper bug must not lose the event; polling reconciles runs
        log.warning(
            "OpenLineage event %s could not be mapped (%s); stored as lineage only", sha[:12], type(exc).__name__
        )
        events = []
    with context.store.transaction() as session:
        stored = queries.store_lineage(session, _row(payload, sha))
        if stored and events:
            queries.ingest(session, events, team_of=context.team_of)
            queries.count_events(session, dict(Counter(e.backend for e in events)))
    return LineageAccepted(stored=stored, events=len(events) if stored else 0)
