"""The local runner's executor: bounded parallel execution of what the one scheduler decides.

``meta.semantics.scheduler.Scheduler`` decides (Airflow's trigger rules, branch skips, pass-by-pass cascades, the
run state); this loop only executes. Attempts run on a thread pool (``meta.execution.attempt.execute_task``),
bounded by ``parallelism``/``max_active_tasks`` and by pool slots; failed attempts with retries left wait in
``up_for_retry`` for ``delay_before_retry(settings, n, jitter key)`` (Airflow's delay, jitter included) without
holding a worker, and only a task's last attempt is reported to the scheduler as its completion.
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

from meta.builtin.local.paths import log_path
from meta.execution.attempt import AttemptResult, execute_task, terminate_active_tasks
from meta.semantics.context import RunContext
from meta.semantics.retries import delay_before_retry, retry_jitter_key
from meta.semantics.scheduler import Completion, Scheduler, SchedulerStep
from meta.spec.model import Pipeline, TaskSettings
from meta.spec.results import RunResult, TaskResult
from meta.spec.states import RunState, TaskState

Progress = Callable[[str], None]
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class AttemptRecord:
    task_id: str
    try_number: int
    state: TaskState  # the attempt's own outcome; a failed attempt followed by a retry shows up_for_retry
    started_at: datetime
    ended_at: datetime
    log_path: Path | None
    error: str | None = None

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
    errors: dict[str, str] = field(default_factory=dict)  # task id -> last error message
    terminal_at: dict[str, datetime] = field(default_factory=dict)  # when each task reached its terminal state
    _by_task: dict[str, list[AttemptRecord]] | None = field(default=None, init=False, repr=False, compare=False)
    _indexed: int = field(default=0, init=False, repr=False, compare=False)

    def attempts_of(self, task_id: str) -> list[AttemptRecord]:
        if self._by_task is None or self._indexed != len(self.attempts):  # index once (and again if appended to)
            self._by_task, self._indexed = {}, len(self.attempts)
            for a in self.attempts:
                self._by_task.setdefault(a.task_id, []).append(a)
        return self._by_task.get(task_id, [])

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
        self.ctx = ctx
        limit = parallelism or os.cpu_count() or 1
        if pipeline.max_active_tasks:
            limit = min(limit, pipeline.max_active_tasks)
        self.limit = max(1, limit)
        self.home = home
        self.progress = progress
        self.tasks = {t.id: t for t in pipeline.tasks}
        self.settings: dict[str, TaskSettings] = {t.id: pipeline.settings_for(t) for t in pipeline.tasks}
        self.scheduler = Scheduler(pipeline, self.settings)  # decides; this class executes
        self.terminal_at: dict[str, datetime] = {}
        self.tries: dict[str, int] = dict.fromkeys(self.tasks, 0)
        self.errors: dict[str, str] = {}
        self.attempts: list[AttemptRecord] = []
        self.ready: deque[str] = deque()
        self.retry_heap: list[tuple[float, int, str]] = []
        self.results: queue.SimpleQueue[tuple[str, int, AttemptResult, datetime, datetime]] = queue.SimpleQueue()
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
            waiting_for_slot: list[str] = []
            while self.ready and self.running < self.limit:
                task_id = self.ready.popleft()
                task_pool = self.settings[task_id].pool
                if task_pool in self.pool_slots and self.pool_running[task_pool] >= self.pool_slots[task_pool]:
                    waiting_for_slot.append(task_id)  # keeps its place; others may still start
                    continue
                self.pool_running[task_pool or ""] += 1
                self.tries[task_id] += 1
                self.running += 1
                self._say(task_id, TaskState.RUNNING, self.tries[task_id])
                # In a copy of this context: the run's import roots (meta.authoring.import_roots) and secret
                # providers are ContextVars, which plain pool threads would not see.
                pool.submit(contextvars.copy_context().run, self._attempt, task_id, self.tries[task_id])
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

    # -- worker side --------------------------------------------------------------------------------------

    def _attempt(self, task_id: str, try_number: int) -> None:
        started = _utcnow()
        path = (
            log_path(self.home, self.pipeline.id, self.ctx.run_id, task_id, try_number)
            if self.home is not None
            else None
        )
        try:
            result = execute_task(self.pipeline, self.tasks[task_id], self.ctx, try_number, path)
        except BaseException as exc:  # a bug in meta itself must not hang the run
            result = AttemptResult(TaskState.FAILED, error=f"internal error running the task: {exc!r}")
        self.results.put((task_id, try_number, result, started, _utcnow()))

    # -- scheduler side -----------------------------------------------------------------------------------

    def _finish(
        self, task_id: str, try_number: int, result: AttemptResult, started: datetime, ended: datetime
    ) -> Completion | None:
        """Book one attempt; its task's completion for the scheduler, or None when a retry is due."""
        self.running -= 1
        self.pool_running[self.settings[task_id].pool or ""] -= 1
        if result.error:
            self.errors[task_id] = result.error
        path = (
            log_path(self.home, self.pipeline.id, self.ctx.run_id, task_id, try_number)
            if self.home is not None
            else None
        )
        settings = self.settings[task_id]
        duration = (ended - started).total_seconds()
        if result.state == TaskState.FAILED and try_number <= settings.retries:
            self.attempts.append(
                AttemptRecord(task_id, try_number, TaskState.UP_FOR_RETRY, started, ended, path, result.error)
            )
            key = retry_jitter_key(self.pipeline.id, task_id, self.ctx.logical_date, try_number)
            delay = delay_before_retry(settings, try_number, key).total_seconds()
            heapq.heappush(self.retry_heap, (time.monotonic() + delay, len(self.attempts), task_id))
            self._say(task_id, TaskState.UP_FOR_RETRY, try_number, duration, f"retry in {delay:g}s")
            if self.on_retry is not None:
                self.on_retry(task_id, try_number)
            return None
        self.attempts.append(AttemptRecord(task_id, try_number, result.state, started, ended, path, result.error))
        self.terminal_at[task_id] = ended
        self._say(task_id, result.state, try_number, duration, result.error)
        return Completion(task_id, result.state, result.follow)

    def _apply(self, step: SchedulerStep) -> None:
        """Do what the scheduler decided: queue the tasks to start, record the ones decided without running."""
        if step.decided:
            now = _utcnow()
            for decided in step.decided:
                self.terminal_at[decided.task_id] = now
                self._say(decided.task_id, decided.state, 0, note=decided.reason)
        self.ready.extend(step.start)

    def _promote_due_retries(self) -> None:
        now = time.monotonic()
        while self.retry_heap and self.retry_heap[0][0] <= now:
            _, _, task_id = heapq.heappop(self.retry_heap)
            self.ready.append(task_id)

    def _say(
        self, task_id: str, state: TaskState, attempt: int, duration: float | None = None, note: str | None = None
    ) -> None:
        if self.progress is None:
            return
        line = f"{task_id:<28} {state!s:<16} attempt {attempt}"
        if duration is not None:
            line += f"  {duration:7.2f}s"
        if note:
            line += f"  {note}"
        self.progress(line)

    def _outcome(self, started: datetime) -> RunOutcome:
        state = self.scheduler.run_state()
        final = self.scheduler.states
        result = RunResult(
            pipeline=self.pipeline.id,
            state=state if state != RunState.RUNNING else RunState.FAILED,
            tasks={t: TaskResult(final[t], self.tries[t]) for t in self.tasks},
            run_id=self.ctx.run_id,
            backend=self.ctx.backend,
        )
        log_dir = self.home / "logs" / self.pipeline.id / self.ctx.run_id if self.home is not None else None
        return RunOutcome(
            result, self.ctx, started, _utcnow(), self.attempts, log_dir, dict(self.errors), dict(self.terminal_at)
        )
