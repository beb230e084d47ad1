"""The local runner's executor: bounded parallel execution of what the one scheduler decides.

``meta.semantics.scheduler.Scheduler`` decides (Airflow's trigger rules, branch skips, pass-by-pass cascades, the
run state); this loop only executes. Attempts run on a thread pool (``meta.execution.attempt.execute_task``),
bounded by ``parallelism``/``max_active_tasks`` and by pool slots; failed attempts with retries left wait in
``up_for_retry`` for ``delay_before_retry(settings, n, jitter key)`` (Airflow's delay, jitter included) without
holding a worker, and only a task's last attempt is reported to the scheduler as its completion.

Work is done per task instance, ``(task id, map index)``: an unmapped task has one (map index -1), a mapped task one
per element of its expansion (``meta.semantics.results.expand_map``), each retried on its own and bounded by the
task's ``max_active``. Results of successful attempts are kept in ``RunResults`` and handed to the tasks that refer
to them (``TaskInputs``).
"""

from __future__ import annotations

import contextvars
import heapq
import os
import queue
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meta.builtin.local.paths import log_path
from meta.execution.attempt import AttemptResult, TaskInputs, execute_task, terminate_active_tasks
from meta.semantics.context import RunContext
from meta.semantics.results import UNMAPPED, RunResults, expand_map
from meta.semantics.retries import delay_before_retry, retry_jitter_key
from meta.semantics.scheduler import Completion, Scheduler, SchedulerStep
from meta.spec.model import Pipeline, TaskSettings
from meta.spec.results import RunResult, TaskResult
from meta.spec.states import RunState, TaskState

Progress = Callable[[str], None]
POLL_SECONDS = 0.25
Instance = tuple[str, int]  # (task id, map index)


def instance_label(task_id: str, map_index: int) -> str:
    """How people see a task instance: ``square`` or ``square[3]``."""
    return task_id if map_index == UNMAPPED else f"{task_id}[{map_index}]"


