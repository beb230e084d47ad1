"""Drive one pipeline run inside a Prefect flow with Airflow's semantics.

The flow function executes what meta's one scheduler (``meta.Scheduler``, meta/semantics/scheduler.py) decides: it
submits a Prefect task for every meta task the scheduler starts, reports each finished task run back to it, and
gives tasks decided without running (skipped / upstream_failed, with the scheduler's reason) a task run in a named
state (see ``states``). Prefect's own retries run the attempts, so only a task run's final state is a completion.
The flow's final state is the scheduler's run state (Airflow's leaf rule), because Prefect by default does not fail
a flow for a failed task it does not return.

Results and mapping: each successful attempt's result is kept in the driver (``meta.RunResults``; the tasks run in
this process's threads) and handed to the tasks that refer to it, so results need no Prefect result storage. A
mapped task expands inside the driver (``meta.expand_map``, asked by the scheduler) into one Prefect task run per
instance, named ``<task>[<map index>]`` and retried on its own, as Prefect's ``Task.map`` makes one run per element.
"""

from __future__ import annotations

import queue
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import Task, get_run_logger
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.futures import PrefectFuture
from prefect.states import Completed, Failed, State

from meta import (
    UNMAPPED,
    BranchAction,
    Completion,
    Pipeline,
    RunContext,
    RunResults,
    RunState,
    Scheduler,
    SchedulerStep,
    TaskFailed,
    TaskInputs,
    TaskResult,
    TaskState,
    execute_task,
    expand_map,
    resolve_params,
)
from meta import Task as MetaTask
from meta_prefect import events, hooks, states
from meta_prefect.retries import retry_delays
from meta_prefect.tasks import prefect_secrets

# Airflow's default max_active_tasks per DAG; Prefect's thread pool is otherwise unbounded.
DEFAULT_MAX_WORKERS = 16


Instance = tuple[str, int]  # (task id, map index)


def task_run_name(task_id: str, map_index: int) -> str:
    """The Prefect task (and task run) of a meta task instance: ``load``, or ``square[3]`` for a mapped task's
    instance. Prefect creates a task run as ``<task name>-<key>`` and renames it when it starts, so the index is in the
    task's own name too: every event of the run carries it (a tag would do, but Prefect treats every tag as a
    concurrency-limit name to look up, which for 1,000 distinct tags fails runs)."""
    return task_id if map_index == UNMAPPED else f"{task_id}[{map_index}]"


def instance_of(name: str) -> tuple[str, int]:
    """(task id, map index) from a task run's name, whichever of ``square[3]`` / ``square[3]-a1b`` it has now."""
    match = _INSTANCE_NAME.fullmatch(name)
    return (match.group(1), int(match.group(2))) if match else (name, UNMAPPED)


_INSTANCE_NAME = re.compile(r"(.+)\[(\d+)\](?:-[^\[\]]*)?")


@dataclass
class Outcome:
    """What a run ended in, in Airflow's terms (the flow's return state carries the same summary as text)."""

    run_id: str
    states: dict[str, TaskState] = field(default_factory=dict)  # per task (a mapped task's summary state)
    attempts: dict[Instance, int] = field(default_factory=dict)  # per task instance
    state: RunState = RunState.RUNNING
    tasks: dict[str, TaskResult] = field(default_factory=dict)  # the run's tasks as meta reports them, at the end


