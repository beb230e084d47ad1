"""OpenLineage run events from Airflow's official provider (apache-airflow-providers-openlineage 2.20) -> neutral
:class:`RunEvent` objects (``source=push``), so the push path and the poll path
(:mod:`meta.service.observers.airflow`) converge to the same history.

What Airflow 3.3 + provider 2.20.3 sends (measured, /work/shared/BACKENDS.md): DAG-run START / COMPLETE / FAIL with
``run.facets.airflowDagRun.dagRun`` (dag_id, run_id, logical_date, start/end, clear_number); the COMPLETE/FAIL
carries ``run.facets.airflowState`` with the run state and every task's final state (``tasksState``); task START /
COMPLETE / FAIL with ``run.facets.airflow`` (``dag.dag_id``, ``dagRun.run_id``, ``task.task_id``, ``task.retries``,
``taskInstance.try_number``, ``taskInstance.map_index`` when mapped). OpenLineage's own ``runId`` is a UUID it
derives; Airflow's ids come from those facets.

Why the mapping is what it is:

- A task START is ``running`` for that try.
- A task COMPLETE maps to nothing: a skipped task sends the same START + COMPLETE as a successful one, so the
  terminal state of that try comes from the run's end (``tasksState``) or from polling, never from a guess.
- A task FAIL with ``try_number <= task.retries`` will be retried: ``up_for_retry`` (the state Airflow's task
  instance has until the next try; the poll path maps the history row of such a try the same way). Otherwise
  ``failed``. (After a manual clear Airflow raises ``max_tries`` beyond ``retries``; the push path cannot see
  that, polling corrects such a try to ``up_for_retry``.)
- DAG START / COMPLETE / FAIL are the run's ``running`` / ``success`` / ``failed`` (``airflowState.dagRunState``
  when present). The COMPLETE/FAIL's ``tasksState`` gives each task's final state, applied to the task's latest
  try: known from this mapper's memory of task events and, failing that, from ``latest_try`` (the store). A task
  that never ran (``upstream_failed``, or skipped by the scheduler) sends no event and is try 0, as in Airflow's
  API (``tasksDuration`` 0 tells it from a task that ran and skipped itself). A task that ran but whose try is
  unknown (its events were lost: delivery is best effort) is left to polling.

Events from other producers (Spark, dbt, ...) and from namespaces no backend claims map to ``[]``: the API keeps
them as lineage only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from meta.plugins.observers import BackendConnection, EventKind, RunEvent, Source, UnifiedState
from meta.service.observers.airflow import parse_time, run_state, run_url, task_state

# (backend, pipeline_id, run_id, task_id, map_index) -> the latest try_number known, or None.
LatestTry = Callable[[str, str, str, str, int], int | None]
NEVER_RAN = ("upstream_failed", "skipped", "removed")
RUN_RAW = {"START": "running", "RUNNING": "running", "COMPLETE": "success", "FAIL": "failed"}


def _no_lookup(*_key: Any) -> int | None:
    return None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any, default: int | None = None) -> int | None:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return default


def _map_index(ti: Mapping[str, Any]) -> int:
    """The provider sends ``map_index`` only for mapped tasks (-1 otherwise)."""
    value = _int(ti.get("map_index"))
    return -1 if value is None else value


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _run_url(connection: BackendConnection, dag_id: str, run_id: str) -> str:
    return run_url(str(connection.options.get("ui_url") or connection.url), dag_id, run_id)


def map_event(
    event: Mapping[str, Any], namespaces: Mapping[str, BackendConnection], latest_try: LatestTry = _no_lookup
) -> list[RunEvent]:
    """The neutral events one OpenLineage RunEvent says; ``namespaces``: OpenLineage namespace -> the Airflow
    backend that sends it (its ``pipelines`` name meta-built DAGs; every other DAG is external)."""
    if not isinstance(event, Mapping):
        return []
    job = _dict(event.get("job"))
    namespace = job.get("namespace")
    connection = namespaces.get(namespace) if isinstance(namespace, str) else None
    if connection is None:
        return []
    as_of = parse_time(event.get("eventTime"))
    event_type = str(event.get("eventType") or "").upper()
    if as_of is None or not event_type:
        return []
    facets = _dict(_dict(event.get("run")).get("facets"))
    task_facet = _dict(facets.get("airflow"))
    if task_facet.get("task") and task_facet.get("taskInstance"):
        return _task_events(connection, task_facet, event_type, as_of)
    dag_run = _dict(_dict(facets.get("airflowDagRun")).get("dagRun"))
    if dag_run:
        return _run_events(connection, dag_run, _dict(facets.get("airflowState")), event_type, as_of, latest_try)
    return []  # not Airflow (Spark, dbt, ...), or an Airflow event without the facets meta reads


def _ran(airflow_state: Mapping[str, Any], task_id: str) -> bool:
    """A skipped task with a duration ran (and skipped itself, try >= 1); skipped by the scheduler it has none."""
    duration = _dict(airflow_state.get("tasksDuration")).get(task_id)
    return isinstance(duration, int | float) and duration > 0


def _names(connection: BackendConnection, dag_id: str) -> tuple[str, bool]:
    pipeline = connection.pipelines.get(dag_id)
    return (pipeline, False) if pipeline is not None else (dag_id, True)


def _run_events(
    connection: BackendConnection,
    dag_run: Mapping[str, Any],
    airflow_state: Mapping[str, Any],
    event_type: str,
    as_of: datetime,
    latest_try: LatestTry,
) -> list[RunEvent]:
    dag_id, run_id = _str(dag_run.get("dag_id")), _str(dag_run.get("run_id"))
    raw = _str(airflow_state.get("dagRunState")) or RUN_RAW.get(event_type)
    if dag_id is None or run_id is None or raw is None:
        return []
    pipeline, external = _names(connection, dag_id)
    terminal = event_type in ("COMPLETE", "FAIL")
    events = [
        RunEvent(
            backend=connection.name,
            kind=EventKind.RUN,
            pipeline_id=pipeline,
            run_id=run_id,
            state=run_state(raw),
            raw_state=raw,
            as_of=as_of,
            source=Source.PUSH,
            logical_date=parse_time(dag_run.get("logical_date")),
            started_at=parse_time(dag_run.get("start_date")),
            ended_at=(parse_time(dag_run.get("end_date")) or as_of) if terminal else None,
            external=external,
            extra={
                "dag_id": dag_id,
                "run_type": dag_run.get("run_type"),
                "clear_number": _int(dag_run.get("clear_number")),
                "url": _run_url(connection, dag_id, run_id),
            },
        )
    ]
    if terminal:
        for task_id, task_raw in _dict(airflow_state.get("tasksState")).items():
            if not isinstance(task_id, str) or not isinstance(task_raw, str):
                continue  # no state yet: not an attempt
            try_number = latest_try(connection.name, pipeline, run_id, task_id, -1)
            if try_number is None:
                if task_raw not in NEVER_RAN or _ran(airflow_state, task_id):
                    continue  # it ran, but its try is unknown (events lost): polling has it
                try_number = 0
            events.append(
                RunEvent(
                    backend=connection.name,
                    kind=EventKind.TASK_ATTEMPT,
                    pipeline_id=pipeline,
                    run_id=run_id,
                    state=task_state(task_raw),
                    raw_state=task_raw,
                    as_of=as_of,
                    source=Source.PUSH,
                    task_id=task_id,
                    try_number=try_number,
                    external=external,
                    extra={"dag_id": dag_id},
                )
            )
    return events


def _task_events(
    connection: BackendConnection, facet: Mapping[str, Any], event_type: str, as_of: datetime
) -> list[RunEvent]:
    task, ti = _dict(facet.get("task")), _dict(facet.get("taskInstance"))
    dag_run = _dict(facet.get("dagRun"))
    dag_id = _str(_dict(facet.get("dag")).get("dag_id")) or _str(dag_run.get("dag_id"))
    run_id, task_id = _str(dag_run.get("run_id")), _str(task.get("task_id"))
    try_number = _int(ti.get("try_number"))
    if dag_id is None or run_id is None or task_id is None or try_number is None:
        return []
    if event_type in ("START", "RUNNING"):
        state, raw = UnifiedState.RUNNING, "running"
    elif event_type == "FAIL":
        retries = _int(task.get("retries"), 0) or 0
        state = UnifiedState.UP_FOR_RETRY if try_number <= retries else UnifiedState.FAILED
        raw = str(state)
    else:
        return []  # COMPLETE: success or skipped, indistinguishable; the run's end or polling says which
    pipeline, external = _names(connection, dag_id)
    map_index = _map_index(ti)
    url = _run_url(connection, dag_id, run_id) + f"/tasks/{quote(task_id, safe='')}"
    url += f"/mapped/{map_index}" if map_index >= 0 else ""
    return [
        RunEvent(
            backend=connection.name,
            kind=EventKind.TASK_ATTEMPT,
            pipeline_id=pipeline,
            run_id=run_id,
            state=state,
            raw_state=raw,
            as_of=as_of,
            source=Source.PUSH,
            task_id=task_id,
            try_number=try_number,
            map_index=map_index,
            started_at=as_of if state is UnifiedState.RUNNING else None,
            ended_at=as_of if state.is_terminal else None,
            external=external,
            extra={"dag_id": dag_id, "url": f"{url}?try_number={try_number}"},
        )
    ]


def task_try(
    event: Mapping[str, Any], namespaces: Mapping[str, BackendConnection]
) -> tuple[tuple[str, str, str, str, int], int] | None:
    """The (backend, pipeline, run, task, map_index) key and try number a task event names, for any event type
    (COMPLETE included: it maps to nothing but still says which try ran)."""
    job = _dict(event.get("job")) if isinstance(event, Mapping) else {}
    namespace = job.get("namespace")
    connection = namespaces.get(namespace) if isinstance(namespace, str) else None
    if connection is None:
        return None
    facet = _dict(_dict(_dict(event.get("run")).get("facets")).get("airflow"))
    dag_run, task, ti = _dict(facet.get("dagRun")), _dict(facet.get("task")), _dict(facet.get("taskInstance"))
    dag_id = _str(_dict(facet.get("dag")).get("dag_id")) or _str(dag_run.get("dag_id"))
    run_id, task_id, try_number = _str(dag_run.get("run_id")), _str(task.get("task_id")), _int(ti.get("try_number"))
    if dag_id is None or run_id is None or task_id is None or try_number is None:
        return None
    pipeline, _external = _names(connection, dag_id)
    return (connection.name, pipeline, run_id, task_id, _map_index(ti)), try_number


class TryMemory:
    """The latest try of recently seen tasks (bounded, thread-safe): the run's end applies ``tasksState`` to it."""

    def __init__(self, size: int = 20_000):
        self._tries: OrderedDict[tuple[str, str, str, str, int], int] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def note(self, key: tuple[str, str, str, str, int], try_number: int) -> None:
        with self._lock:
            self._tries[key] = max(try_number, self._tries.get(key, try_number))
            self._tries.move_to_end(key)
            while len(self._tries) > self._size:
                self._tries.popitem(last=False)

    def get(self, key: tuple[str, str, str, str, int]) -> int | None:
        with self._lock:
            return self._tries.get(key)


