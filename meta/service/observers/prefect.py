"""The Prefect 3 observer: flow runs and task attempts from a Prefect server's events, reconciled with its REST API.

Prefect has no "updated since" filter on flow or task runs, but every state change is an event (kept 7 days) whose
id is the state's id and whose ``occurred`` is the state's timestamp. So:

* **poll** (the source of truth): ``POST /api/events/filter`` since the cursor's time minus an overlap (late client
  events), then the changed flow runs by id (``POST /api/flow_runs/filter``) and their task runs
  (``POST /api/task_runs/filter``: every task run of a flow run that is final, only the named ones of one still in
  flight). A quiet cycle is one request. Without a cursor, or past the event retention, a full resync lists every
  flow run (pages of 200) before going incremental.
* **stream** (fast): the websocket ``/api/events/out`` (subprotocol ``prefect``, auth message, filter on flow-run
  and task-run events). The server subscribes first and backfills second (like Prefect's own ``wait_for_flow_run``)
  from the cursor's time minus the overlap; because its backfill reads a table filled up to 5 s late, the stream
  also re-reads ``events/filter`` once shortly after connecting. So a reconnect resumes with no gap; events are
  deduped on their id.
* **trigger**: ``POST /api/deployments/{id}/create_flow_run`` with the key as ``idempotency_key`` (201 created,
  200 the run that key already made).

Every fact's ``as_of`` is the Prefect state's own timestamp (event and REST agree on it), so a REST read made while
Prefect's task-run recorder lags behind its events never hides a newer pushed state.

Identities. Pipeline: the flow name; a flow named in ``BackendConnection.pipelines`` (flow name -> pipeline id) is
meta-built, every other flow is external. The flow name is the key because meta names each flow after its pipeline
(``meta_prefect.flow.flow_options``), while the deployment name is ``meta`` for all of them. Run:
``prefect__<flow run id>``, the run id meta's Prefect driver gives the run (``META_RUN_ID``, alerts). Task: a
meta-built flow's task id is the prefix of the task key (meta names each task function ``<pipeline>.<task id>``;
the run name is the task id too, but only from Running on); an external flow's is the task run's name, as Prefect's
UI shows it (``<task>-<3 chars of its dynamic key>`` unless the flow sets ``task_run_name``). Attempt: a task run's
``run_count``; earlier attempts were retried after failing, so they are ``up_for_retry``.

States (``raw_state`` keeps Prefect's state name):

=====================  =====================================  =====================================
Prefect type / name    flow run                               task attempt
=====================  =====================================  =====================================
SCHEDULED              scheduled (Late too)                   scheduled; AwaitingRetry: up_for_retry
SCHEDULED AwaitingRetry running (the run is between tries)    up_for_retry (the attempt that failed)
PENDING                queued                                 queued; NotReady: upstream_failed [1]
RUNNING                running (Retrying too)                 running (Retrying: the next attempt)
COMPLETED              success                                success; Skipped: skipped [2]
FAILED                 failed                                 failed; UpstreamFailed: upstream_failed [2]
CRASHED, CANCELLED     failed [3]                             failed
CANCELLING             running (still in flight)              running
PAUSED                 other                                  other
=====================  =====================================  =====================================

[1] Prefect's own upstream failure: a task whose ``wait_for`` upstream failed stays ``Pending``/``NotReady``.
[2] meta's driver marks skipped / upstream_failed tasks with these named states (``meta_prefect.states``); tasks it
    decided without running carry the tag ``meta:not-run`` and are reported as try 0 (Airflow 3 and the local
    observer do the same), their final state only.
[3] Airflow has no cancelled run; a stopped Airflow run is failed, and meta's Prefect target reads it so too.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from meta.plugins.observers import (
    BackendConnection,
    BackendUnreachable,
    Batch,
    EventKind,
    ObserverKind,
    RunEvent,
    Source,
    TriggerResult,
    UnifiedState,
)

OVERLAP = timedelta(seconds=60)  # client-side task-run events reach the server late; re-read this much
RETENTION = timedelta(days=7)  # Prefect's default event retention (PREFECT_SERVER_EVENTS_RETENTION_PERIOD)
RETENTION_MARGIN = timedelta(hours=1)
CATCH_UP = timedelta(seconds=8)  # > Prefect's event persister flush interval (5 s), see ``stream``
PAGE = 200  # flow_runs/filter and task_runs/filter refuse more
MAX_EVENT_PAGES = 20  # 50 events each; more waiting: the batch says ``more``
EVENT_PREFIXES = ["prefect.flow-run.", "prefect.task-run."]
RUN_PREFIX = "prefect__"
DEFAULT_DEPLOYMENT = "meta"  # the deployment name ``meta deploy --target prefect`` uses

# meta's Prefect driver (meta_prefect.states): named states for Airflow's skipped / upstream_failed.
SKIPPED = "Skipped"
UPSTREAM_FAILED = "UpstreamFailed"
NOT_RUN_TAG = "meta:not-run"
NOT_READY = "NotReady"  # Prefect's own: an upstream of wait_for did not complete
BODY_LIMIT = 300


# ---------------------------------------------------------------------------------------------- states


def run_state(state_type: str | None, name: str | None) -> UnifiedState:
    kind = (state_type or "").upper()
    if kind == "SCHEDULED":
        return UnifiedState.RUNNING if name == "AwaitingRetry" else UnifiedState.SCHEDULED
    return {
        "PENDING": UnifiedState.QUEUED,
        "RUNNING": UnifiedState.RUNNING,
        "CANCELLING": UnifiedState.RUNNING,
        "COMPLETED": UnifiedState.SUCCESS,
        "FAILED": UnifiedState.FAILED,
        "CRASHED": UnifiedState.FAILED,
        "CANCELLED": UnifiedState.FAILED,
    }.get(kind, UnifiedState.OTHER)


def task_state(state_type: str | None, name: str | None) -> UnifiedState:
    kind = (state_type or "").upper()
    if kind == "SCHEDULED":
        return UnifiedState.UP_FOR_RETRY if name == "AwaitingRetry" else UnifiedState.SCHEDULED
    if kind == "PENDING":
        return UnifiedState.UPSTREAM_FAILED if name == NOT_READY else UnifiedState.QUEUED
    if kind == "COMPLETED":
        return UnifiedState.SKIPPED if name == SKIPPED else UnifiedState.SUCCESS
    if kind == "FAILED":
        return UnifiedState.UPSTREAM_FAILED if name == UPSTREAM_FAILED else UnifiedState.FAILED
    return {
        "RUNNING": UnifiedState.RUNNING,
        "CANCELLING": UnifiedState.RUNNING,
        "CRASHED": UnifiedState.FAILED,
        "CANCELLED": UnifiedState.FAILED,
    }.get(kind, UnifiedState.OTHER)


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------- cursor


@dataclass(frozen=True)
class Cursor:
    """What the store keeps between polls (opaque to it): the time events are read from, or a resync in progress."""

    since: datetime | None = None  # read events occurred at or after since - overlap
    overlap: bool = True  # False: continue exactly at ``since`` (the previous poll stopped mid-stream)
    resync_offset: int | None = None  # a full resync: the next flow_runs/filter offset
    resync_started: datetime | None = None

    def encode(self) -> str:
        data: dict[str, Any] = {"v": 1}
        if self.since is not None:
            data["since"] = _iso(self.since)
            if not self.overlap:
                data["exact"] = True
        if self.resync_offset is not None and self.resync_started is not None:
            data["resync"] = {"offset": self.resync_offset, "started": _iso(self.resync_started)}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            resync = data.get("resync")
            return cls(
                since=_time(data.get("since")),
                overlap=not data.get("exact", False),
                resync_offset=int(resync["offset"]) if resync else None,
                resync_started=_time(resync["started"]) if resync else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls()  # a cursor from another version: resync (idempotent upserts make that harmless)

    def read_from(self, overlap: timedelta) -> datetime | None:
        if self.since is None:
            return None
        return self.since - overlap if self.overlap else self.since


# ---------------------------------------------------------------------------------------------- HTTP


class PrefectObserverError(RuntimeError):
    """The server answered with an error that retrying will not fix (a refused request, not an outage)."""


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class _Http:
    """One httpx client counting requests and bytes; maps failures to :class:`BackendUnreachable` with no secret."""

    def __init__(self, base_url: str, auth: tuple[str, str] | None, timeout: float):
        self.base = base_url.rstrip("/") + "/"
        self.shown = _safe_url(base_url)
        self.client = httpx.Client(base_url=self.base, auth=auth, timeout=timeout)
        self.requests = 0
        self.bytes = 0

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        self.requests += 1
        where = f"{method} {self.shown.rstrip('/')}/{path.split('?', 1)[0]}"
        try:
            response = self.client.request(method, path, json=body)
        except httpx.HTTPError as exc:  # connection refused, timeouts, broken responses
            raise BackendUnreachable(f"Prefect did not answer {where}: {type(exc).__name__}") from None
        self.bytes += len(response.content)
        status = response.status_code
        if status >= 500 or status == 429:
            raise BackendUnreachable(f"Prefect answered {where} with HTTP {status}")
        if status in (401, 403):
            raise BackendUnreachable(
                f"Prefect refused {where} with HTTP {status}: check the backend's auth secret (user:password)"
            )
        if status >= 400:
            text = response.text if len(response.text) <= BODY_LIMIT else response.text[:BODY_LIMIT] + "..."
            raise PrefectObserverError(f"Prefect answered {where} with HTTP {status}: {text}")
        return response

    def json(self, method: str, path: str, body: Any = None) -> Any:
        response = self.call(method, path, body)
        return response.json() if response.content else None

    def take(self) -> tuple[int, int]:
        counts = (self.requests, self.bytes)
        self.requests = self.bytes = 0
        return counts

    def close(self) -> None:
        self.client.close()


# ---------------------------------------------------------------------------------------------- facts


@dataclass
class _Facts:
    """RunEvents of one batch merged per key: the newest state wins, times are kept from whichever fact had them."""

    events: dict[tuple[Any, ...], RunEvent] = field(default_factory=dict)

    def add(self, event: RunEvent | None) -> None:
        if event is None:
            return
        key = (event.kind, event.pipeline_id, event.run_id, event.task_id, event.map_index, event.try_number)
        held = self.events.get(key)
        if held is None:
            self.events[key] = event
            return
        newer, older = (event, held) if event.as_of >= held.as_of else (held, event)
        self.events[key] = replace(
            newer,
            logical_date=newer.logical_date or older.logical_date,
            queued_at=newer.queued_at or older.queued_at,
            started_at=_earliest(newer.started_at, older.started_at),
            ended_at=newer.ended_at or older.ended_at,
        )

    def extend(self, events: Iterable[RunEvent]) -> None:
        for event in events:
            self.add(event)

    def list(self) -> list[RunEvent]:
        return list(self.events.values())


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return min(a, b)


def _related(event: Mapping[str, Any], role: str) -> tuple[str | None, str | None]:
    """(id, name) of the related resource with ``role``: ids are ``prefect.<kind>.<uuid>``."""
    for resource in event.get("related") or []:
        if resource.get("prefect.resource.role") == role:
            rid = str(resource.get("prefect.resource.id", ""))
            return rid.rsplit(".", 1)[-1], resource.get("prefect.resource.name")
    return None, None


def _is_state_event(event: Mapping[str, Any]) -> bool:
    """State changes only (not heartbeats or pull-step events, which share the prefix)."""
    return "prefect.state-type" in (event.get("resource") or {})


class _Mapper:
    """Prefect's flow runs, task runs and events -> neutral RunEvents (the mapping the module docstring describes)."""

    def __init__(self, backend: str, pipelines: Mapping[str, str], ui_url: str | None):
        self.backend = backend
        self.pipelines = dict(pipelines)
        self.ui_url = ui_url.rstrip("/") if ui_url else None

    def pipeline_of(self, flow_name: str) -> tuple[str, bool]:
        """(pipeline id, external)."""
        if flow_name in self.pipelines:
            return self.pipelines[flow_name], False
        return flow_name, True

    def flow_name_of(self, pipeline_id: str) -> str:
        for flow, pipeline in self.pipelines.items():
            if pipeline == pipeline_id:
                return flow
        return pipeline_id

    def _run_extra(self, flow_run_id: str, name: str | None, deployment_id: str | None) -> dict[str, Any]:
        extra: dict[str, Any] = {"flow_run_id": flow_run_id, "flow_run_name": name, "deployment_id": deployment_id}
        if self.ui_url:
            extra["url"] = f"{self.ui_url}/runs/flow-run/{flow_run_id}"
        return extra

    @staticmethod
    def task_id(external: bool, name: str, task_key: str | None) -> str:
        if not external and task_key and "-" in task_key:
            return task_key.rsplit("-", 1)[0]  # meta's task function is named <pipeline>.<task id>
        return name

    # -- REST ---------------------------------------------------------------------------------------

    def flow_run(self, run: Mapping[str, Any], flow_name: str, source: Source) -> RunEvent:
        state = run.get("state") or {}
        pipeline_id, external = self.pipeline_of(flow_name)
        as_of = _time(state.get("timestamp")) or _time(run.get("updated")) or datetime.now(UTC)
        return RunEvent(
            backend=self.backend,
            kind=EventKind.RUN,
            pipeline_id=pipeline_id,
            run_id=RUN_PREFIX + str(run["id"]),
            state=run_state(state.get("type") or run.get("state_type"), state.get("name") or run.get("state_name")),
            raw_state=state.get("name") or run.get("state_name"),
            as_of=as_of,
            source=source,
            logical_date=_time(run.get("expected_start_time")),
            started_at=_time(run.get("start_time")),
            ended_at=_time(run.get("end_time")),
            external=external,
            extra=self._run_extra(str(run["id"]), run.get("name"), run.get("deployment_id")),
        )

    def task_run(self, task: Mapping[str, Any], flow_name: str, source: Source) -> list[RunEvent]:
        """The task run's current attempt, and every earlier attempt as up_for_retry (Prefect retried it)."""
        state = task.get("state") or {}
        kind, name = state.get("type") or task.get("state_type"), state.get("name") or task.get("state_name")
        as_of = _time(state.get("timestamp")) or _time(task.get("updated")) or datetime.now(UTC)
        pipeline_id, external = self.pipeline_of(flow_name)
        mapped = task_state(kind, name)
        run_count = int(task.get("run_count") or 0)
        not_run = NOT_RUN_TAG in (task.get("tags") or [])
        if not self._reported(mapped, kind, name, run_count, not_run, external):
            return []
        common: dict[str, Any] = {
            "backend": self.backend,
            "kind": EventKind.TASK_ATTEMPT,
            "pipeline_id": pipeline_id,
            "run_id": RUN_PREFIX + str(task["flow_run_id"]),
            "task_id": self.task_id(external, str(task.get("name") or ""), task.get("task_key")),
            "as_of": as_of,
            "source": source,
            "external": external,
            "extra": {"task_run_id": str(task["id"]), "task_run_name": task.get("name")},
        }
        if not_run:
            return [RunEvent(state=mapped, raw_state=name, try_number=0, **common)]
        current = max(run_count, 1)
        final = mapped.is_terminal or mapped is UnifiedState.UP_FOR_RETRY
        started = _time(task.get("start_time")) if current == 1 else None
        if started is None and kind == "RUNNING":
            started = as_of
        out = [
            RunEvent(
                state=mapped,
                raw_state=name,
                try_number=current,
                started_at=started,
                ended_at=(_time(task.get("end_time")) or as_of) if final else None,
                **common,
            )
        ]
        for earlier in range(1, current):
            first = _time(task.get("start_time")) if earlier == 1 else None
            out.append(
                RunEvent(
                    state=UnifiedState.UP_FOR_RETRY,
                    raw_state="AwaitingRetry",
                    try_number=earlier,
                    started_at=first,
                    **common,
                )
            )
        return out

    @staticmethod
    def _reported(
        mapped: UnifiedState, kind: str | None, name: str | None, run_count: int, not_run: bool, external: bool
    ) -> bool:
        if not_run:
            return mapped.is_terminal  # decided by meta's scheduler: only the decision is a fact
        # An external task run's name is final only from Running on (``task_run_name``); a plain Pending lasts
        # milliseconds, so it is not reported rather than reported under a name that changes.
        return not (external and kind == "PENDING" and name == "Pending" and run_count == 0)

    # -- events -------------------------------------------------------------------------------------

    def event(self, event: Mapping[str, Any], source: Source) -> list[RunEvent]:
        """A flow-run or task-run state event -> its RunEvents (none: not a state change of a run in a flow)."""
        if not _is_state_event(event):
            return []
        resource = event.get("resource") or {}
        rid = str(resource.get("prefect.resource.id", ""))
        occurred = _time(resource.get("prefect.state-timestamp")) or _time(event.get("occurred"))
        if occurred is None:
            return []
        kind, name = resource.get("prefect.state-type"), resource.get("prefect.state-name") or None
        run_count = int(resource.get("prefect.run-count") or 0)
        _flow_id, flow_name = _related(event, "flow")
        if rid.startswith("prefect.flow-run."):
            flow_run_id = rid.removeprefix("prefect.flow-run.")
            if not flow_name:
                return []
            pipeline_id, external = self.pipeline_of(flow_name)
            state = run_state(kind, name)
            details = ((event.get("payload") or {}).get("validated_state") or {}).get("state_details") or {}
            deployment_id, _ = _related(event, "deployment")
            return [
                RunEvent(
                    backend=self.backend,
                    kind=EventKind.RUN,
                    pipeline_id=pipeline_id,
                    run_id=RUN_PREFIX + flow_run_id,
                    state=state,
                    raw_state=name,
                    as_of=occurred,
                    source=source,
                    logical_date=_time(details.get("scheduled_time")) if kind == "SCHEDULED" else None,
                    queued_at=occurred if kind == "PENDING" else None,
                    started_at=occurred if kind == "RUNNING" and run_count <= 1 else None,
                    ended_at=occurred if state.is_terminal else None,
                    external=external,
                    extra=self._run_extra(flow_run_id, resource.get("prefect.resource.name"), deployment_id),
                )
            ]
        if rid.startswith("prefect.task-run."):
            parent, _ = _related(event, "flow-run")
            if not parent or not flow_name:
                return []  # a background task outside any flow run: no pipeline run to put it in
            pipeline_id, external = self.pipeline_of(flow_name)
            task = (event.get("payload") or {}).get("task_run") or {}
            tags = set(task.get("tags") or []) | {
                str(r.get("prefect.resource.id", "")).removeprefix("prefect.tag.")
                for r in event.get("related") or []
                if r.get("prefect.resource.role") == "tag"
            }
            not_run = NOT_RUN_TAG in tags
            state = task_state(kind, name)
            if not self._reported(state, kind, name, run_count, not_run, external):
                return []
            final = state.is_terminal or state is UnifiedState.UP_FOR_RETRY
            task_name = str(resource.get("prefect.resource.name") or task.get("name") or "")
            attempt = RunEvent(
                backend=self.backend,
                kind=EventKind.TASK_ATTEMPT,
                pipeline_id=pipeline_id,
                run_id=RUN_PREFIX + parent,
                task_id=self.task_id(external, task_name, task.get("task_key")),
                try_number=0 if not_run else max(run_count, 1),
                state=state,
                raw_state=name,
                as_of=occurred,
                source=source,
                started_at=occurred if kind == "RUNNING" and not not_run else None,
                ended_at=occurred if final else None,
                external=external,
                extra={"task_run_id": rid.removeprefix("prefect.task-run."), "task_run_name": task_name},
            )
            if name != "Retrying" or run_count < 2 or not_run:
                return [attempt]
            # Without a retry delay Prefect goes Running -> Retrying with no AwaitingRetry between: the attempt
            # before this one was retried, so it is up_for_retry (the REST reconcile derives the same).
            retried = replace(
                attempt,
                try_number=run_count - 1,
                state=UnifiedState.UP_FOR_RETRY,
                raw_state="AwaitingRetry",
                started_at=None,
                ended_at=occurred,
            )
            return [attempt, retried]
        return []


