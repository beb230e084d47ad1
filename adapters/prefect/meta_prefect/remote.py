"""Read a flow run of a meta deployment back from the REST API, in Airflow's state names."""

from __future__ import annotations

import time

from meta import UNMAPPED, MetaError, Pipeline, RunResult, TaskResult, TaskState
from meta_prefect import states
from meta_prefect.client import PrefectClient
from meta_prefect.driver import instance_of


def result_of(client: PrefectClient, pipeline: Pipeline, flow_run_id: str) -> RunResult:
    """The run as meta reports it; tasks without a task run yet show as scheduled (0 attempts)."""
    flow_run = client.read_flow_run(flow_run_id)
    state = flow_run.get("state") or {}
    runs: dict[tuple[str, int], dict] = {}
    for tr in client.task_runs(flow_run_id):
        runs[instance_of(str(tr.get("name") or ""))] = tr
    tasks = {}
    for task_id in pipeline.task_ids:
        run = runs.get((task_id, UNMAPPED))
        if pipeline.task(task_id).mapped:
            instances = {i: _task_result(tr) for (t, i), tr in runs.items() if t == task_id and i != UNMAPPED}
            # Decided before it could expand (skipped for an empty list, upstream_failed): one marker run, no index.
            decided = _task_result(run).state if run is not None else None
            tasks[task_id] = TaskResult.mapped(instances, decided)
        else:
            tasks[task_id] = _task_result(run) if run is not None else TaskResult(TaskState.SCHEDULED, 0)
    return RunResult(
        pipeline.id, states.run_state(state.get("type")), tasks, run_id=f"prefect__{flow_run_id}", backend="prefect"
    )


def _task_result(run: dict) -> TaskResult:
    task_state = run.get("state") or {}
    state = states.task_state(task_state.get("type"), task_state.get("name")) or TaskState.SCHEDULED
    attempts = 0 if states.NOT_RUN_TAG in (run.get("tags") or []) else int(run.get("run_count") or 0)
    return TaskResult(state, attempts)


def wait_for(
    client: PrefectClient, pipelines: dict[str, Pipeline], timeout: float = 300.0, poll: float = 1.0
) -> dict[str, RunResult]:
    """Poll flow runs (flow_run_id -> pipeline) until each is final and all its task runs are recorded.

    Prefect records task runs from events, asynchronously: a flow run can be final a moment before its last task
    runs appear, so a run counts as done only when every task has a terminal state.
    """
    deadline = time.monotonic() + timeout
    done: dict[str, RunResult] = {}
    last_read: dict[str, RunResult] = {}
    while True:
        for flow_run_id, pipeline in pipelines.items():
            if flow_run_id in done:
                continue
            flow_state = (client.read_flow_run(flow_run_id).get("state") or {}).get("type")
            if not states.is_final(flow_state):
                continue
            result = result_of(client, pipeline, flow_run_id)
            # A mapped task's number of instances is known only from the task runs recorded so far: a final read
            # must also equal the one before it.
            settled = not any(t.mapped for t in pipeline.tasks) or last_read.get(flow_run_id) == result
            last_read[flow_run_id] = result
            terminal = all(t.state.is_terminal for t in result.tasks.values())
            if (terminal and settled) or flow_state in ("CRASHED", "CANCELLED"):
                done[flow_run_id] = result
        if len(done) == len(pipelines):
            return done
        if time.monotonic() > deadline:
            waiting = sorted(p.id for f, p in pipelines.items() if f not in done)
            raise MetaError(f"Prefect flow runs still not finished after {timeout:g}s: {waiting}")
        time.sleep(poll)
