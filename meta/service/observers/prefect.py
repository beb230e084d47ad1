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

Identities and states: ``meta.service.observers.prefect_facts``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from meta.plugins.observers import (
    BackendConnection,
    BackendUnreachable,
    Batch,
    ObserverKind,
    RunEvent,
    Source,
    TriggerResult,
)
from meta.service.observers.prefect_facts import (
    RUN_PREFIX,
    Facts,
    Mapper,
    is_state_event,
    iso,
    parse_time,
    related,
    run_state,
)

OVERLAP = timedelta(seconds=60)  # client-side task-run events reach the server late; re-read this much
RETENTION = timedelta(days=7)  # Prefect's default event retention (PREFECT_SERVER_EVENTS_RETENTION_PERIOD)
RETENTION_MARGIN = timedelta(hours=1)
CATCH_UP = timedelta(seconds=8)  # > Prefect's event persister flush interval (5 s), see ``stream``
PAGE = 200  # flow_runs/filter and task_runs/filter refuse more
MAX_EVENT_PAGES = 20  # 50 events each; more waiting: the batch says ``more``
EVENT_PREFIXES = ["prefect.flow-run.", "prefect.task-run."]
DEFAULT_DEPLOYMENT = "meta"  # the deployment name ``meta deploy --target prefect`` uses
TRIGGER_TAG = "meta:control-plane"  # on every flow run the control plane starts

