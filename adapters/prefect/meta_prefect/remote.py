"""Read a flow run of a meta deployment back from the REST API, in Airflow's state names."""

from __future__ import annotations

import time

from meta import MetaError, Pipeline, RunResult, TaskResult, TaskState
from meta_prefect import states
from meta_prefect.client import PrefectClient


def result_of(client: PrefectClient, pipeline: Pipeline, flow_run_id: str) -> RunResult:
    """The run as meta reports it; tasks without a task run yet show as scheduled (0 attempts)."""
    flow_run = client.read_flow_run(flow_run_id)
    state = flow_run.get("state") or {}
    by_name = {tr["name"]: tr for tr in client.task_runs(flow_run_id)}
    tasks = {}
    for task_id in pipeline.task_ids:
        run = by_name.get(task_id)
        if run is None:
            tasks[task_id] = TaskResult(TaskState.SCHEDULED, 0)
            continue
        task_state = run.get("state") or {}
        mapped = states.task_state(task_state.get("type"), task_state.get("name")) or TaskState.SCHEDULED
        attempts = 0 if states.NOT_RUN_TAG in (run.get("tags") or []) else int(run.get("run_count") or 0)
        tasks[task_id] = TaskResult(mapped, attempts)
    return RunResult(
        pipeline.id, states.run_state(state.get("type")), tasks, run_id=f"prefect__{flow_run_id}", backend="prefect"
    )


def wait_for(
    client: PrefectClient, pipelines: dict[str, Pipeline], timeout: float = 300.0, poll: float = 1.0
) -> dict[str, RunResult]:
    """Poll flow runs (flow_run_id -> pipeline) until each is final and all its task runs are recorded.

    Prefect records task runs from events, asynchronously: a flow run can be final a moment before its last task
    runs appear, so a run counts as done only when every task has a terminal state.
    """
    deadline = time.monotonic() + timeout
    done: dict[str, RunResult] = {}
    while True:
        for flow_run_id, pipeline in pipelines.items():
            if flow_run_id in done:
                continue
            flow_state = (client.read_flow_run(flow_run_id).get("state") or {}).get("type")
            if not states.is_final(flow_state):
                continue
            result = result_of(client, pipeline, flow_run_id)
            if all(t.state.is_terminal for t in result.tasks.values()) or flow_state in ("CRASHED", "CANCELLED"):
                done[flow_run_id] = result
        if len(done) == len(pipelines):
            return done
        if time.monotonic() > deadline:
            waiting = sorted(p.id for f, p in pipelines.items() if f not in done)
            raise MetaError(f"Prefect flow runs still not finished after {timeout:g}s: {waiting}")
        time.sleep(poll)
