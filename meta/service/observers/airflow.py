"""The Airflow 3 observer: polls REST v2 over httpx (never imports Airflow) and starts runs.

One poll cycle is two keyset listings over everything that changed since the watermark ``W``:

1. ``GET /api/v2/dags/~/dagRuns?updated_at_gt=W&order_by=updated_at`` (runs of every DAG), then
2. ``GET /api/v2/dags/~/dagRuns/~/taskInstances?updated_at_gt=W&order_by=id`` (task instances of every run).

A quiet cycle is therefore exactly two requests whatever the history holds (the benchmark's target). Listing task
instances by their own ``updated_at`` rather than per changed run costs one request instead of one per run and
does not depend on a task's change touching its run's row. Previous tries of a retried or cleared task live in
Airflow's task-instance history: they are read once per new try through ``.../taskInstances/{task}/tries``.

Airflow filters on ``updated_at`` but never returns it, so the watermark is the time a scan started (the server's
``Date`` header, so the two clocks need not agree) minus an overlap; re-read items are deduped against fingerprints
of what the previous scan emitted. Everything (watermark, the scan in progress, its page cursor, the fingerprints)
lives in the opaque cursor string the store commits with the events: a fresh observer resumes from it with no gap
and without re-emitting, and ``poll`` is a pure function of its cursor and the backend.

State mapping (the raw state is always kept): runs queued/running/success/failed map to themselves; task states
scheduled/queued/running/success/failed/up_for_retry/skipped/upstream_failed map to themselves; restarting,
up_for_reschedule, deferred, awaiting_input, removed and anything new map to ``other``. A task instance with no
state yet (created, or cleared and waiting) is not an attempt and emits nothing. A try that Airflow's history
records as ``failed`` but that was followed by an automatic retry (``try_number <= max_tries``) is ``up_for_retry``:
that is what the attempt was, and what the OpenLineage push path (a FAIL with tries left) reports for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

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

log = logging.getLogger(__name__)
OVERLAP = timedelta(seconds=60)
PAGE_LIMIT = 100  # Airflow's [api] maximum_page_limit
CURSOR_VERSION = 1

RUN_STATES = {
    "queued": UnifiedState.QUEUED,
    "running": UnifiedState.RUNNING,
    "success": UnifiedState.SUCCESS,
    "failed": UnifiedState.FAILED,
}
TASK_STATES = {
    "scheduled": UnifiedState.SCHEDULED,
    "queued": UnifiedState.QUEUED,
    "running": UnifiedState.RUNNING,
    "success": UnifiedState.SUCCESS,
    "failed": UnifiedState.FAILED,
    "up_for_retry": UnifiedState.UP_FOR_RETRY,
    "skipped": UnifiedState.SKIPPED,
    "upstream_failed": UnifiedState.UPSTREAM_FAILED,
}


def run_state(raw: str | None) -> UnifiedState:
    return RUN_STATES.get(raw or "", UnifiedState.OTHER)


def task_state(raw: str | None, *, retried: bool = False) -> UnifiedState:
    """``retried``: a history try that an automatic retry followed (Airflow records it as ``failed``)."""
    if raw == "failed" and retried:
        return UnifiedState.UP_FOR_RETRY
    return TASK_STATES.get(raw or "", UnifiedState.OTHER)


class AirflowApiError(RuntimeError):
    """Airflow answered, but refused (a refused login, 403, an unknown DAG, a conflicting logical date). Carries
    method, URL, status and a trimmed body, never a credential. ``poll`` reports it as
    :class:`BackendUnreachable` (the runtime backs off and shows it as the backend's health); ``trigger`` lets
    it through, so the API tells a refusal from a backend that did not answer."""

    def __init__(self, method: str, url: str, status: int, body: str):
        self.method, self.url, self.status = method, url, status
        super().__init__(f"Airflow API {method} {url} -> HTTP {status}: {body[:300]}")


def _safe_url(url: str) -> str:
    """``url`` without any user:password part (never in a message)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


class AirflowHttp:
    """The few REST calls the observer makes. JWT from ``POST /auth/token``, sent as Bearer, renewed once on 401.
    Counts requests and bytes for :class:`Batch`; turns transport errors, timeouts and 5xx into
    :class:`BackendUnreachable` whose messages name the URL, never the credentials."""

    def __init__(self, url: str, username: str | None, password: str | None, timeout: float = 30.0):
        self.base = _safe_url(url).rstrip("/")
        self._username, self._password = username, password
        self._token: str | None = None
        self._http = httpx.Client(base_url=self.base, timeout=timeout)
        self.requests = 0
        self.bytes_received = 0

    def __repr__(self) -> str:
        return f"AirflowHttp({self.base!r}, user={self._username!r})"

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise BackendUnreachable(
                f"Airflow at {self.base}: {method} {path} timed out ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise BackendUnreachable(f"Airflow at {self.base}: {method} {path} failed ({type(exc).__name__})") from None
        self.requests += 1
        self.bytes_received += len(response.content)
        if response.status_code >= 500:
            raise BackendUnreachable(
                f"Airflow at {self.base}: {method} {path} -> HTTP {response.status_code}: {response.text[:200]}"
            )
        return response

    def _login(self) -> str:
        if self._username is None:
            raise AirflowApiError("POST", self.base + "/auth/token", 401, "no username configured for this backend")
        response = self._send("POST", "/auth/token", json={"username": self._username, "password": self._password})
        if response.status_code not in (200, 201):
            raise AirflowApiError(
                "POST", self.base + "/auth/token", response.status_code, f"login as {self._username!r} refused"
            )
        token = response.json().get("access_token")
        if not isinstance(token, str):
            raise AirflowApiError("POST", self.base + "/auth/token", response.status_code, "no access_token in answer")
        return token

    def call(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
        """One API call with the token (logging in first, and once more after a 401). A status outside ``ok``
        raises :class:`AirflowApiError`."""
        for attempt in range(2):
            if self._token is None:
                self._token = self._login()
            response = self._send(method, path, headers={"Authorization": f"Bearer {self._token}"}, **kwargs)
            if response.status_code == 401 and attempt == 0:
                self._token = None  # expired or the JWT secret changed: log in again once
                continue
            if response.status_code not in ok:
                raise AirflowApiError(method, self.base + path, response.status_code, response.text)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, path: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], datetime | None]:
        """JSON body and the server's ``Date`` (its clock, for the watermark)."""
        response = self.call("GET", path, params=dict(params))
        return response.json(), _server_date(response)


def _server_date(response: httpx.Response) -> datetime | None:
    value = response.headers.get("date")
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_time(value: Any) -> datetime | None:
    """An ISO time from Airflow's REST API or its OpenLineage events, aware (naive reads as UTC); None if absent."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _fingerprint(*parts: Any) -> str:
    return hashlib.blake2b(json.dumps(parts, default=str).encode(), digest_size=6).hexdigest()


def _path(*segments: str) -> str:
    return "/".join(quote(s, safe="") for s in segments)


def run_url(ui_url: str, dag_id: str, run_id: str) -> str:
    """The Airflow UI page of one DAG run (the poll and the OpenLineage mapping link to the same page)."""
    return f"{ui_url.rstrip('/')}/dags/{_path(dag_id)}/runs/{_path(run_id)}"


# ---------------------------------------------------------------------------------------------- cursor


@dataclass
class Scan:
    """A scan in progress: started at ``started`` (server clock), in ``phase`` ("runs", then "tis") at Airflow's
    keyset ``page`` ("" = first page); ``next`` holds the fingerprints it emitted so far."""

    started: datetime
    phase: str = "runs"
    page: str = ""
    next: dict[str, Any] = field(default_factory=dict)


@dataclass
class CursorState:
    """Everything a poll needs, serialised into :attr:`Batch.cursor` (JSON)."""

    watermark: datetime | None = None  # updated_at_gt of the scan; None: the whole history
    seen: dict[str, Any] = field(default_factory=dict)  # fingerprints the previous scan emitted (the overlap)
    scan: Scan | None = None

    def dump(self) -> str:
        scan = None
        if self.scan is not None:
            s = self.scan
            scan = {"s": _iso(s.started), "phase": s.phase, "page": s.page, "next": s.next}
        return json.dumps(
            {"v": CURSOR_VERSION, "w": _iso(self.watermark), "seen": self.seen, "scan": scan}, separators=(",", ":")
        )

    @classmethod
    def load(cls, cursor: str | None) -> CursorState:
        """The state ``cursor`` holds; one this version cannot read (corrupt, or from another version) starts
        over from the whole history: slower, never a gap, and re-delivered events are harmless."""
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
            if data.get("v") != CURSOR_VERSION:
                raise ValueError(f"cursor version {data.get('v')!r}, expected {CURSOR_VERSION}")
            scan = None
            if data.get("scan"):
                s = data["scan"]
                started = parse_time(s["s"])
                if started is None:
                    raise ValueError("scan without start")
                scan = Scan(started, str(s["phase"]), str(s["page"]), dict(s["next"]))
            if scan is not None and scan.phase not in ("runs", "tis"):
                raise ValueError(f"unknown phase {scan.phase!r}")
            return cls(parse_time(data.get("w")), dict(data.get("seen") or {}), scan)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("Airflow observer: unreadable cursor (%s); reading the whole history again", exc)
            return cls()


# ---------------------------------------------------------------------------------------------- observer


class AirflowObserver:
    """Observer + Triggerable for one Airflow 3 instance (see the module docstring for the poll cycle).

    Options (``BackendConnection.options``): ``ui_url`` (links in ``extra["url"]``, default the API URL),
    ``page_limit`` (<= 100), ``max_requests``: after about this many requests (checked between pages) a
    ``poll`` call returns ``more=True`` (default 20),
    ``overlap_seconds`` (default 60), ``timeout`` seconds per request (default 30).
    """

    def __init__(self, connection: BackendConnection):
        self.connection = connection
        self.backend = connection.name
        options = connection.options
        self.page_limit = max(1, min(PAGE_LIMIT, int(options.get("page_limit") or PAGE_LIMIT)))
        self.max_requests = max(2, int(options.get("max_requests") or 20))
        self.overlap = timedelta(seconds=float(options.get("overlap_seconds") or OVERLAP.total_seconds()))
        timeout = float(options.get("timeout") or 30.0)
        username, password = connection.credentials.get("username"), connection.credentials.get("password")
        self.http = AirflowHttp(connection.url, username, password, timeout=timeout)
        # Triggers come from API threads while the observer's thread polls: their own client keeps each side's
        # request counts (Batch.requests) and token renewals apart.
        self.trigger_http = AirflowHttp(connection.url, username, password, timeout=timeout)
        self.ui_url = _safe_url(str(options.get("ui_url") or connection.url)).rstrip("/")
        self._dag_of = {pipeline: dag for dag, pipeline in connection.pipelines.items()}

    def __repr__(self) -> str:
        return f"AirflowObserver({self.backend!r}, {self.http.base!r})"

    def close(self) -> None:
        self.http.close()
        self.trigger_http.close()

    # -- naming -----------------------------------------------------------------------------------

    def pipeline_of(self, dag_id: str) -> tuple[str, bool]:
        """(pipeline id, external)."""
        pipeline = self.connection.pipelines.get(dag_id)
        return (pipeline, False) if pipeline is not None else (dag_id, True)

    def run_url(self, dag_id: str, run_id: str) -> str:
        return run_url(self.ui_url, dag_id, run_id)

    # -- poll -------------------------------------------------------------------------------------

    def poll(self, cursor: str | None) -> Batch:
        try:
            return self._poll(CursorState.load(cursor))
        except AirflowApiError as exc:
            raise BackendUnreachable(str(exc)) from None

    def _poll(self, state: CursorState) -> Batch:
        start_requests, start_bytes = self.http.requests, self.http.bytes_received
        events: list[RunEvent] = []
        more = False
        while True:
            if state.scan is None:
                state.scan = Scan(started=datetime.now(UTC))  # replaced by the server's clock on the first page
                first_page = True
            else:
                first_page = False
            scan = state.scan
            as_of = datetime.now(UTC)
            if scan.phase == "runs":
                page, server_now = self._page("/api/v2/dags/~/dagRuns", state, {"order_by": "updated_at"})
                if first_page and server_now is not None:
                    scan.started = server_now
                for run in page.get("dag_runs", []):
                    events.extend(self._run_event(run, as_of, state))
                if page.get("next_cursor"):
                    scan.page = page["next_cursor"]
                else:
                    scan.phase, scan.page = "tis", ""
            else:
                page, _ = self._page("/api/v2/dags/~/dagRuns/~/taskInstances", state, {"order_by": "id"})
                for ti in page.get("task_instances", []):
                    events.extend(self._attempt_events(ti, as_of, state))
                if page.get("next_cursor"):
                    scan.page = page["next_cursor"]
                else:  # the scan is complete: the next one reads what changed since it started, with the overlap
                    state.watermark = scan.started - self.overlap
                    state.seen = scan.next
                    state.scan = None
                    break
            if self.http.requests - start_requests >= self.max_requests:
                more = True
                break
        return Batch(
            events=events,
            cursor=state.dump(),
            more=more,
            requests=self.http.requests - start_requests,
            bytes_received=self.http.bytes_received - start_bytes,
        )

    def _page(self, path: str, state: CursorState, params: dict[str, Any]) -> tuple[dict[str, Any], datetime | None]:
        assert state.scan is not None
        params = {**params, "limit": self.page_limit, "cursor": state.scan.page}
        if state.watermark is not None:
            params["updated_at_gt"] = _iso(state.watermark)
        try:
            return self.http.get(path, params)
        except AirflowApiError as exc:
            if exc.status != 400 or not state.scan.page:
                raise
            # Airflow refused its own page cursor (an upgrade changed its shape): restart this listing. Safe:
            # the watermark has not moved, so nothing is skipped; fingerprints keep re-reads silent.
            state.scan.page = ""
            params["cursor"] = ""
            return self.http.get(path, params)

    def _recent(self, state: CursorState, item: Mapping[str, Any], *stamps: str) -> bool:
        """Whether ``item`` may still be in the next scan's window, so its fingerprint is worth keeping in the
        cursor. Airflow does not return ``updated_at``; an item whose every timestamp is older than two overlaps
        (and that is finished) most likely is not. Guessing wrong costs one harmless re-emitted event, never a
        missed one; it keeps the cursor small after a first scan over years of history."""
        assert state.scan is not None
        times = [t for t in (parse_time(item.get(s)) for s in stamps) if t is not None]
        if not times or item.get("state") in (None, "queued", "running", "scheduled", "up_for_retry", "restarting"):
            return True
        return max(times) >= state.scan.started - 2 * self.overlap

    def _remember(self, state: CursorState, key: str, value: Any, keep: bool) -> bool:
        """Record ``value`` for ``key`` in the scan (when ``keep``); True when the previous scan (or this one)
        did not already emit exactly it."""
        assert state.scan is not None
        known = state.scan.next.get(key, state.seen.get(key))
        if keep:
            state.scan.next[key] = value
        return known != value

    def _run_event(self, run: Mapping[str, Any], as_of: datetime, state: CursorState) -> Iterator[RunEvent]:
        dag_id, run_id = str(run["dag_id"]), str(run["dag_run_id"])
        pipeline, external = self.pipeline_of(dag_id)
        raw = run.get("state")
        event = RunEvent(
            backend=self.backend,
            kind=EventKind.RUN,
            pipeline_id=pipeline,
            run_id=run_id,
            state=run_state(raw),
            raw_state=raw,
            as_of=as_of,
            source=Source.POLL,
            logical_date=parse_time(run.get("logical_date")),
            queued_at=parse_time(run.get("queued_at")),
            started_at=parse_time(run.get("start_date")),
            ended_at=parse_time(run.get("end_date")),
            external=external,
            extra={
                "dag_id": dag_id,
                "run_type": run.get("run_type"),
                "url": self.run_url(dag_id, run_id),
            },
        )
        fp = _fingerprint(
            raw, run.get("logical_date"), run.get("queued_at"), run.get("start_date"), run.get("end_date")
        )
        keep = self._recent(state, run, "queued_at", "start_date", "end_date", "last_scheduling_decision")
        if self._remember(state, f"r|{dag_id}|{run_id}", fp, keep):
            yield event

    def _attempt(self, ti: Mapping[str, Any], try_number: int, as_of: datetime, *, retried: bool = False) -> RunEvent:
        dag_id, run_id, task_id = str(ti["dag_id"]), str(ti["dag_run_id"]), str(ti["task_id"])
        pipeline, external = self.pipeline_of(dag_id)
        map_index = int(ti.get("map_index", -1))
        raw = ti.get("state")
        url = f"{self.run_url(dag_id, run_id)}/tasks/{_path(task_id)}"
        url += f"/mapped/{map_index}?try_number={try_number}" if map_index >= 0 else f"?try_number={try_number}"
        return RunEvent(
            backend=self.backend,
            kind=EventKind.TASK_ATTEMPT,
            pipeline_id=pipeline,
            run_id=run_id,
            state=task_state(raw, retried=retried),
            raw_state=raw,
            as_of=as_of,
            source=Source.POLL,
            task_id=task_id,
            try_number=try_number,
            map_index=map_index,
            queued_at=parse_time(ti.get("queued_when")),
            started_at=parse_time(ti.get("start_date")),
            ended_at=parse_time(ti.get("end_date")),
            external=external,
            extra={"dag_id": dag_id, "operator": ti.get("operator"), "url": url},
        )

    def _attempt_events(self, ti: Mapping[str, Any], as_of: datetime, state: CursorState) -> list[RunEvent]:
        """The current try of one task instance, plus its earlier tries the first time they can exist."""
        dag_id, run_id, task_id = str(ti["dag_id"]), str(ti["dag_run_id"]), str(ti["task_id"])
        map_index = int(ti.get("map_index", -1))
        try_number = int(ti.get("try_number") or 0)
        raw = ti.get("state")
        key = f"t|{dag_id}|{run_id}|{task_id}|{map_index}"
        assert state.scan is not None
        known = state.scan.next.get(key, state.seen.get(key))
        history_done = int(known[1]) if isinstance(known, list) and len(known) == 2 else 0
        # Tries before the current one are final history rows; a task with no state yet (cleared, waiting) has
        # its current try_number in the history too (the clear recorded it).
        history_upto = try_number if raw is None else try_number - 1
        events: list[RunEvent] = []
        if history_upto > history_done:
            events.extend(self._history(ti, history_done, history_upto, as_of))
            history_done = history_upto
        fp = _fingerprint(raw, try_number, ti.get("start_date"), ti.get("end_date"), ti.get("queued_when"))
        if self._recent(state, ti, "scheduled_when", "queued_when", "start_date", "end_date"):
            state.scan.next[key] = [fp, history_done]
        if raw is not None and (not isinstance(known, list) or known[0] != fp):
            events.append(self._attempt(ti, try_number, as_of))
        return events

    def _history(self, ti: Mapping[str, Any], after: int, upto: int, as_of: datetime) -> list[RunEvent]:
        dag_id, run_id, task_id = str(ti["dag_id"]), str(ti["dag_run_id"]), str(ti["task_id"])
        map_index = int(ti.get("map_index", -1))
        path = f"/api/v2/dags/{_path(dag_id)}/dagRuns/{_path(run_id)}/taskInstances/{_path(task_id)}"
        path += f"/{map_index}/tries" if map_index >= 0 else "/tries"
        try:
            body, _ = self.http.get(path, {})
        except AirflowApiError as exc:
            if exc.status == 404:  # the run was deleted meanwhile
                return []
            raise
        events = []
        for row in body.get("task_instances", []):
            number = int(row.get("try_number") or 0)
            if not after < number <= upto or row.get("state") is None:
                continue
            retried = number <= int(row.get("max_tries") or 0)
            events.append(self._attempt({**ti, **row, "dag_run_id": run_id}, number, as_of, retried=retried))
        return events

    # -- trigger ----------------------------------------------------------------------------------

    def trigger(
        self, pipeline_id: str, key: str, params: Mapping[str, Any], logical_date: datetime | None
    ) -> TriggerResult:
        """Start ``pipeline_id`` with ``dag_run_id = key``; Airflow's 409 for a known run id means this key
        already started it (exactly once)."""
        dag_id = self._dag_of.get(pipeline_id, pipeline_id)
        body = {"dag_run_id": key, "logical_date": _iso(logical_date), "conf": dict(params)}
        path = f"/api/v2/dags/{_path(dag_id)}/dagRuns"
        response = self.trigger_http.call("POST", path, ok=(200, 409), json=body)
        url = self.run_url(dag_id, key)
        if response.status_code == 200:
            return TriggerResult(run_id=key, created=True, url=url)
        # 409 is also what another run holding the same logical date gets: only a run with this id is ours.
        if self.trigger_http.call("GET", f"{path}/{_path(key)}", ok=(200, 404)).status_code == 404:
            raise AirflowApiError(
                "POST",
                self.trigger_http.base + path,
                409,
                f"another run of {dag_id!r} has the logical date {body['logical_date']}",
            )
        return TriggerResult(run_id=key, created=False, url=url)

    def run_params(self, pipeline_id: str, run_id: str) -> dict[str, Any]:
        """The run's ``conf`` (what a downstream started for it receives as params)."""
        dag_id = self._dag_of.get(pipeline_id, pipeline_id)
        response = self.trigger_http.call("GET", f"/api/v2/dags/{_path(dag_id)}/dagRuns/{_path(run_id)}", ok=(200,))
        return dict(response.json().get("conf") or {})

    # -- pausing (meta migrate) -------------------------------------------------------------------

    def _dag(self, pipeline_id: str) -> dict[str, Any]:
        dag_id = self._dag_of.get(pipeline_id, pipeline_id)
        return dict(self.trigger_http.call("GET", f"/api/v2/dags/{_path(dag_id)}", ok=(200,)).json())

    pausing_stalls_runs = True  # Airflow's scheduler leaves a paused DAG's running runs where they are
    has_scheduler = True

    def is_paused(self, pipeline_id: str) -> bool:
        return bool(self._dag(pipeline_id).get("is_paused"))

    def unfinished_runs(self, pipeline_id: str) -> int:
        dag_id = self._dag_of.get(pipeline_id, pipeline_id)
        response = self.trigger_http.call(
            "GET",
            f"/api/v2/dags/{_path(dag_id)}/dagRuns",
            ok=(200,),
            params=[("state", "queued"), ("state", "running"), ("limit", "1")],
        )
        return int(response.json().get("total_entries") or 0)

    def mark_handled(self, pipeline_id: str, logical_date: datetime, key: str, note: str) -> None:
        """A run for ``logical_date`` created and at once marked success with ``note`` (while the DAG is paused, so
        no task starts): Airflow keeps one run per logical date and its scheduler skips a date that has one."""
        dag_id = self._dag_of.get(pipeline_id, pipeline_id)
        path = f"/api/v2/dags/{_path(dag_id)}/dagRuns"
        body: dict[str, Any] = {"dag_run_id": key, "logical_date": _iso(logical_date), "conf": {}, "note": note}
        self.trigger_http.call("POST", path, ok=(200, 409), json=body)
        self.trigger_http.call("PATCH", f"{path}/{_path(key)}", ok=(200,), json={"state": "success"})

    def set_paused(self, pipeline_id: str, paused: bool) -> None:
        dag_id = self._dag_of.get(pipeline_id, pipeline_id)
        self.trigger_http.call(
            "PATCH",
            f"/api/v2/dags/{_path(dag_id)}",
            ok=(200,),
            params={"update_mask": "is_paused"},
            json={"is_paused": paused},
        )

    def newest_logical_date(self, pipeline_id: str) -> datetime | None:
        dag_id = self._dag_of.get(pipeline_id, pipeline_id)
        response = self.trigger_http.call(
            "GET", f"/api/v2/dags/{_path(dag_id)}/dagRuns", ok=(200,), params={"order_by": "-logical_date", "limit": 1}
        )
        runs = response.json().get("dag_runs") or []
        return parse_time(runs[0].get("logical_date")) if runs else None

    def has_run_at(self, pipeline_id: str, logical_date: datetime) -> bool:
        dag_id = self._dag_of.get(pipeline_id, pipeline_id)
        at = _iso(logical_date)
        params = {"logical_date_gte": at, "logical_date_lte": at, "limit": 1}
        response = self.trigger_http.call("GET", f"/api/v2/dags/{_path(dag_id)}/dagRuns", ok=(200,), params=params)
        return bool(response.json().get("total_entries"))

    def next_native_slot(self, pipeline_id: str) -> datetime | None:
        """Airflow's ``next_dagrun_logical_date``: recomputed by the DAG processor at each parse, also while paused."""
        return parse_time(self._dag(pipeline_id).get("next_dagrun_logical_date"))

    # -- backfills (Airflow's own: POST /api/v2/backfills) ------------------------------------------------

    def backfill_dates(
        self, pipeline_id: str, start: datetime, end: datetime, reprocess: str, conf: Mapping[str, Any]
    ) -> list[datetime]:
        """The logical dates Airflow would run for this range (its dry run)."""
        body = self._backfill_body(pipeline_id, start, end, reprocess, conf, 10)
        response = self.trigger_http.call("POST", "/api/v2/backfills/dry_run", json=body)
        found = [parse_time(b.get("logical_date")) for b in response.json().get("backfills", [])]
        return sorted(d for d in found if d is not None)

    def start_backfill(
        self, pipeline_id: str, start: datetime, end: datetime, reprocess: str, conf: Mapping[str, Any], parallel: int
    ) -> dict[str, Any]:
        """Airflow's backfill of the range: a new one, or the one already running for this DAG and range (a
        resumed ``meta backfill``). Another range still running is an error naming it."""
        dag_id = self._dag_of.get(pipeline_id, pipeline_id)
        for found in self.backfills(pipeline_id):
            if found.get("completed_at") is None:
                same = parse_time(found["from_date"]) == start and parse_time(found["to_date"]) == end
                if same:
                    return found
                raise AirflowApiError(
                    "POST",
                    self.trigger_http.base + "/api/v2/backfills",
                    409,
                    f"backfill {found['id']} of {dag_id} ({found['from_date']} to {found['to_date']}) is still "
                    "running; wait for it or cancel it in Airflow",
                )
        body = self._backfill_body(pipeline_id, start, end, reprocess, conf, parallel)
        for attempt in range(8):
            # Airflow on SQLite answers 503 "Database is locked" to a backfill created under concurrent access:
            # temporary by its own account, so retried (a 409 would mean another backfill started meanwhile)
            try:
                return dict(self.trigger_http.call("POST", "/api/v2/backfills", json=body).json())
            except BackendUnreachable:
                if attempt == 7:
                    raise
                time.sleep(min(8.0, 0.5 * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def backfills(self, pipeline_id: str) -> list[dict[str, Any]]:
        dag_id = self._dag_of.get(pipeline_id, pipeline_id)
        response = self.trigger_http.call("GET", "/api/v2/backfills", params={"dag_id": dag_id, "limit": 100})
        return list(response.json().get("backfills", []))

    def _backfill_body(
        self, pipeline_id: str, start: datetime, end: datetime, reprocess: str, conf: Mapping[str, Any], parallel: int
    ) -> dict[str, Any]:
        return {
            "dag_id": self._dag_of.get(pipeline_id, pipeline_id),
            "from_date": _iso(start),
            "to_date": _iso(end),
            "run_backwards": False,
            "dag_run_conf": dict(conf),
            "reprocess_behavior": reprocess,
            "max_active_runs": parallel,
        }


def create(connection: BackendConnection) -> AirflowObserver:
    return AirflowObserver(connection)


KIND = ObserverKind(
    "airflow",
    create=create,
    description="Airflow 3 over REST v2: keyset polls of runs and task instances by updated_at, JWT login, "
    "triggers with a deterministic dag_run_id (409 = already started); OpenLineage pushes via /api/v1/lineage",
)

__all__ = ["KIND", "AirflowApiError", "AirflowObserver", "run_state", "task_state"]