BODY_LIMIT = 300


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
            data["since"] = iso(self.since)
            if not self.overlap:
                data["exact"] = True
        if self.resync_offset is not None and self.resync_started is not None:
            data["resync"] = {"offset": self.resync_offset, "started": iso(self.resync_started)}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            resync = data.get("resync")
            return cls(
                since=parse_time(data.get("since")),
                overlap=not data.get("exact", False),
                resync_offset=int(resync["offset"]) if resync else None,
                resync_started=parse_time(resync["started"]) if resync else None,
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


# ---------------------------------------------------------------------------------------------- the observer


class PrefectObserver:
    """Observes one Prefect server (``BackendConnection.url`` is its API, e.g. ``http://127.0.0.1:4200/api``).

    ``poll`` and ``stream`` run on different threads, so each has its own HTTP client and dedupe memory.
    Options: ``overlap_seconds`` (60), ``retention_days`` (7, the server's event retention), ``timeout`` (30 s),
    ``catch_up_seconds`` (8, when the stream re-reads what its subscription may have missed),
    ``deployment`` (the deployment ``trigger`` starts when a flow has several; default ``meta``), ``ui_url`` (links to
    runs; default the server's URL without ``/api``, where Prefect serves its UI).
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
        # Prefect's server serves its UI at the root of the URL whose /api it answers on.
        ui_url = options.get("ui_url") or connection.url.rstrip("/").removesuffix("/api")
        self.mapper = Mapper(self.backend, connection.pipelines, ui_url)
        self._http = self._client()
        self._flow_names: dict[str, str] = {}  # flow id -> name (flows are not renamed)
        # Event ids already turned into facts, within the overlap window: valid only while the caller resumes from
        # the cursor this observer returned last (else the batch may not have been stored: forget them).
        self._seen: dict[str, datetime] = {}
        self._returned: str | None = None
        self._lock = threading.Lock()  # the poll's client
        # Starting runs has its own client: a trigger must not wait for a poll in progress (seconds on a busy
        # server), or a downstream starts a poll's length late.
        self._act_http = self._client()
        self._act_lock = threading.Lock()

    def _client(self) -> _Http:
        return _Http(self.connection.url, self._basic, self.timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self._http.close()
        self._act_http.close()

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
        facts = Facts()
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
        facts = Facts()
        changed_runs: dict[str, None] = {}
        changed_tasks: dict[str, None] = {}
        for event in fresh:
            facts.extend(self.mapper.event(event, Source.POLL))
            rid = str(event["resource"].get("prefect.resource.id", ""))
            if rid.startswith("prefect.flow-run."):
                changed_runs[rid.removeprefix("prefect.flow-run.")] = None
            else:
                flow_run_id, _ = related(event, "flow-run")
                if flow_run_id:
                    changed_runs[flow_run_id] = None
                    changed_tasks[rid.removeprefix("prefect.task-run.")] = None
        facts.extend(self._reconcile(list(changed_runs), list(changed_tasks)))
        for event in fresh:  # only now: a failed reconcile must read them again
            self._seen[event["id"]] = parse_time(event.get("occurred")) or since
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
        facts = Facts()
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
                occurred = {"since": iso(since), "until": iso(now + timedelta(days=365))}
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
        facts = Facts()
        for event in events:
            if event.get("id") in state.seen:
                continue
            occurred = parse_time(event.get("occurred")) or state.newest
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
        with self._act_lock:
            flow = self.mapper.flow_name_of(pipeline_id)
            deployment = self._deployment_of(flow)
            # Tags given replace the deployment's (owner:, team:, ...): keep them and mark who started the run.
            tags = sorted({*(deployment.get("tags") or []), TRIGGER_TAG})
            body: dict[str, Any] = {"parameters": dict(params), "idempotency_key": key, "tags": tags}
            if logical_date is not None:  # meta's flows read the logical date from the scheduled start time
                body["state"] = {"type": "SCHEDULED", "state_details": {"scheduled_time": iso(logical_date)}}
            response = self._act_http.call("POST", f"deployments/{deployment['id']}/create_flow_run", body)
            run = response.json()
            url = f"{self.mapper.ui_url}/runs/flow-run/{run['id']}" if self.mapper.ui_url else None
            return TriggerResult(run_id=RUN_PREFIX + str(run["id"]), created=response.status_code == 201, url=url)

    def run_params(self, pipeline_id: str, run_id: str) -> dict[str, Any]:
        """The flow run's parameters (what a downstream started for it receives as params)."""
        with self._act_lock:
            run = self._act_http.json("GET", f"flow_runs/{run_id.removeprefix(RUN_PREFIX)}", None)
        return dict((run or {}).get("parameters") or {})

    # -- pausing (meta migrate) -------------------------------------------------------------------

    pausing_stalls_runs = False  # a paused deployment's running flow runs go on
    has_scheduler = True

    def unfinished_runs(self, pipeline_id: str) -> int:
        with self._act_lock:
            deployment = self._deployment_of(self.mapper.flow_name_of(pipeline_id))
            where = {
                "deployments": {"id": {"any_": [deployment["id"]]}},
                "flow_runs": {"state": {"type": {"any_": ["PENDING", "RUNNING"]}}},
            }
            return int(self._act_http.json("POST", "flow_runs/count", where) or 0)

    def mark_handled(self, pipeline_id: str, logical_date: datetime, key: str, note: str) -> None:
        """Not needed: Prefect's scheduler never creates a run for a time already past."""

    def is_paused(self, pipeline_id: str) -> bool:
        with self._act_lock:
            return bool(self._deployment_of(self.mapper.flow_name_of(pipeline_id)).get("paused"))

    def set_paused(self, pipeline_id: str, paused: bool) -> None:
        """Prefect deletes a paused deployment's auto-scheduled runs still waiting; running ones go on."""
        with self._act_lock:
            deployment = self._deployment_of(self.mapper.flow_name_of(pipeline_id))
            verb = "pause_deployment" if paused else "resume_deployment"
            self._act_http.call("POST", f"deployments/{deployment['id']}/{verb}")

    def newest_logical_date(self, pipeline_id: str) -> datetime | None:
        return self._edge_run_date(pipeline_id, "EXPECTED_START_TIME_DESC", None)

    def has_run_at(self, pipeline_id: str, logical_date: datetime) -> bool:
        """A flow run of the deployment expected at ``logical_date`` (meta's flows take it as the logical date)."""
        at = iso(logical_date)
        with self._act_lock:
            deployment = self._deployment_of(self.mapper.flow_name_of(pipeline_id))
            where = {
                "deployments": {"id": {"any_": [deployment["id"]]}},
                "flow_runs": {"expected_start_time": {"after_": at, "before_": at}},
            }
            return bool(self._act_http.json("POST", "flow_runs/count", where))

    def next_native_slot(self, pipeline_id: str) -> datetime | None:
        """The earliest run Prefect's scheduler created and that has not started yet."""
        return self._edge_run_date(pipeline_id, "EXPECTED_START_TIME_ASC", ["SCHEDULED"])

    def _edge_run_date(self, pipeline_id: str, sort: str, states: list[str] | None) -> datetime | None:
        with self._act_lock:
            deployment = self._deployment_of(self.mapper.flow_name_of(pipeline_id))
            where: dict[str, Any] = {
                "deployments": {"id": {"any_": [deployment["id"]]}},
                "sort": sort,
                "limit": 1,
            }
            if states is not None:
                # Prefect tags the runs its scheduler creates "auto-scheduled" (there is no filter on the flag itself)
                where["flow_runs"] = {"state": {"type": {"any_": states}}, "tags": {"all_": ["auto-scheduled"]}}
            runs = self._act_http.json("POST", "flow_runs/filter", where) or []
        return parse_time(runs[0].get("expected_start_time")) if runs else None

    def _deployment_of(self, flow: str) -> dict[str, Any]:
        found = self._act_http.json("POST", "deployments/filter", {"flows": {"name": {"any_": [flow]}}, "limit": PAGE})
        found = [d for d in found or [] if d.get("name")]
        if not found:
            raise LookupError(f"Prefect backend {self.backend!r} has no deployment of flow {flow!r}: deploy it first")
        if len(found) == 1:
            return dict(found[0])
        for deployment in found:
            if deployment["name"] == self.deployment_name:
                return dict(deployment)
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
            "occurred": {"since": iso(since), "until": iso(until)},
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
            last = parse_time(event.get("occurred")) or last
            if is_state_event(event):
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

__all__ = ["KIND", "Cursor", "PrefectObserver", "PrefectObserverError"]
