"""What an observer is: the one neutral vocabulary of run facts the control plane consumes, and the contract a backend
kind implements (registered through the ``register_observers`` hook, like targets).

An observer turns one backend's facts (Airflow's REST v2, OpenLineage pushes, Prefect's events, the local run
history) into :class:`RunEvent` objects. Everything downstream (the store, the API, SLAs, triggers) sees only these,
never an adapter's types. Each event keeps the backend's own state name (``raw_state``) beside the unified one.

Polling is the source of truth; pushes only make things fast. A poll returns a :class:`Batch`: events plus the
opaque cursor that covers them. The store commits both in one transaction, so after a crash the observer resumes
from a cursor whose events are stored, and re-delivered events are harmless (upserts are idempotent).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit


class EventKind(StrEnum):
    RUN = "run"
    TASK_ATTEMPT = "task_attempt"


class UnifiedState(StrEnum):
    """Run and task-attempt states every backend's are mapped to (Airflow's names; runs use the first five)."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"
    # Everything an orchestrator can say that is none of the above (Airflow "removed", "deferred", Prefect "Paused").
    OTHER = "other"

    @property
    def is_terminal(self) -> bool:
        return self in {UnifiedState.SUCCESS, UnifiedState.FAILED, UnifiedState.SKIPPED, UnifiedState.UPSTREAM_FAILED}


class Source(StrEnum):
    POLL = "poll"
    PUSH = "push"


@dataclass(frozen=True)
class RunEvent:
    """One observed fact: run ``run_id`` of ``pipeline_id`` on ``backend`` (or one attempt of one of its tasks) was in
    ``state`` as of ``as_of``. The store keeps the newest fact per run/attempt: an older fact never overwrites a
    newer one, so out-of-order and repeated deliveries converge to the same history.

    Keys: a run is (backend, pipeline_id, run_id); an attempt adds (task_id, map_index, try_number). A cleared and
    re-run Airflow task gets a new try_number, so it is a new attempt and the earlier one stays in the history.
    """

    backend: str
    kind: EventKind
    pipeline_id: str
    run_id: str
    state: UnifiedState
    raw_state: str | None
    # Aware; when the backend said so: the state's own timestamp where the backend gives one (Prefect, on both paths),
    # else the event's time (push) or the start of the request that read it (poll).
    as_of: datetime
    source: Source
    task_id: str | None = None
    try_number: int | None = None
    map_index: int = -1
    logical_date: datetime | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    # True for DAGs/flows meta did not build (observed as external pipelines).
    external: bool = False
    # Backend-specific extras worth keeping (Airflow's run_type, Prefect's flow-run id, a UI link): JSON values only.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.as_of.tzinfo is None:
            raise ValueError(f"RunEvent.as_of must be timezone-aware, got {self.as_of!r}")
        if (self.kind is EventKind.TASK_ATTEMPT) != (self.task_id is not None and self.try_number is not None):
            raise ValueError("a task_attempt event needs task_id and try_number; a run event has neither")

    @property
    def run_key(self) -> tuple[str, str, str]:
        return (self.backend, self.pipeline_id, self.run_id)


@dataclass(frozen=True)
class Batch:
    """Events and the cursor that covers them (``None``: the cursor did not move). ``more``: call again at once."""

    events: list[RunEvent]
    cursor: str | None
    more: bool = False
    requests: int = 0  # HTTP requests this batch took (the benchmark and /metrics count them)
    bytes_received: int = 0


class BackendUnreachable(Exception):
    """The backend did not answer (connection refused, timeout, 5xx). The runtime backs off and retries; the
    message must never hold a credential."""


@runtime_checkable
class Observer(Protocol):
    """One backend's observer; created per backend by its :class:`ObserverKind`. Methods run on the observer's own
    thread, so a slow or dead backend never delays another."""

    def poll(self, cursor: str | None) -> Batch:
        """Facts newer than ``cursor`` (``None``: from the beginning), one page at a time. Raises
        :class:`BackendUnreachable` when the backend cannot be reached."""
        ...

    def close(self) -> None: ...


class PushSource(Protocol):
    """An optional second channel: a stream the observer keeps open (Prefect's websocket). ``deliver`` gets batches
    as they arrive; the call returns when ``stop`` is set, or raises :class:`BackendUnreachable` when the stream
    breaks (the runtime reopens it from the last delivered cursor)."""

    def stream(self, cursor: str | None, deliver: Callable[[Batch], None], stop: threading.Event) -> None: ...


@dataclass(frozen=True)
class TriggerResult:
    """A run started by the control plane. ``created`` is False when the idempotency key had already started it
    (Airflow's 409 for a known ``dag_run_id``, Prefect's same run for a known ``idempotency_key``)."""

    run_id: str
    created: bool
    url: str | None = None


class Triggerable(Protocol):
    """An observer that can also start runs. ``key`` is deterministic (the same request gives the same key), and the
    backend's own idempotency makes a repeated call start nothing: exactly once by construction."""

    def trigger(
        self, pipeline_id: str, key: str, params: Mapping[str, Any], logical_date: datetime | None
    ) -> TriggerResult: ...


class Switchable(Protocol):
    """An observer that can also stop and resume a pipeline's own schedule (``meta migrate cutover``/``rollback``).

    ``newest_logical_date`` is the newest logical date among the pipeline's runs, whatever their state (after a
    pause: the last slot this side will ever run); ``next_native_slot`` is the logical date the backend's scheduler
    would create next (None when it has none: unscheduled, or paused without one computed).

    ``pausing_stalls_runs``: a paused pipeline's runs in flight stop progressing (Airflow), so the switch pauses it
    between runs; ``mark_handled`` records a slot another backend ran as a finished run, so that this backend's
    scheduler, resumed, does not run it again (Airflow: one run per logical date; None where not needed)."""

    pausing_stalls_runs: bool
    has_scheduler: bool  # False: only meta starts its runs (the local runner), so no schedule is resumed

    def is_paused(self, pipeline_id: str) -> bool: ...

    def unfinished_runs(self, pipeline_id: str) -> int: ...

    def mark_handled(self, pipeline_id: str, logical_date: datetime, key: str, note: str) -> None: ...

    def set_paused(self, pipeline_id: str, paused: bool) -> None: ...

    def newest_logical_date(self, pipeline_id: str) -> datetime | None: ...

    def next_native_slot(self, pipeline_id: str) -> datetime | None: ...

    def has_run_at(self, pipeline_id: str, logical_date: datetime) -> bool: ...


@dataclass(frozen=True)
class BackendConnection:
    """What an observer needs to reach one backend, from the workspace file: secrets already resolved. Never
    logged or returned by the API (``repr`` hides ``credentials``)."""

    name: str
    kind: str
    url: str
    options: Mapping[str, Any] = field(default_factory=dict)
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)
    # meta-built pipelines placed on this backend: the DAG/flow name -> pipeline id; every other DAG is external.
    pipelines: Mapping[str, str] = field(default_factory=dict)


def public_url(url: str) -> str:
    """``url`` without user info and query (either may carry a credential): what may be stored, logged or shown."""
    parts = urlsplit(url)
    if not parts.netloc:
        return url.split("?", 1)[0]
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class ObserverKind:
    """A backend kind the control plane can watch (``kind: airflow`` in the workspace file)."""

    kind: str
    create: Callable[[BackendConnection], Observer]
    description: str = ""