class Driver:
    def __init__(self, pipeline: Pipeline, ctx: RunContext, progress: Callable[[str], None] | None = None):
        self.pipeline = pipeline
        self.ctx = ctx
        self.progress = progress
        self.outcome = Outcome(run_id=ctx.run_id)
        self._tasks = {t.id: t for t in pipeline.tasks}
        self._results = RunResults(pipeline)
        self._mapped_kwargs: dict[str, list[dict[str, Any]]] = {}
        self._scheduler = Scheduler(pipeline, expand=self._expand)  # decides; the driver executes
        self._log_dir = Path(tempfile.mkdtemp(prefix=f"meta-prefect-{pipeline.id}-"))

    # -------------------------------------------------------------------------------------------- scheduling

    def run(self) -> Outcome:
        self._finished: queue.Queue[PrefectFuture[Any]] = queue.Queue()
        self._running: dict[Any, Instance] = {}
        self._markers: list[PrefectFuture[Any]] = []
        try:
            self._ensure_concurrency_limits()
            self._apply(self._scheduler.start())
            while self._running:
                done = [self._finished.get()]
                while True:  # everything that finished meanwhile shares one scheduling pass
                    try:
                        done.append(self._finished.get_nowait())
                    except queue.Empty:
                        break
                self._apply(self._scheduler.complete_many([self._completion(future) for future in done]))
            for marker in self._markers:
                marker.wait()
        finally:
            shutil.rmtree(self._log_dir, ignore_errors=True)
        self.outcome.state = self._scheduler.run_state()
        self.outcome.tasks = {t: self._task_result(t) for t in self.pipeline.task_ids}
        return self.outcome

    def _task_result(self, task_id: str) -> TaskResult:
        state = self._scheduler.states.get(task_id, TaskState.FAILED)
        if not self._tasks[task_id].mapped:
            return TaskResult(state, self.outcome.attempts.get((task_id, UNMAPPED), 0))
        instances = self._scheduler.instance_states(task_id) or {}
        return TaskResult.mapped(
            {
                i: TaskResult(s or TaskState.FAILED, self.outcome.attempts.get((task_id, i), 0))
                for i, s in instances.items()
            },
            state,
        )

    def _expand(self, task_id: str) -> int:
        """The scheduler's question for a mapped task that may run: how many instances (raises ExpansionError)."""
        kwargs = expand_map(self._tasks[task_id], self.ctx.params, self._results.value_of)
        self._mapped_kwargs[task_id] = kwargs
        return len(kwargs)

    def _completion(self, future: PrefectFuture[Any]) -> Completion:
        task_id, map_index = self._running.pop(future.task_run_id)
        future.wait()  # sets the future's final state from the worker thread's result
        state = states.of(future.state) or TaskState.FAILED
        self._record(task_id, state, map_index)
        follow = None
        if state == TaskState.SUCCESS and isinstance(self._tasks[task_id].action, BranchAction):
            follow = tuple(future.result() or ())  # a branch's task run returns the ids it follows
        return Completion(task_id, state, follow, map_index)

    def _apply(self, step: SchedulerStep) -> None:
        """Submit the task instances the scheduler starts; give the ones it decided a task run in their state."""
        for instance in [(task_id, UNMAPPED) for task_id in step.start] + step.start_mapped:
            future = self._prefect_task(self._tasks[instance[0]], instance[1]).submit()
            self._running[future.task_run_id] = instance
            future.add_done_callback(self._finished.put)
        for decided in step.decided:
            task = self._tasks[decided.task_id]
            final = states.skipped if decided.state == TaskState.SKIPPED else states.upstream_failed
            self._markers.append(self._marker(task, final, decided.reason).submit())
            self._record(decided.task_id, decided.state, UNMAPPED, attempts=0)

    def _ensure_concurrency_limits(self) -> None:
        """``max_active``: Prefect bounds task runs tagged T by the global concurrency limit named ``tag:T``."""
        limited = {max_active_tag(self.pipeline.id, t.id): t.max_active for t in self.pipeline.tasks if t.max_active}
        if not limited:
            return
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            for tag, limit in limited.items():
                client.upsert_global_concurrency_limit_by_name(f"tag:{tag}", limit)

    def _record(self, task_id: str, state: TaskState, map_index: int, attempts: int | None = None) -> None:
        if map_index == UNMAPPED:
            self.outcome.states[task_id] = state
        if attempts is not None:
            self.outcome.attempts[(task_id, map_index)] = attempts
        if self.progress is not None:
            self.progress(f"{task_run_name(task_id, map_index)}: {state}")

    # -------------------------------------------------------------------------------------------- prefect tasks

    def _prefect_task(self, task: MetaTask, map_index: int) -> Task[[], Any]:
        settings = self.pipeline.settings_for(task)
        delays = retry_delays(settings, self.pipeline.id, task.id, self.ctx.logical_date)

        def attempt() -> Any:
            return self._attempt(task, map_index)

        # A distinct qualname gives every meta task its own Prefect task key.
        attempt.__qualname__ = f"{self.pipeline.id}.{task.id}"
        return Task(
            fn=attempt,
            name=task_run_name(task.id, map_index),
            task_run_name=task_run_name(task.id, map_index),
            description=task.description,
            retries=settings.retries,
            retry_delay_seconds=delays or 0,
            tags=_task_tags(self.pipeline.id, task, settings.pool),
            cache_policy=NO_CACHE,
            persist_result=False,
            on_running=hooks.task_retry_hooks(self.pipeline, self.ctx.run_id),
        )

    def _marker(self, task: MetaTask, final: Callable[[str], State[Any]], message: str) -> Task[[], Any]:
        def decided() -> State[Any]:
            # Built inside the task run: the server orders states by timestamp, so it must be newer than Running.
            return final(message)

        decided.__qualname__ = f"{self.pipeline.id}.{task.id}"
        return Task(
            fn=decided,
            name=task.id,
            task_run_name=task.id,
            tags={states.NOT_RUN_TAG},
            cache_policy=NO_CACHE,
            persist_result=False,
        )

    def _attempt(self, task: MetaTask, map_index: int) -> Any:
        """One attempt inside a Prefect task run; Prefect's retries call it again with the next run count."""
        run_ctx = TaskRunContext.get()
        try_number = run_ctx.task_run.run_count if run_ctx is not None else 1
        self.outcome.attempts[(task.id, map_index)] = try_number
        log_path = self._log_dir / f"{task_run_name(task.id, map_index)}.{try_number}.log"
        mapped = self._mapped_kwargs[task.id][map_index] if map_index != UNMAPPED else None
        inputs = TaskInputs(self._results.inputs_for(task), map_index, mapped, self._results.must_return_a_list(task))
        # ${secret:NAME} may name a Prefect Secret block while the task runs (then env vars and files).
        with prefect_secrets():
            result = execute_task(self.pipeline, task, self.ctx, try_number, log_path, inputs)
        _forward_log(log_path)
        if result.state == TaskState.SUCCESS:
            if result.has_result:  # before the task run completes, so a downstream task always finds it
                self._results.put(task.id, map_index, result.result)
            events.emit_outputs(self.pipeline, task, self.ctx)
            return list(result.follow) if result.follow is not None else None
        if result.state == TaskState.SKIPPED:
            return states.skipped(result.error)
        raise TaskFailed(result.error or f"task {task.id!r} failed")


