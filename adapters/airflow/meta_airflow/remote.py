"""Deploy, trigger and watch pipelines on a running Airflow through REST v2 (used by ``meta run`` and tests)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meta import UNMAPPED, Pipeline, RunResult, RunState, TaskResult, TaskState
from meta_airflow.client import AirflowClient

FINISHED_RUN_STATES = {"success", "failed"}
# Airflow task states meta has no name for, mapped to the closest meta state (only seen while a run is unfinished).
TASK_STATE_ALIASES = {
    None: TaskState.SCHEDULED,
    "none": TaskState.SCHEDULED,
    "removed": TaskState.SKIPPED,
    "restarting": TaskState.UP_FOR_RETRY,
    "up_for_reschedule": TaskState.RUNNING,
    "deferred": TaskState.RUNNING,
    "awaiting_input": TaskState.RUNNING,
}


def spec_path(specs_dir: Path, pipeline_id: str) -> Path:
    return specs_dir / f"{pipeline_id}.json"


def spec_text(pipeline: Pipeline) -> str:
    """What ``write_spec`` writes for ``pipeline`` (``meta deploy --dry-run`` compares it with the file there)."""
    return json.dumps(pipeline.model_dump(mode="json", by_alias=True), indent=1, sort_keys=True)


def write_spec(specs_dir: Path, pipeline: Pipeline) -> Path:
    """Write ``pipeline`` where the loader reads it; only rewritten when it changed (keeps Airflow's parse cheap)."""
    specs_dir.mkdir(parents=True, exist_ok=True)
    path = spec_path(specs_dir, pipeline.id)
    text = spec_text(pipeline)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # atomic: the dag processor never reads half a file
    return path


def wait_for_dags(client: AirflowClient, dag_ids: Sequence[str], timeout: float = 300, grace: float = 15) -> None:
    """Wait until every DAG is known to the API. An import error that persists for ``grace`` seconds (longer than a
    dag-processor refresh, so not a file caught mid-write) fails early with Airflow's message."""
    deadline = time.monotonic() + timeout
    missing: set[str] = set(dag_ids)
    errors_since: float | None = None
    detail = ""
    while time.monotonic() < deadline:
        errors = client.import_errors()
        if errors:
            detail = "; ".join(f"{e.get('filename')}: {e.get('stack_trace', '')[-500:]}" for e in errors)
            errors_since = errors_since or time.monotonic()
            if time.monotonic() - errors_since > grace:
                raise RuntimeError(f"Airflow reports import errors: {detail}")
        else:
            errors_since, detail = None, ""
        missing = set(dag_ids) - client.dag_ids()
        if not missing:
            return
        time.sleep(1)
    raise TimeoutError(
        f"DAGs not visible in Airflow after {timeout}s: {sorted(missing)}" + (f"; {detail}" if detail else "")
    )


def trigger(
    client: AirflowClient,
    pipeline: Pipeline,
    params: Mapping[str, Any] | None,
    run_id: str,
    logical_date: datetime | None = None,
) -> None:
    client.set_paused(pipeline.id, False)
    ld = (logical_date or datetime.now(UTC)).isoformat()
    client.trigger(pipeline.id, run_id, conf=dict(params or {}), logical_date=ld)


def task_state(value: str | None) -> TaskState:
    if value is None or value in TASK_STATE_ALIASES:
        return TASK_STATE_ALIASES[value]
    return TaskState(value)


def mapped_tasks(pipeline: Pipeline) -> frozenset[str]:
    """The tasks of ``pipeline`` Airflow expands into instances (one task instance per map index)."""
    return frozenset(t.id for t in pipeline.tasks if t.mapped)


def task_results(tis: Iterable[Mapping[str, Any]], mapped: Collection[str] = ()) -> dict[str, TaskResult]:
    """meta's task results from Airflow task instances (``task_id``, ``map_index``, ``state``, ``try_number``).

    A task with instances of map index >= 0 gets them by map index; a task of ``mapped`` that never expanded (a
    single instance with map index -1: skipped for an empty list, upstream_failed, or decided before it could
    expand) gets ``instances={}`` (only the pipeline tells it from an unmapped task).
    """
    by_task: dict[str, dict[int, TaskResult]] = {}
    for ti in tis:
        index = ti.get("map_index")
        result = TaskResult(task_state(ti.get("state")), int(ti.get("try_number") or 0))
        by_task.setdefault(ti["task_id"], {})[UNMAPPED if index is None else int(index)] = result
    out: dict[str, TaskResult] = {}
    for task_id, instances in by_task.items():
        expanded = {i: r for i, r in instances.items() if i != UNMAPPED}
        if expanded:  # mapped, whether or not ``mapped`` says so
            out[task_id] = TaskResult.mapped(expanded)
        elif task_id not in mapped:
            out[task_id] = instances[UNMAPPED]
        else:
            unexpanded = instances[UNMAPPED]
            out[task_id] = TaskResult(unexpanded.state, unexpanded.attempts, instances={})
    return out


def read_result(client: AirflowClient, pipeline_id: str, run_id: str, mapped: Collection[str] = ()) -> RunResult:
    """The run's result; ``mapped`` names the pipeline's mapped tasks (``mapped_tasks``), reported by instance."""
    run = client.dag_run(pipeline_id, run_id)
    tasks = task_results(client.task_instances(pipeline_id, run_id), mapped)
    state = run["state"]
    return RunResult(
        pipeline=pipeline_id,
        state=RunState(state) if state in {s.value for s in RunState} else RunState.RUNNING,
        tasks=tasks,
        run_id=run_id,
        backend="airflow",
    )


def wait_for_runs(
    client: AirflowClient,
    runs: dict[str, str],
    timeout: float = 600,
    progress: Callable[[str], None] | None = None,
    pipelines: Mapping[str, Pipeline] | None = None,
) -> dict[str, RunResult]:
    """Poll ``{pipeline_id: run_id}`` until every run has finished; returns their results (mapped tasks of the
    given ``pipelines`` by instance)."""
    deadline = time.monotonic() + timeout
    pending = dict(runs)
    done: dict[str, RunResult] = {}
    while pending:
        for pipeline_id, run_id in list(pending.items()):
            if client.dag_run(pipeline_id, run_id)["state"] in FINISHED_RUN_STATES:
                pipeline = (pipelines or {}).get(pipeline_id)
                mapped = mapped_tasks(pipeline) if pipeline is not None else frozenset()
                done[pipeline_id] = read_result(client, pipeline_id, run_id, mapped)
                del pending[pipeline_id]
                if progress:
                    progress(f"{pipeline_id} {done[pipeline_id].state}")
        if not pending:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"Airflow runs not finished after {timeout}s: {pending}")
        time.sleep(1)
    return done
