"""``GET /api/v1/stream``: server-sent events of run, task attempt, SLA slot and dependency wait changes (events
``run``, ``task_attempt``, ``sla_slot``, ``dependency_wait``), scoped to the token's team.

Each event's ``id:`` is the row's ``change_seq``, so a reconnecting ``EventSource`` (which sends ``Last-Event-ID``)
resumes exactly after the last change it saw; gaps in the numbers are normal. Without ``Last-Event-ID`` or
``?since=`` the stream starts at the newest change (read the current state from ``/runs`` first). The store is
polled every 0.5 s in a worker thread; a comment line every 15 s keeps proxies from closing an idle stream.

The generator ends when the client disconnects (Starlette cancels it) or when ``app.state.stopping`` is set: the
server sets that event before shutting down, since uvicorn waits for open responses to finish.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from meta.service.api.auth import Context, Viewer
from meta.service.api.routers.common import api_router
from meta.service.api.schemas import Attempt, DependencyWait, Problem, Run, SlaSlot
from meta.service.context import ServiceContext
from meta.service.store import queries
from meta.service.store.orm import AttemptRow, DependencyWaitRow, RunRow, SlaSlotRow

router = api_router("stream")
POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
PAGE = 500


def _event(row: RunRow | AttemptRow | SlaSlotRow | DependencyWaitRow) -> tuple[str, dict[str, Any]]:
    if isinstance(row, RunRow):
        return "run", Run.of(row).model_dump(mode="json")
    if isinstance(row, AttemptRow):
        return "task_attempt", Attempt.of(row).model_dump(mode="json")
    if isinstance(row, SlaSlotRow):
        return "sla_slot", SlaSlot.model_validate(row).model_dump(mode="json")
    return "dependency_wait", DependencyWait.model_validate(row).model_dump(mode="json")


def _frames(context: ServiceContext, seq: int, teams: frozenset[str] | None) -> tuple[int, list[str], bool]:
    """The SSE frames of the changes after ``seq``, the new position, and whether a full page came back."""
    with context.store.reading() as session:
        rows = queries.changes_since(session, seq, teams, limit=PAGE)
        frames = []
        for row in rows:
            kind, data = _event(row)
            frames.append(f"id: {row.change_seq}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n")
            seq = max(seq, row.change_seq)
    return seq, frames, len(rows) >= PAGE


def _start(context: ServiceContext, last_event_id: str | None, since: int | None) -> int:
    if last_event_id is not None:
        try:
            value = int(last_event_id.strip())
        except ValueError:
            raise HTTPException(400, "Last-Event-ID must be the id of an event this stream sent (an integer)") from None
        if not 0 <= value < 2**62:
            raise HTTPException(400, "Last-Event-ID is out of range")
        return value
    if since is not None:
        return since
    with context.store.reading() as session:
        return queries.current_change_seq(session)


async def _events(
    request: Request, context: ServiceContext, seq: int, teams: frozenset[str] | None
) -> AsyncIterator[str]:
    stopping: threading.Event = request.app.state.stopping
    streams: set[object] = request.app.state.open_streams
    me = object()
    streams.add(me)
    try:
        yield f"retry: 2000\n: changes after {seq}\n\n"
        idle = 0.0
        while not stopping.is_set():
            seq, frames, full = await run_in_threadpool(_frames, context, seq, teams)
            for frame in frames:
                yield frame
            if full:
                continue
            idle = 0.0 if frames else idle + POLL_SECONDS
            if idle >= KEEPALIVE_SECONDS:
                idle = 0.0
                yield ": keepalive\n\n"
            await anyio.sleep(POLL_SECONDS)
    finally:
        streams.discard(me)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "never ends"}, 400: {"model": Problem}},
    summary="server-sent events of run, attempt, SLA slot and dependency wait changes",
)
async def stream(
    request: Request,
    principal: Viewer,
    context: Context,
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
    since: Annotated[int | None, Query(ge=0, lt=2**62, description="start after this change number")] = None,
) -> StreamingResponse:
    seq = await run_in_threadpool(_start, context, last_event_id, since)
    return StreamingResponse(
        _events(request, context, seq, principal.teams),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