# ---------------------------------------------------------------------------------------------- the observer


class PrefectObserver:
    """Observes one Prefect server (``BackendConnection.url`` is its API, e.g. ``http://127.0.0.1:4200/api``).

    ``poll`` and ``stream`` run on different threads, so each has its own HTTP client and dedupe memory.
    Options: ``overlap_seconds`` (60), ``retention_days`` (7, the server's event retention), ``timeout`` (30 s),
    ``catch_up_seconds`` (8, when the stream re-reads what its subscription may have missed),
    ``deployment`` (the deployment ``trigger`` starts when a flow has several; default ``meta``), ``ui_url``.
    """

    def __init__(self, connection: BackendConnection):
        self.connection = connection
        self.backend = connection.name
        options = connection.options
        self.overlap = timedelta(seconds=float(options.get("overlap_seconds", OVERLAP.total_seconds())))
        self.retention = timedelta(days=float(options.get("retention_days", RETENTION.days)))
        self.timeout = float(options.get("timeout", 30.0))
        self.deployment_name = str(options.get("deployment") or DEFAULT_DEPLOYMENT)
        self.catch_up = float(options.get("catch_up_seconds", CATCH_UP.total_seconds()))
        auth = connection.credentials.get("auth")
        self._auth_string = auth or None
        self._basic = tuple(auth.split(":", 1)) if auth and ":" in auth else None
        self.mapper = _Mapper(self.backend, connection.pipelines, options.get("ui_url"))
        self._http = self._client()
        self._flow_names: dict[str, str] = {}  # flow id -> name (flows are not renamed)
        # Event ids already turned into facts, within the overlap window: valid only while the caller resumes from
        # the cursor this observer returned last (else the batch may not have been stored: forget them).
        self._seen: dict[str, datetime] = {}
        self._returned: str | None = None
        self._lock = threading.Lock()  # poll and trigger share the client

    def _client(self) -> _Http:
        return _Http(self.connection.url, self._basic, self.timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self._http.close()

    # -- poll ---------------------------------------------------------------------------------------

    def poll(self, cursor: str | None) -> Batch:
        with self._lock:
            self._http.take()
            if cursor is None or cursor != self._returned:
                self._seen.clear()
            started = datetime.now(UTC)
            position = Cursor.decode(cursor)
            stale = started - self.retention + RETENTION_MARGIN
            if position.resync_offset is None and (position.since is None or position.since < stale):
                position = Cursor(resync_offset=0, resync_started=started)
            if position.resync_offset is not None:
                events, next_cursor, more = self._resync_page(position)
            else:
                events, next_cursor, more = self._increment(position, started)
            requests, received = self._http.take()
            self._returned = next_cursor.encode()
            return Batch(events, self._returned, more=more, requests=requests, bytes_received=received)

    def _resync_page(self, position: Cursor) -> tuple[list[RunEvent], Cursor, bool]:
        """One page of every flow run the server has (newest id first) with all their task runs."""
        offset = position.resync_offset or 0
        body = {"sort": "ID_DESC", "limit": PAGE, "offset": offset}
        runs = self._http.json("POST", "flow_runs/filter", body) or []
        facts = _Facts()
        names = self._names_of(runs)
        for run in runs:
            facts.add(self.mapper.flow_run(run, names[str(run["flow_id"])], Source.POLL))
        flows_of = {str(r["id"]): names[str(r["flow_id"])] for r in runs}
        for task in self._task_runs({"flow_runs": {"id": {"any_": list(flows_of)}}}) if runs else []:
            facts.extend(self.mapper.task_run(task, flows_of[str(task["flow_run_id"])], Source.POLL))
        if len(runs) == PAGE:
            return facts.list(), Cursor(resync_offset=offset + PAGE, resync_started=position.resync_started), True
        # Done: go incremental from when the resync began (the overlap covers what changed while it ran).
        return facts.list(), Cursor(since=position.resync_started), False

    def _increment(self, position: Cursor, started: datetime) -> tuple[list[RunEvent], Cursor, bool]:
        since = position.read_from(self.overlap)
        assert since is not None
        fresh, last, more = self._read_events(since)
        self._forget(since - self.overlap)
        next_cursor = Cursor(since=last, overlap=False) if more else Cursor(since=started)
        if not fresh:
            return [], next_cursor, more
        facts = _Facts()
        changed_runs: dict[str, None] = {}
        changed_tasks: dict[str, None] = {}
        for event in fresh:
            facts.extend(self.mapper.event(event, Source.POLL))
            rid = str(event["resource"].get("prefect.resource.id", ""))
            if rid.startswith("prefect.flow-run."):
                changed_runs[rid.removeprefix("prefect.flow-run.")] = None
            else:
                flow_run_id, _ = _related(event, "flow-run")
                if flow_run_id:
                    changed_runs[flow_run_id] = None
                    changed_tasks[rid.removeprefix("prefect.task-run.")] = None
        facts.extend(self._reconcile(list(changed_runs), list(changed_tasks)))
        for event in fresh:  # only now: a failed reconcile must read them again
            self._seen[event["id"]] = _time(event.get("occurred")) or since
        return facts.list(), next_cursor, more

    def _read_events(self, since: datetime) -> tuple[list[dict[str, Any]], datetime | None, bool]:
        """State events since ``since`` not seen before; (events, occurred of the last one read, more waiting)."""
        events, last, more = _fetch_events(self._http, since, datetime.now(UTC) + timedelta(days=1), MAX_EVENT_PAGES)
        return [e for e in events if e["id"] not in self._seen], last, more

    def _forget(self, before: datetime) -> None:
        for event_id in [e for e, occurred in self._seen.items() if occurred < before]:
            del self._seen[event_id]

    def _reconcile(self, flow_run_ids: list[str], task_run_ids: list[str]) -> list[RunEvent]:
        """The REST truth of changed flow runs: every task run of a final one, the named task runs of the others."""
        runs: list[dict[str, Any]] = []
        for chunk in _chunks(flow_run_ids, PAGE):
            runs += self._http.json("POST", "flow_runs/filter", {"flow_runs": {"id": {"any_": chunk}}, "limit": PAGE})
        names = self._names_of(runs)
        flows_of = {str(r["id"]): names[str(r["flow_id"])] for r in runs}
        facts = _Facts()
        for run in runs:
            facts.add(self.mapper.flow_run(run, flows_of[str(run["id"])], Source.POLL))
        final = [str(r["id"]) for r in runs if run_state(r.get("state_type"), r.get("state_name")).is_terminal]
        tasks: list[dict[str, Any]] = []
        if final:
            tasks += self._task_runs({"flow_runs": {"id": {"any_": final}}})
        if task_run_ids and len(final) < len(runs):
            tasks += self._task_runs({"task_runs": {"id": {"any_": task_run_ids}}})
        for task in tasks:
            flow_name = flows_of.get(str(task.get("flow_run_id")))
            if flow_name is not None:
                facts.extend(self.mapper.task_run(task, flow_name, Source.POLL))
        return facts.list()

    def _task_runs(self, where: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            body = {**where, "sort": "ID_DESC", "limit": PAGE, "offset": len(out)}
            page = self._http.json("POST", "task_runs/filter", body) or []
            out += page
            if len(page) < PAGE:
                return out

    def _names_of(self, runs: list[dict[str, Any]]) -> dict[str, str]:
        """Flow id -> flow name for these runs (one ``flows/filter`` for the ids not seen before)."""
        unknown = sorted({str(r["flow_id"]) for r in runs} - set(self._flow_names))
        for chunk in _chunks(unknown, PAGE):
            for flow in self._http.json("POST", "flows/filter", {"flows": {"id": {"any_": chunk}}, "limit": PAGE}):
                self._flow_names[str(flow["id"])] = str(flow["name"])
        return {fid: self._flow_names.get(fid, fid) for fid in {str(r["flow_id"]) for r in runs}}

    # -- stream -------------------------------------------------------------------------------------

    def stream(self, cursor: str | None, deliver: Callable[[Batch], None], stop: threading.Event) -> None:
        """Push events from ``/api/events/out`` until ``stop`` is set; raises BackendUnreachable when it breaks.

        The server subscribes first and backfills second, but its backfill reads the events table, which Prefect's
        event persister fills up to ``flush_interval`` (5 s) late: events that happened just before the
        subscription are in neither. So once, ``catch_up_seconds`` (8 s) after connecting, the stream reads
        ``events/filter`` from the same start on (the snapshot second), deduped on id.
        """
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
        from websockets.sync.client import connect
        from websockets.typing import Subprotocol

        position = Cursor.decode(cursor)
        now = datetime.now(UTC)
        since = position.read_from(self.overlap) if position.since else None
        since = since or now - self.overlap  # no cursor: what is happening now (polling has the history)
        url = _ws_url(self.connection.url)
        shown = _safe_url(url)
        state = _StreamState(newest=position.since or now)
        headers = {"Authorization": _basic_header(self._auth_string)} if self._basic else None
        http = self._client()
        try:
            with connect(
                url, subprotocols=[Subprotocol("prefect")], additional_headers=headers, open_timeout=self.timeout
            ) as socket:
                socket.send(json.dumps({"type": "auth", "token": self._auth_string}))
                reply = json.loads(socket.recv(timeout=self.timeout))
                if reply.get("type") != "auth_success":
                    raise BackendUnreachable(f"Prefect refused the event stream at {shown}: check the auth secret")
                occurred = {"since": _iso(since), "until": _iso(now + timedelta(days=365))}
                socket.send(
                    json.dumps(
                        {"type": "filter", "filter": {"occurred": occurred, "event": {"prefix": EVENT_PREFIXES}}}
                    )
                )
                catch_up_at: float | None = time.monotonic() + self.catch_up
                while not stop.is_set():
                    messages = _drain(socket, timeout=0.5)
                    events = []
                    received = sum(len(m) for m in messages)
                    for raw in messages:
                        message = json.loads(raw)
                        if message.get("type") == "event" and message.get("event"):
                            events.append(message["event"])
                    if catch_up_at is not None and time.monotonic() >= catch_up_at:
                        catch_up_at = None
                        until = datetime.now(UTC)  # live delivery overlaps from the subscription on: deduped
                        missed, _last, _more = _fetch_events(http, since, until, MAX_EVENT_PAGES)
                        events += missed
                        received += http.take()[1]
                    batch = self._pushed(events, state, received)
                    if batch is not None:
                        deliver(batch)
        except (ConnectionClosed, InvalidHandshake, InvalidURI, OSError, TimeoutError) as exc:
            if stop.is_set():
                return
            raise BackendUnreachable(f"Prefect event stream at {shown} broke: {type(exc).__name__}") from None
        finally:
            http.close()

    def _pushed(self, events: list[dict[str, Any]], state: _StreamState, received: int) -> Batch | None:
        facts = _Facts()
        for event in events:
            if event.get("id") in state.seen:
                continue
            occurred = _time(event.get("occurred")) or state.newest
            state.seen[event["id"]] = occurred
            facts.extend(self.mapper.event(event, Source.PUSH))
            state.newest = max(state.newest, occurred)
        cutoff = state.newest - 2 * self.overlap
        for event_id in [e for e, t in state.seen.items() if t < cutoff]:
            del state.seen[event_id]
        if not facts.events:
            return None
        return Batch(facts.list(), Cursor(since=state.newest).encode(), bytes_received=received)

    # -- trigger ------------------------------------------------------------------------------------

    def trigger(
        self, pipeline_id: str, key: str, params: Mapping[str, Any], logical_date: datetime | None
    ) -> TriggerResult:
        """Start a flow run of the pipeline's deployment; the key is the idempotency key (same key, same run)."""
        with self._lock:
            flow = self.mapper.flow_name_of(pipeline_id)
            deployment = self._deployment_of(flow)
            body: dict[str, Any] = {"parameters": dict(params), "idempotency_key": key, "tags": ["meta:control-plane"]}
            if logical_date is not None:  # meta's flows read the logical date from the scheduled start time
                body["state"] = {"type": "SCHEDULED", "state_details": {"scheduled_time": _iso(logical_date)}}
            response = self._http.call("POST", f"deployments/{deployment}/create_flow_run", body)
            run = response.json()
            url = f"{self.mapper.ui_url}/runs/flow-run/{run['id']}" if self.mapper.ui_url else None
            return TriggerResult(run_id=RUN_PREFIX + str(run["id"]), created=response.status_code == 201, url=url)

    def _deployment_of(self, flow: str) -> str:
        found = self._http.json("POST", "deployments/filter", {"flows": {"name": {"any_": [flow]}}, "limit": PAGE})
        found = [d for d in found or [] if d.get("name")]
        if not found:
            raise LookupError(f"Prefect backend {self.backend!r} has no deployment of flow {flow!r}: deploy it first")
        if len(found) == 1:
            return str(found[0]["id"])
        for deployment in found:
            if deployment["name"] == self.deployment_name:
                return str(deployment["id"])
        names = sorted(d["name"] for d in found)
        raise LookupError(
            f"flow {flow!r} has several deployments on Prefect backend {self.backend!r} ({', '.join(names)}) and "
            f"none is named {self.deployment_name!r}: set the backend option 'deployment'"
        )


@dataclass
class _StreamState:
    newest: datetime  # the newest event time delivered: the push cursor
    seen: dict[str, datetime] = field(default_factory=dict)  # event id -> occurred


def _fetch_events(
    http: _Http, since: datetime, until: datetime, max_pages: int
) -> tuple[list[dict[str, Any]], datetime | None, bool]:
    """State events occurred in [since, until], oldest first; (events, occurred of the last read, more waiting)."""
    body = {
        "filter": {
            "occurred": {"since": _iso(since), "until": _iso(until)},
            "event": {"prefix": EVENT_PREFIXES},
            "order": "ASC",
        },
        "limit": 50,
    }
    page = http.json("POST", "events/filter", body) or {}
    out: list[dict[str, Any]] = []
    last: datetime | None = None
    for pages in range(1, max_pages + 1):
        for event in page.get("events") or []:
            last = _time(event.get("occurred")) or last
            if _is_state_event(event):
                out.append(event)
        next_page = page.get("next_page")
        if not next_page:
            return out, last, False
        if pages == max_pages:
            return out, last, last is not None and last > since
        # The link names the server's own base URL; follow its query on ours (a proxy may rewrite hosts).
        page = http.json("GET", "events/filter/next?" + urlsplit(next_page).query) or {}
    return out, last, False


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ws_url(api_url: str) -> str:
    parts = urlsplit(api_url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path + "/events/out", "", ""))


def _basic_header(auth: str | None) -> str:
    return "Basic " + base64.b64encode((auth or "").encode()).decode()


def _drain(socket: Any, timeout: float, limit: int = 500) -> list[str]:
    """The messages waiting on the socket (waits up to ``timeout`` for the first): one batch per burst."""
    out: list[str] = []
    try:
        out.append(socket.recv(timeout=timeout))
        while len(out) < limit:
            out.append(socket.recv(timeout=0))
    except TimeoutError:
        pass
    return [m if isinstance(m, str) else m.decode() for m in out]


def create(connection: BackendConnection) -> PrefectObserver:
    return PrefectObserver(connection)


KIND = ObserverKind(
    "prefect",
    create=create,
    description="a Prefect 3 server: events websocket (push), events + flow/task runs REST (poll), deployments",
)

__all__ = ["KIND", "Cursor", "PrefectObserver", "PrefectObserverError", "run_state", "task_state"]
