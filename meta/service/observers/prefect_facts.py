"""Prefect's flow runs, task runs and state events as neutral :class:`RunEvent` facts (the Prefect observer's
vocabulary; ``prefect`` fetches them).

Identities. Pipeline: the flow name; a flow named in ``BackendConnection.pipelines`` (flow name -> pipeline id) is
meta-built, every other flow is external. The flow name is the key because meta names each flow after its pipeline
(``meta_prefect.flow.flow_options``), while the deployment name is ``meta`` for all of them. Run:
``prefect__<flow run id>``, the run id meta's Prefect driver gives the run (``META_RUN_ID``, alerts). Task: a
meta-built flow's task id is the prefix of the task key (meta names each task function ``<pipeline>.<task id>``;
the run name is the task id too, but only from Running on); an external flow's is the task run's name, as Prefect's
UI shows it (``<task>-<3 chars of its dynamic key>`` unless the flow sets ``task_run_name``). Attempt: a task run's
``run_count``; earlier attempts were retried after failing, so they are ``up_for_retry``.

States (``raw_state`` keeps Prefect's state name):

========================  ==================================  ========================================
Prefect type / name       flow run                            task attempt
========================  ==================================  ========================================
SCHEDULED (Late too)      scheduled                           scheduled
SCHEDULED AwaitingRetry   running (the run is between tries)  up_for_retry (the attempt that failed)
PENDING (Submitting too)  queued                              queued [4]; NotReady: upstream_failed [1]
RUNNING                   running                             running (Retrying: the next attempt) [5]
COMPLETED                 success                             success; Skipped: skipped [2]
FAILED                    failed                              failed; UpstreamFailed: upstream_failed [2]
CRASHED, CANCELLED        failed [3]                          failed
CANCELLING                running (still in flight)           running
PAUSED                    other                               other
========================  ==================================  ========================================

[1] Prefect's own upstream failure: a task whose ``wait_for`` upstream failed stays ``Pending``/``NotReady``.
[2] meta's driver marks skipped / upstream_failed tasks with these named states (``meta_prefect.states``); tasks it
    decided without running carry the tag ``meta:not-run`` and are reported as try 0 (Airflow 3 and the local
    observer do the same), their final state only.
[3] Airflow has no cancelled run; a stopped Airflow run is failed, and meta's Prefect target reads it so too.
[4] Not for external flows: a plain ``Pending`` task run lasts milliseconds and its name may still change.
[5] Without a retry delay Prefect goes Running -> Retrying with no AwaitingRetry between: the attempt before a
    Retrying one is reported up_for_retry all the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from meta.plugins.observers import EventKind, RunEvent, Source, UnifiedState

RUN_PREFIX = "prefect__"
# meta's Prefect driver (meta_prefect.states): named states for Airflow's skipped / upstream_failed.
SKIPPED = "Skipped"
UPSTREAM_FAILED = "UpstreamFailed"
NOT_RUN_TAG = "meta:not-run"
NOT_READY = "NotReady"  # Prefect's own: an upstream of wait_for did not complete
# meta's driver names a mapped task's instance ``task[i]`` (its task run is ``task[i]-<key>`` until it starts):
# meta_prefect.driver.task_run_name.
_INSTANCE_NAME = re.compile(r".+\[(\d+)\](?:-[^\[\]]*)?")

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


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------- facts


@dataclass
class Facts:
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


def related(event: Mapping[str, Any], role: str) -> tuple[str | None, str | None]:
    """(id, name) of the related resource with ``role``: ids are ``prefect.<kind>.<uuid>``."""
    for resource in event.get("related") or []:
        if resource.get("prefect.resource.role") == role:
            rid = str(resource.get("prefect.resource.id", ""))
            return rid.rsplit(".", 1)[-1], resource.get("prefect.resource.name")
    return None, None


def is_state_event(event: Mapping[str, Any]) -> bool:
    """State changes only (not heartbeats or pull-step events, which share the prefix)."""
    return "prefect.state-type" in (event.get("resource") or {})


class Mapper:
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

    @staticmethod
    def map_index(external: bool, name: str) -> int:
        """The map index in the name meta's driver gives a mapped task's instance; -1 (unmapped) for anything else."""
        match = _INSTANCE_NAME.fullmatch(name) if not external else None
        return int(match.group(1)) if match else -1

    # -- REST ---------------------------------------------------------------------------------------

    def flow_run(self, run: Mapping[str, Any], flow_name: str, source: Source) -> RunEvent:
        state = run.get("state") or {}
        pipeline_id, external = self.pipeline_of(flow_name)
        as_of = parse_time(state.get("timestamp")) or parse_time(run.get("updated")) or datetime.now(UTC)
        return RunEvent(
            backend=self.backend,
            kind=EventKind.RUN,
            pipeline_id=pipeline_id,
            run_id=RUN_PREFIX + str(run["id"]),
            state=run_state(state.get("type") or run.get("state_type"), state.get("name") or run.get("state_name")),
            raw_state=state.get("name") or run.get("state_name"),
            as_of=as_of,
            source=source,
            logical_date=parse_time(run.get("expected_start_time")),
            started_at=parse_time(run.get("start_time")),
            ended_at=parse_time(run.get("end_time")),
            external=external,
            extra=self._run_extra(str(run["id"]), run.get("name"), run.get("deployment_id")),
        )

    def task_run(self, task: Mapping[str, Any], flow_name: str, source: Source) -> list[RunEvent]:
        """The task run's current attempt, and every earlier attempt as up_for_retry (Prefect retried it)."""
        state = task.get("state") or {}
        kind, name = state.get("type") or task.get("state_type"), state.get("name") or task.get("state_name")
        as_of = parse_time(state.get("timestamp")) or parse_time(task.get("updated")) or datetime.now(UTC)
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
            "map_index": self.map_index(external, str(task.get("name") or "")),
            "as_of": as_of,
            "source": source,
            "external": external,
            "extra": {"task_run_id": str(task["id"]), "task_run_name": task.get("name")},
        }
        if not_run:
            return [RunEvent(state=mapped, raw_state=name, try_number=0, **common)]
        current = max(run_count, 1)
        final = mapped.is_terminal or mapped is UnifiedState.UP_FOR_RETRY
        started = parse_time(task.get("start_time")) if current == 1 else None
        if started is None and kind == "RUNNING":
            started = as_of
        out = [
            RunEvent(
                state=mapped,
                raw_state=name,
                try_number=current,
                started_at=started,
                ended_at=(parse_time(task.get("end_time")) or as_of) if final else None,
                **common,
            )
        ]
        for earlier in range(1, current):
            first = parse_time(task.get("start_time")) if earlier == 1 else None
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
        if not is_state_event(event):
            return []
        resource = event.get("resource") or {}
        rid = str(resource.get("prefect.resource.id", ""))
        occurred = parse_time(resource.get("prefect.state-timestamp")) or parse_time(event.get("occurred"))
        if occurred is None:
            return []
        kind, name = resource.get("prefect.state-type"), resource.get("prefect.state-name") or None
        run_count = int(resource.get("prefect.run-count") or 0)
        _flow_id, flow_name = related(event, "flow")
        if rid.startswith("prefect.flow-run."):
            flow_run_id = rid.removeprefix("prefect.flow-run.")
            if not flow_name:
                return []
            pipeline_id, external = self.pipeline_of(flow_name)
            state = run_state(kind, name)
            details = ((event.get("payload") or {}).get("validated_state") or {}).get("state_details") or {}
            deployment_id, _ = related(event, "deployment")
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
                    logical_date=parse_time(details.get("scheduled_time")) if kind == "SCHEDULED" else None,
                    queued_at=occurred if kind == "PENDING" else None,
                    started_at=occurred if kind == "RUNNING" and run_count <= 1 else None,
                    ended_at=occurred if state.is_terminal else None,
                    external=external,
                    extra=self._run_extra(flow_run_id, resource.get("prefect.resource.name"), deployment_id),
                )
            ]
        if rid.startswith("prefect.task-run."):
            parent, _ = related(event, "flow-run")
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
                map_index=self.map_index(external, task_name),
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