def max_active_tag(pipeline_id: str, task_id: str) -> str:
    return f"meta-max-active:{pipeline_id}.{task_id}"


def _task_tags(pipeline_id: str, task: MetaTask, pool: str | None) -> set[str]:
    # Airflow pools become Prefect tags: a tag concurrency limit named like the pool bounds them (docs/prefect.md).
    tags = {f"pool:{pool}"} if pool else set()
    if task.max_active:
        tags.add(max_active_tag(pipeline_id, task.id))
    return tags


def _forward_log(path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    if text:
        get_run_logger().info(text.rstrip("\n"))


def make_context(
    pipeline: Pipeline, params: dict[str, Any], run_id: str | None = None, logical_date: datetime | None = None
) -> RunContext:
    """The run context inside a flow run: explicit values, else the flow run's id and scheduled time."""
    from prefect.runtime import flow_run

    if logical_date is None:
        scheduled = flow_run.scheduled_start_time
        logical_date = scheduled if isinstance(scheduled, datetime) else datetime.now(UTC)
    if logical_date.tzinfo is None:
        logical_date = logical_date.replace(tzinfo=UTC)
    if run_id is None:
        run_id = f"prefect__{flow_run.id}" if flow_run.id else f"prefect__{logical_date.isoformat()}"
    return RunContext(pipeline.id, run_id, logical_date, params=params, backend="prefect")


def run_pipeline(
    pipeline: Pipeline,
    params: dict[str, Any],
    *,
    run_id: str | None = None,
    logical_date: datetime | None = None,
    observer: Callable[[Outcome], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> State[Any]:
    """The body of every meta flow (built by ``to_flow`` or generated by codegen): run, then return the run state."""
    values = resolve_params(pipeline, params)
    ctx = make_context(pipeline, values, run_id, logical_date)
    outcome = Driver(pipeline, ctx, progress).run()
    if observer is not None:
        observer(outcome)
    summary = ", ".join(f"{t}={s}" for t, s in outcome.states.items())
    if outcome.state == RunState.FAILED:
        bad = [t for t in pipeline.leaves() if outcome.states.get(t) in (TaskState.FAILED, TaskState.UPSTREAM_FAILED)]
        return Failed(message=f"leaf task(s) {bad} failed or upstream_failed; tasks: {summary}")
    return Completed(message=f"tasks: {summary}")