@dataclass(frozen=True)
class AttemptRecord:
    task_id: str
    try_number: int
    state: TaskState  # the attempt's own outcome; a failed attempt followed by a retry shows up_for_retry
    started_at: datetime
    ended_at: datetime
    log_path: Path | None
    error: str | None = None
    map_index: int = UNMAPPED
    result: Any = None  # the result a successful attempt produced (None: none)

    @property
    def duration(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


@dataclass
class RunOutcome:
    """Everything the local runner knows about a finished run (the RunResult plus timings and logs)."""

    result: RunResult
    context: RunContext
    started_at: datetime
    ended_at: datetime
    attempts: list[AttemptRecord] = field(default_factory=list)
    log_dir: Path | None = None
    errors: dict[str, str] = field(default_factory=dict)  # task id -> last error message (of any instance)
    terminal_at: dict[str, datetime] = field(default_factory=dict)  # when each task reached its terminal state
    instance_errors: dict[Instance, str] = field(default_factory=dict)  # mapped instances' last error messages
    _by_task: dict[str, list[AttemptRecord]] | None = field(default=None, init=False, repr=False, compare=False)
    _indexed: int = field(default=0, init=False, repr=False, compare=False)

    def attempts_of(self, task_id: str, map_index: int | None = None) -> list[AttemptRecord]:
        """The attempts of a task (of all its instances), or of one instance when ``map_index`` is given."""
        if self._by_task is None or self._indexed != len(self.attempts):  # index once (and again if appended to)
            self._by_task, self._indexed = {}, len(self.attempts)
            for a in self.attempts:
                self._by_task.setdefault(a.task_id, []).append(a)
        mine = self._by_task.get(task_id, [])
        return mine if map_index is None else [a for a in mine if a.map_index == map_index]

    def last_duration(self, task_id: str) -> float | None:
        """Duration of the task's last attempt (Airflow's task-instance duration); None if it never ran."""
        mine = self.attempts_of(task_id)
        return mine[-1].duration if mine else None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RunLoop:
    """One run of one pipeline. Not reusable: create, then call ``execute()`` once."""

    def __init__(
        self,
        pipeline: Pipeline,
        ctx: RunContext,
        *,
        parallelism: int | None = None,
        home: Path | None = None,
        progress: Progress | None = None,
        pool_slots: Mapping[str, int] | None = None,
        on_retry: Callable[[str, int], None] | None = None,
    ):
        self.pipeline = pipeline
        self.on_retry = on_retry  # called with (task id, failed try number) when a retry is scheduled
        self.pool_slots = dict(pool_slots or {})  # pool name -> slots; pools not listed are unlimited
        self.pool_running: Counter[str] = Counter()
        self.task_running: Counter[str] = Counter()  # instances running per task, for max_active
        self.ctx = ctx
        limit = parallelism or os.cpu_count() or 1
        if pipeline.max_active_tasks:
            limit = min(limit, pipeline.max_active_tasks)
        self.limit = max(1, limit)
        self.home = home
        self.progress = progress
        self.tasks = {t.id: t for t in pipeline.tasks}
        self.settings: dict[str, TaskSettings] = {t.id: pipeline.settings_for(t) for t in pipeline.tasks}
        self.run_results = RunResults(pipeline)
        self.mapped_kwargs: dict[str, list[dict[str, Any]]] = {}  # mapped task -> kwargs of each instance
        self.scheduler = Scheduler(pipeline, self.settings, self._expand)  # decides; this class executes
        self.terminal_at: dict[str, datetime] = {}
        self.tries: Counter[Instance] = Counter()
        self.errors: dict[str, str] = {}
        self.instance_errors: dict[Instance, str] = {}
        self.attempts: list[AttemptRecord] = []
        self.ready: deque[Instance] = deque()
        self.retry_heap: list[tuple[float, int, Instance]] = []
        self.results: queue.SimpleQueue[tuple[Instance, int, AttemptResult, datetime, datetime]] = queue.SimpleQueue()
        self.running = 0

    # -- public -------------------------------------------------------------------------------------------

    def execute(self) -> RunOutcome:
        started = _utcnow()
        self._apply(self.scheduler.start())
        with ThreadPoolExecutor(max_workers=self.limit, thread_name_prefix=f"meta-{self.pipeline.id}") as pool:
            try:
                self._loop(pool)
            except BaseException:  # Ctrl-C: task processes run in their own sessions and would outlive us
                terminate_active_tasks()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        undecided = [t for t in self.tasks if t not in self.scheduler.states]
        if undecided:  # pragma: no cover - every trigger rule decides once all upstreams are terminal
            raise RuntimeError(f"internal error: tasks never reached a terminal state: {undecided}")
        return self._outcome(started)

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        while True:
            self._promote_due_retries()
            waiting_for_slot: list[Instance] = []
            while self.ready and self.running < self.limit:
                instance = self.ready.popleft()
                task_id = instance[0]
                if not self._slot_free(task_id):
                    waiting_for_slot.append(instance)  # keeps its place; others may still start
                    continue
                self.pool_running[self.settings[task_id].pool or ""] += 1
                self.task_running[task_id] += 1
                self.tries[instance] += 1
                self.running += 1
                self._say(instance, TaskState.RUNNING, self.tries[instance])
                # In a copy of this context: the run's import roots (meta.authoring.import_roots) and secret
                # providers are ContextVars, which plain pool threads would not see.
                pool.submit(contextvars.copy_context().run, self._attempt, instance, self.tries[instance])
            self.ready.extendleft(reversed(waiting_for_slot))
            if not self.running and not self.ready and not self.retry_heap:
                break
            # Never block longer than POLL_SECONDS: a signal (Ctrl-C) delivered to a worker thread only reaches
            # Python code once the main thread wakes up.
            wait = POLL_SECONDS
            if self.retry_heap:
                wait = min(wait, max(0.0, self.retry_heap[0][0] - time.monotonic()))
            if self.running == 0:
                time.sleep(wait)  # only retries are pending; nothing can arrive on the queue
                continue
            try:
                item = self.results.get(timeout=wait)
            except queue.Empty:
                continue
            done = [self._finish(*item)]
            while True:  # drain whatever else finished meanwhile: one scheduling pass sees them all
                try:
                    done.append(self._finish(*self.results.get_nowait()))
                except queue.Empty:
                    break
            completions = [c for c in done if c is not None]
            if completions:
                self._apply(self.scheduler.complete_many(completions))

    def _slot_free(self, task_id: str) -> bool:
        """A pool slot, and below the task's ``max_active``, for one more instance of ``task_id``."""
        task_pool = self.settings[task_id].pool
        if task_pool in self.pool_slots and self.pool_running[task_pool] >= self.pool_slots[task_pool]:
            return False
        limit = self.tasks[task_id].max_active
        return limit is None or self.task_running[task_id] < limit

    # -- worker side --------------------------------------------------------------------------------------

    def _log_path(self, instance: Instance, try_number: int) -> Path | None:
        if self.home is None:
            return None
        return log_path(self.home, self.pipeline.id, self.ctx.run_id, instance[0], try_number, instance[1])

    def _inputs(self, instance: Instance) -> TaskInputs:
        task_id, map_index = instance
        task = self.tasks[task_id]
        mapped = self.mapped_kwargs[task_id][map_index] if map_index != UNMAPPED else None
        return TaskInputs(
            self.run_results.inputs_for(task), map_index, mapped, self.run_results.must_return_a_list(task)
        )

    def _attempt(self, instance: Instance, try_number: int) -> None:
        started = _utcnow()
        try:
            task = self.tasks[instance[0]]
            path = self._log_path(instance, try_number)
            result = execute_task(self.pipeline, task, self.ctx, try_number, path, self._inputs(instance))
        except BaseException as exc:  # a bug in meta itself must not hang the run
            result = AttemptResult(TaskState.FAILED, error=f"internal error running the task: {exc!r}")
        self.results.put((instance, try_number, result, started, _utcnow()))

    # -- scheduler side -----------------------------------------------------------------------------------

    def _expand(self, task_id: str) -> int:
        """The scheduler's question for a mapped task that may run: how many instances (raises ExpansionError)."""
        kwargs = expand_map(self.tasks[task_id], self.ctx.params, self.run_results.value_of)
        self.mapped_kwargs[task_id] = kwargs
        return len(kwargs)

    def _finish(
        self, instance: Instance, try_number: int, result: AttemptResult, started: datetime, ended: datetime
    ) -> Completion | None:
        """Book one attempt; its instance's completion for the scheduler, or None when a retry is due."""
        task_id, map_index = instance
        self.running -= 1
        self.pool_running[self.settings[task_id].pool or ""] -= 1
        self.task_running[task_id] -= 1
        if result.error:
            self.errors[task_id] = result.error
            if map_index != UNMAPPED:
                self.instance_errors[instance] = result.error
        path = self._log_path(instance, try_number)
        settings = self.settings[task_id]
        duration = (ended - started).total_seconds()
        if result.state == TaskState.FAILED and try_number <= settings.retries:
            self.attempts.append(
                AttemptRecord(
                    task_id, try_number, TaskState.UP_FOR_RETRY, started, ended, path, result.error, map_index
                )
            )
            key = retry_jitter_key(self.pipeline.id, task_id, self.ctx.logical_date, try_number)
            delay = delay_before_retry(settings, try_number, key).total_seconds()
            heapq.heappush(self.retry_heap, (time.monotonic() + delay, len(self.attempts), instance))
            self._say(instance, TaskState.UP_FOR_RETRY, try_number, duration, f"retry in {delay:g}s")
            if self.on_retry is not None:
                self.on_retry(task_id, try_number)
            return None
        if result.state == TaskState.SUCCESS and result.has_result:
            self.run_results.put(task_id, map_index, result.result)
        self.attempts.append(
            AttemptRecord(
                task_id,
                try_number,
                result.state,
                started,
                ended,
                path,
                result.error,
                map_index,
                result.result if result.has_result else None,
            )
        )
        self.terminal_at[task_id] = ended
        self._say(instance, result.state, try_number, duration, result.error)
        return Completion(task_id, result.state, result.follow, map_index)

    def _apply(self, step: SchedulerStep) -> None:
        """Do what the scheduler decided: queue the tasks to start, record the ones decided without running."""
        if step.decided:
            now = _utcnow()
            for decided in step.decided:
                self.terminal_at[decided.task_id] = now
                self._say((decided.task_id, UNMAPPED), decided.state, 0, note=decided.reason)
        self.ready.extend((task_id, UNMAPPED) for task_id in step.start)
        self.ready.extend(step.start_mapped)

    def _promote_due_retries(self) -> None:
        now = time.monotonic()
        while self.retry_heap and self.retry_heap[0][0] <= now:
            _, _, instance = heapq.heappop(self.retry_heap)
            self.ready.append(instance)

    def _say(
        self, instance: Instance, state: TaskState, attempt: int, duration: float | None = None, note: str | None = None
    ) -> None:
        if self.progress is None:
            return
        line = f"{instance_label(*instance):<28} {state!s:<16} attempt {attempt}"
        if duration is not None:
            line += f"  {duration:7.2f}s"
        if note:
            line += f"  {note}"
        self.progress(line)

    def _task_result(self, task_id: str) -> TaskResult:
        state = self.scheduler.states[task_id]
        if not self.tasks[task_id].mapped:
            return TaskResult(state, self.tries[(task_id, UNMAPPED)])
        instances = self.scheduler.instance_states(task_id) or {}
        return TaskResult.mapped(
            {i: TaskResult(s or TaskState.FAILED, self.tries[(task_id, i)]) for i, s in instances.items()}, state
        )

    def _outcome(self, started: datetime) -> RunOutcome:
        state = self.scheduler.run_state()
        result = RunResult(
            pipeline=self.pipeline.id,
            state=state if state != RunState.RUNNING else RunState.FAILED,
            tasks={t: self._task_result(t) for t in self.tasks},
            run_id=self.ctx.run_id,
            backend=self.ctx.backend,
        )
        log_dir = self.home / "logs" / self.pipeline.id / self.ctx.run_id if self.home is not None else None
        return RunOutcome(
            result,
            self.ctx,
            started,
            _utcnow(),
            self.attempts,
            log_dir,
            dict(self.errors),
            dict(self.terminal_at),
            dict(self.instance_errors),
        )
