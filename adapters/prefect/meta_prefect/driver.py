"""Drive one pipeline run inside a Prefect flow with Airflow's semantics.

The flow function is the scheduler: it submits a Prefect task for every meta task whose trigger rule says RUN, and
re-evaluates the waiting tasks each time a task run finishes (``meta.semantics.rules.evaluate_trigger_rule``, which decides
early on partial information exactly like Airflow's TriggerRuleDep). Tasks decided without running get a task run in
a named state (see ``states``). The flow's final state is computed from the leaf tasks (``meta.semantics.rules.run_state``),
because Prefect by default does not fail a flow for a failed task it does not return.
"""

from __future__ import annotations

import queue
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterable
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
    BranchAction,
    Decision,
    Pipeline,
    RunContext,
    RunState,
    TaskFailed,
    TaskState,
    evaluate_trigger_rule,
    execute_task,
    resolve_params,
    run_state,
    topological_order,
)
from meta import Task as MetaTask
from meta_prefect import events, hooks, states
from meta_prefect.retries import retry_delays
from meta_prefect.tasks import prefect_secrets

# Airflow's default max_active_tasks per DAG; Prefect's thread pool is otherwise unbounded.
DEFAULT_MAX_WORKERS = 16


@dataclass
class Outcome:
    """What a run ended in, in Airflow's terms (the flow's return state carries the same summary as text)."""

    run_id: str
    states: dict[str, TaskState] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    state: RunState = RunState.RUNNING


def branch_skips(pipeline: Pipeline, branch_id: str, follow: tuple[str, ...]) -> list[str]:
    """Airflow's skip_all_except: direct downstream tasks neither followed nor downstream of a followed task."""
    keep = set(follow)
    frontier = list(follow)
    while frontier:
        for child in pipeline.downstream_of(frontier.pop()):
            if child not in keep:
                keep.add(child)
                frontier.append(child)
    return [t for t in pipeline.downstream_of(branch_id) if t not in keep]


class Driver:
    def __init__(self, pipeline: Pipeline, ctx: RunContext, progress: Callable[[str], None] | None = None):
        self.pipeline = pipeline
        self.ctx = ctx
        self.progress = progress
        self.outcome = Outcome(run_id=ctx.run_id)
        self._order = topological_order({t.id: t.upstream for t in pipeline.tasks})
        self._tasks = {t.id: t for t in pipeline.tasks}
        self._rules = {t.id: pipeline.settings_for(t).trigger_rule for t in pipeline.tasks}
        self._downstream: dict[str, list[str]] = {t.id: [] for t in pipeline.tasks}
        for t in pipeline.tasks:
            for up in t.upstream:
                self._downstream[up].append(t.id)
        self._log_dir = Path(tempfile.mkdtemp(prefix=f"meta-prefect-{pipeline.id}-"))

    # -------------------------------------------------------------------------------------------- scheduling

    def run(self) -> Outcome:
        self._pending = set(self._order)
        self._finished: queue.Queue[PrefectFuture[Any]] = queue.Queue()
        self._running: dict[Any, str] = {}
        self._markers: list[PrefectFuture[Any]] = []
        self._forced: dict[str, str] = {}  # task id -> why a branch skips it
        try:
            self._ensure_concurrency_limits()
            self._schedule(self._order)
            while self._running:
                future = self._finished.get()
                task_id = self._running.pop(future.task_run_id)
                future.wait()  # sets the future's final state from the worker thread's result
                state = states.of(future.state) or TaskState.FAILED
                self._record(task_id, state)
                if state == TaskState.SUCCESS and isinstance(self._tasks[task_id].action, BranchAction):
                    follow = tuple(future.result() or ())
                    for skipped in branch_skips(self.pipeline, task_id, follow):
                        self._forced.setdefault(
                            skipped, f"not followed by branch {task_id!r} (it chose {list(follow)})"
                        )
                self._schedule(self._downstream[task_id])
            for marker in self._markers:
                marker.wait()
        finally:
            shutil.rmtree(self._log_dir, ignore_errors=True)
        leaves = [self.outcome.states.get(t) for t in self.pipeline.leaves()]
        self.outcome.state = run_state(leaves)
        return self.outcome

    def _schedule(self, candidates: Iterable[str]) -> None:
        """Start or decide each candidate that can be; a decision without running re-examines its downstream.

        Only tasks whose upstream changed are examined, so a run costs O(edges) rule evaluations, not O(tasks^2).
        """
        work = deque(candidates)
        while work:
            task_id = work.popleft()
            if task_id not in self._pending:
                continue
            task = self._tasks[task_id]
            rule = self._rules[task_id]
            if task_id in self._forced:
                decision, why = Decision.SKIP, self._forced[task_id]
            else:
                decision = evaluate_trigger_rule(rule, [self.outcome.states.get(u) for u in task.upstream])
                why = f"skipped by trigger rule {rule}" if decision == Decision.SKIP else f"upstream failed ({rule})"
            if decision == Decision.WAIT:
                continue
            self._pending.discard(task_id)
            if decision == Decision.RUN:
                future = self._prefect_task(task).submit()
                self._running[future.task_run_id] = task_id
                future.add_done_callback(self._finished.put)
                continue
            skip = decision == Decision.SKIP
            self._markers.append(self._marker(task, states.skipped if skip else states.upstream_failed, why).submit())
            self._record(task_id, TaskState.SKIPPED if skip else TaskState.UPSTREAM_FAILED, attempts=0)
            work.extend(self._downstream[task_id])

    def _ensure_concurrency_limits(self) -> None:
        """``max_active``: Prefect bounds task runs tagged T by the global concurrency limit named ``tag:T``."""
        limited = {max_active_tag(self.pipeline.id, t.id): t.max_active for t in self.pipeline.tasks if t.max_active}
        if not limited:
            return
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            for tag, limit in limited.items():
                client.upsert_global_concurrency_limit_by_name(f"tag:{tag}", limit)

    def _record(self, task_id: str, state: TaskState, attempts: int | None = None) -> None:
        self.outcome.states[task_id] = state
        if attempts is not None:
            self.outcome.attempts[task_id] = attempts
        if self.progress is not None:
            self.progress(f"{task_id}: {state}")

    # -------------------------------------------------------------------------------------------- prefect tasks

    def _prefect_task(self, task: MetaTask) -> Task[[], Any]:
        settings = self.pipeline.settings_for(task)
        delays = retry_delays(settings, self.pipeline.id, task.id, self.ctx.logical_date)

        def attempt() -> Any:
            return self._attempt(task)

        # A distinct qualname gives every meta task its own Prefect task key.
        attempt.__qualname__ = f"{self.pipeline.id}.{task.id}"
        return Task(
            fn=attempt,
            name=task.id,
            task_run_name=task.id,
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

    def _attempt(self, task: MetaTask) -> Any:
        """One attempt inside a Prefect task run; Prefect's retries call it again with the next run count."""
        run_ctx = TaskRunContext.get()
        try_number = run_ctx.task_run.run_count if run_ctx is not None else 1
        self.outcome.attempts[task.id] = try_number
        log_path = self._log_dir / f"{task.id}.{try_number}.log"
        # ${secret:NAME} may name a Prefect Secret block while the task runs (then env vars and files).
        with prefect_secrets():
            result = execute_task(self.pipeline, task, self.ctx, try_number, log_path)
        _forward_log(log_path)
        if result.state == TaskState.SUCCESS:
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
