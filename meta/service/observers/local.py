"""The local runner's observer: reads its run history (``<state dir>/meta.db``), the same facts ``meta runs`` shows.

The history records a run when it starts (running) and its task attempts when it ends. Each cycle reads the runs
started or ended since the watermark (minus an overlap) plus every run still running: one query when nothing
changed. Tasks decided without running (skipped, upstream_failed) have no attempt row; they are reported as try 0,
as Airflow 3 reports task instances that never ran.

Triggering starts ``meta run`` as a detached process with the trigger key as the run id; a key already in the
history, or whose run log already exists (created exclusively), is not started again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from meta.builtin.local.state import History
from meta.plugins.observers import (
    BackendConnection,
    Batch,
    EventKind,
    ObserverKind,
    RunEvent,
    Source,
    TriggerResult,
    UnifiedState,
)
from meta.settings import state_dir

OVERLAP = timedelta(seconds=30)


def _aware(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _state(raw: str) -> UnifiedState:
    try:
        return UnifiedState(raw)
    except ValueError:
        return UnifiedState.OTHER


class LocalObserver:
    def __init__(self, connection: BackendConnection):
        self.backend = connection.name
        folder = connection.options.get("state_dir")
        self.home = Path(folder) if folder else state_dir()
        self.history = History(self.home / "meta.db")
        self.specs: Mapping[str, str] = connection.options.get("specs", {})  # pipeline id -> spec file
        self.external_ok = set(connection.pipelines.values())

    def poll(self, cursor: str | None) -> Batch:
        started = datetime.now(UTC)
        since = (datetime.fromisoformat(cursor) - OVERLAP).isoformat() if cursor else None
        events: list[RunEvent] = []
        for run in self.history.changed_since(since):
            events.extend(self._events(run, started))
        return Batch(events, started.isoformat(), requests=1)

    def _events(self, run: dict[str, Any], as_of: datetime) -> list[RunEvent]:
        common = {
            "backend": self.backend,
            "pipeline_id": run["pipeline_id"],
            "run_id": run["run_id"],
            "as_of": as_of,
            "source": Source.POLL,
            "external": run["pipeline_id"] not in self.external_ok,
        }
        events = [
            RunEvent(
                kind=EventKind.RUN,
                state=_state(run["state"]),
                raw_state=run["state"],
                logical_date=_aware(run["logical_date"]),
                started_at=_aware(run["started_at"]),
                ended_at=_aware(run["ended_at"]),
                extra={"params": json.loads(run["params"] or "{}")},
                **common,
            )
        ]
        tried = set()
        for attempt in run["attempts"]:
            tried.add((attempt["task_id"], attempt["map_index"]))
            events.append(
                RunEvent(
                    kind=EventKind.TASK_ATTEMPT,
                    task_id=attempt["task_id"],
                    map_index=attempt["map_index"],
                    try_number=attempt["try_number"],
                    state=_state(attempt["state"]),
                    raw_state=attempt["state"],
                    started_at=_aware(attempt["started_at"]),
                    ended_at=_aware(attempt["ended_at"]),
                    **common,
                )
            )
        for task in run["task_instances"]:
            if (task["task_id"], task["map_index"]) not in tried:  # decided without running: skipped, ...
                events.append(
                    RunEvent(
                        kind=EventKind.TASK_ATTEMPT,
                        task_id=task["task_id"],
                        map_index=task["map_index"],
                        try_number=0,
                        state=_state(task["state"]),
                        raw_state=task["state"],
                        **common,
                    )
                )
        return events

    def trigger(
        self, pipeline_id: str, key: str, params: Mapping[str, Any], logical_date: datetime | None
    ) -> TriggerResult:
        if any(r["run_id"] == key for r in self.history.runs(pipeline_id, limit=1_000_000)):
            return TriggerResult(run_id=key, created=False)
        spec = self.specs.get(pipeline_id) or self._deployed(pipeline_id)
        if spec is None:
            raise LookupError(f"pipeline {pipeline_id!r} has no spec file known to the local backend {self.backend!r}")
        command = [sys.executable, "-m", "meta", "run", spec, "--pipeline", pipeline_id, "--run-id", key]
        for name, value in sorted(params.items()):
            command += ["--param", f"{name}={value if isinstance(value, str) else json.dumps(value)}"]
        if logical_date is not None:
            command += ["--logical-date", logical_date.isoformat()]
        log = self.home / "triggered" / f"{pipeline_id}.{key}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "META_HOME": str(self.home)}
        try:  # the run's log, created exclusively: of two concurrent requests (any processes) only one starts it
            out = open(log, "xb")  # handed to the child, closed right after
        except FileExistsError:
            return TriggerResult(run_id=key, created=False)
        with out:
            subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        return TriggerResult(run_id=key, created=True)

    def _deployed(self, pipeline_id: str) -> str | None:
        """A spec ``meta migrate`` wrote for this backend (a shadow copy, an unscheduled live copy)."""
        path = deployed_spec(self.home, pipeline_id)
        return str(path) if path.is_file() else None

    # -- pausing (meta migrate): the local runner has no scheduler of its own, so there is nothing to pause ----

    pausing_stalls_runs = False
    has_scheduler = False

    def is_paused(self, pipeline_id: str) -> bool:
        if pipeline_id not in self.specs and self._deployed(pipeline_id) is None:
            raise LookupError(f"the local backend {self.backend!r} has no spec of {pipeline_id!r}")
        return False

    def set_paused(self, pipeline_id: str, paused: bool) -> None:
        """Nothing to do: only meta (the control plane, ``meta run``) starts local runs."""

    def unfinished_runs(self, pipeline_id: str) -> int:
        return sum(1 for r in self.history.runs(pipeline_id, limit=1_000) if r["ended_at"] is None)

    def newest_logical_date(self, pipeline_id: str) -> datetime | None:
        dates = [_aware(r["logical_date"]) for r in self.history.runs(pipeline_id, limit=1_000_000)]
        return max((d for d in dates if d is not None), default=None)

    def next_native_slot(self, pipeline_id: str) -> datetime | None:
        return None

    def has_run_at(self, pipeline_id: str, logical_date: datetime) -> bool:
        return any(_aware(r["logical_date"]) == logical_date for r in self.history.runs(pipeline_id, limit=1_000_000))

    def mark_handled(self, pipeline_id: str, logical_date: datetime, key: str, note: str) -> None:
        """Not needed: the local runner never starts a slot by itself."""

    def run_params(self, pipeline_id: str, run_id: str) -> dict[str, Any]:
        for run in self.history.runs(pipeline_id, limit=1_000_000):
            if run["run_id"] == run_id:
                return dict(run["params"] or {})  # History.runs has decoded them already
        return {}

    def close(self) -> None:
        pass


def deployed_spec(home: Path, pipeline_id: str) -> Path:
    """Where ``meta migrate`` writes a spec for a local backend whose state directory is ``home``."""
    return home / "deployed" / f"{pipeline_id}.yaml"


def create(connection: BackendConnection) -> LocalObserver:
    return LocalObserver(connection)


KIND = ObserverKind("local", create=create, description="the embedded local runner's run history")