def mapper(
    namespaces: Mapping[str, BackendConnection], latest_try: LatestTry | None = None
) -> Callable[[dict[str, Any]], list[RunEvent]]:
    """What the API calls per received event: :func:`map_event` with a memory of the tries task events named,
    falling back to ``latest_try`` (e.g. :func:`store_latest_try`) for tasks it has not seen (after a restart)."""
    memory = TryMemory()
    fallback = latest_try or _no_lookup

    def lookup(backend: str, pipeline: str, run_id: str, task_id: str, map_index: int) -> int | None:
        known = memory.get((backend, pipeline, run_id, task_id, map_index))
        return known if known is not None else fallback(backend, pipeline, run_id, task_id, map_index)

    def map_one(event: dict[str, Any]) -> list[RunEvent]:
        named = task_try(event, namespaces)
        if named is not None:
            memory.note(*named)
        return map_event(event, namespaces, lookup)

    return map_one


def store_latest_try(store: Any) -> LatestTry:
    """A :data:`LatestTry` reading the highest stored try of a task (``store``: a ``meta.service.store.db.Store``)."""
    from sqlalchemy import func, select

    from meta.service.store.orm import AttemptRow

    def latest(backend: str, pipeline: str, run_id: str, task_id: str, map_index: int) -> int | None:
        with store.reading() as session:
            return session.scalar(
                select(func.max(AttemptRow.try_number)).where(
                    AttemptRow.backend == backend,
                    AttemptRow.pipeline_id == pipeline,
                    AttemptRow.run_id == run_id,
                    AttemptRow.task_id == task_id,
                    AttemptRow.map_index == map_index,
                )
            )

    return latest


__all__ = ["LatestTry", "TryMemory", "map_event", "mapper", "store_latest_try", "task_try"]
