"""``GET /metrics`` in Prometheus' text format (0.0.4), written by hand: no client library needed.

Protection: a token is required (Prometheus sends it with ``authorization: {credentials: ...}`` or
``bearer_token_file``). The dedicated ``metrics`` role (no team) sees everything and can read nothing else, which
is what a scraper should hold; a viewer/operator/admin token also works, its run counts limited to its team.
Backend health, lag and counters are per backend for everyone (the same facts ``GET /backends`` shows), and no
label holds a pipeline name or run id, so a team's token learns nothing about another team's pipelines.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import Request
from fastapi.responses import PlainTextResponse

from meta.service.api.auth import Context, MetricsReader
from meta.service.api.routers.common import api_router
from meta.service.store import queries

router = api_router("metrics", prefix="")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HEALTHS = ("ok", "degraded", "unreachable", "unknown")


class RequestCounter:
    """API requests by method, route template (never the raw path: it holds names) and status: ASGI middleware.
    Every answer also says how long it took to start: ``Server-Timing: app;dur=<ms>``."""

    def __init__(
        self, app: Callable[..., Awaitable[None]], counts: Counter[tuple[str, str, int]], lock: threading.Lock
    ):
        self.app, self.counts, self.lock = app, counts, lock

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]
        started = time.perf_counter()

        async def sending(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                # how long the server took to answer (shown by browsers' dev tools; read by bench_dashboard)
                elapsed = (time.perf_counter() - started) * 1000
                message.setdefault("headers", []).append((b"server-timing", f"app;dur={elapsed:.1f}".encode()))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            with self.lock:
                self.counts[(scope.get("method", ""), route, status[0])] += 1


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: object) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


class Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: list[tuple[dict[str, object], float]]) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.lines += [f"{name}{_labels(**labels)} {_number(value)}" for labels, value in samples]

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
def metrics(request: Request, principal: MetricsReader, context: Context) -> PlainTextResponse:
    with request.app.state.request_lock:
        requests = sorted(request.app.state.request_counts.items())
    with context.store.reading() as session:
        counts = queries.counts_by_state_of(session, principal.teams)
        rows = queries.backends(session)
    out = Writer()
    out.family(
        "meta_runs",
        "gauge",
        "Runs in the store by backend and unified state.",
        [({"backend": b, "state": s}, n) for b, s, n in counts],
    )
    out.family(
        "meta_backend_health",
        "gauge",
        "1 for the observer's current health of each backend.",
        [({"backend": r.name, "health": h}, 1 if r.health == h else 0) for r in rows for h in HEALTHS],
    )
    lag: list[tuple[dict[str, object], float]] = []
    for r in rows:
        live = context.observer_stats.get(r.name, {}).get("lag_seconds")
        value = live if live is not None else r.lag_seconds
        if value is not None:
            lag.append(({"backend": r.name}, float(value)))
    out.family("meta_observer_lag_seconds", "gauge", "How far the observer's view is behind the backend.", lag)
    out.family(
        "meta_backend_last_success_timestamp_seconds",
        "gauge",
        "Last successful poll (Unix time).",
        [({"backend": r.name}, r.last_success_at.timestamp()) for r in rows if r.last_success_at],
    )
    out.family(
        "meta_backend_last_error_timestamp_seconds",
        "gauge",
        "Last failed poll (Unix time).",
        [({"backend": r.name}, r.last_error_at.timestamp()) for r in rows if r.last_error_at],
    )
    out.family(
        "meta_events_ingested_total",
        "counter",
        "Neutral run/attempt events ingested, polled and pushed.",
        [({"backend": r.name}, r.events_total or 0) for r in rows],
    )
    out.family(
        "meta_backend_requests_total",
        "counter",
        "HTTP requests the observer made to the backend.",
        [({"backend": r.name}, r.requests_total or 0) for r in rows],
    )
    out.family(
        "meta_api_requests_total",
        "counter",
        "Requests this API answered, by route template and status.",
        [({"method": m, "route": route, "status": status}, n) for (m, route, status), n in requests],
    )
    return PlainTextResponse(out.text(), media_type=CONTENT_TYPE)
