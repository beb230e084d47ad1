"""The one scheduler: Airflow's decisions for one pipeline run, as a pure state machine (no threads, no I/O).

Every backend that executes tasks itself (the local runner's ``meta.builtin.local.engine.RunLoop``, the Prefect
adapter's ``meta_prefect.driver.Driver``) asks this class what to do and only executes: ``start()`` names the
tasks that may run at once; each report of finished tasks (``complete``/``complete_many``) answers with the tasks
to start next and those decided without running (skipped / upstream_failed, with a reason); ``run_state()`` is
Airflow's leaf rule once every task is terminal. Retries are the executor's business: a failed attempt with
retries left is not a completion. The model is Kedro's single runner loop with pluggable executors.

Passes, as in Airflow's scheduler (ADR 0002): ``DagRun.task_instance_scheduling_decisions`` takes the finished
task instances once, at the start of a scheduling pass, and ``TriggerRuleDep`` judges every waiting task against
that snapshot. A task it marks skipped or upstream_failed in that pass is therefore seen by its own downstream
tasks only in the next pass: a cascade moves one dependency level per pass. This class emulates exactly that: the
tasks reported together form one snapshot, every pass judges the candidates against the states known before it,
and what a pass decides becomes visible to the next one. Passes repeat until nothing more is decided, before the
call returns (the executor's passes are instantaneous compared with tasks). A successful branch's skips belong to
its completion (Airflow's branch operators skip the unfollowed tasks through the Execution API before reporting
success), so they are in the first snapshot with it.

Mapped tasks (``Task.map``, Airflow's ``expand``): a mapped task is judged once, like any task; when it may run, the
``expand`` callback the executor passes says how many instances it has (from results it holds). Zero instances:
skipped; a map that cannot be expanded: upstream_failed (Airflow's ``TaskMap.expand_mapped_task``). Otherwise its
instances start (``SchedulerStep.start_mapped``, by map index) and each counts as one upstream of its downstream
tasks, as Airflow's TriggerRuleDep counts task instances: a downstream of a task mapped over N elements has N - 1
more upstreams from the moment of the expansion, and sees each instance's state as it is reported.

Cost: per task, how many upstreams ended in each state (``decide_from_counts``), so a pass judges a task in O(1)
and a whole run costs O(tasks + edges), a wide fan-in included.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from meta.semantics.results import UNMAPPED, ExpansionError
from meta.semantics.rules import Decision, decide_from_counts, run_state
from meta.spec.model import BranchAction, Pipeline, TaskSettings
from meta.spec.results import mapped_state
from meta.spec.states import RunState, TaskState, TriggerRule

# What an attempt can end in; upstream_failed is only ever decided, never reported.
REPORTABLE = frozenset({TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED})


@dataclass(frozen=True, slots=True)
class Completion:
    """A task the executor finished for good: its terminal state and, for a successful branch, the ids it follows."""

    task_id: str
    state: TaskState
    follow: tuple[str, ...] | None = None
    map_index: int = UNMAPPED


@dataclass(frozen=True, slots=True)
class Decided:
    """A task the scheduler decided without running it."""

    task_id: str
    state: TaskState  # SKIPPED or UPSTREAM_FAILED
    reason: str


@dataclass(slots=True)
class SchedulerStep:
    """What the executor must do after a report: start these tasks (in this order) and record these decisions."""

    start: list[str] = field(default_factory=list)
    decided: list[Decided] = field(default_factory=list)
    start_mapped: list[tuple[str, int]] = field(default_factory=list)  # (task id, map index) of expanded tasks


Expander = Callable[[str], int]  # mapped task id -> its number of instances; raises ExpansionError


class Scheduler:
    """One run of one pipeline. Create, call ``start()`` once, then report every completion."""

    def __init__(
        self,
        pipeline: Pipeline,
        settings: Mapping[str, TaskSettings] | None = None,
        expand: Expander | None = None,
    ) -> None:
        """``settings``: each task's ``pipeline.settings_for(task)``, when the executor has them already;
        ``expand``: how many instances a mapped task has (needed only when the pipeline maps a task)."""
        self.pipeline = pipeline
        self._expand = expand
        self._mapped = {t.id for t in pipeline.tasks if t.mapped}
        if self._mapped and expand is None:
            raise ValueError(f"pipeline {pipeline.id!r} maps tasks {sorted(self._mapped)}: pass expand=")
        self._instances: dict[str, dict[int, TaskState | None]] = {}  # expanded tasks: map index -> state
        self._pending: dict[str, int] = {}  # expanded tasks: instances not finished yet
        self._order = pipeline.task_ids
        self._upstream_count = {t.id: len(t.upstream) for t in pipeline.tasks}
        self._rule: dict[str, TriggerRule] = {
            t.id: (settings[t.id] if settings is not None else pipeline.settings_for(t)).trigger_rule
            for t in pipeline.tasks
        }
        self._branches = {t.id for t in pipeline.tasks if isinstance(t.action, BranchAction)}
        self._downstream: dict[str, list[str]] = {t: [] for t in self._order}
        for t in pipeline.tasks:
            for up in t.upstream:
                self._downstream[up].append(t.id)
        # Per task: how many upstreams are terminal in each state, as of the current pass's snapshot.
        self._counts: dict[str, Counter[TaskState]] = {t: Counter() for t in self._order}
        self._states: dict[str, TaskState] = {}  # terminal states
        self._claimed: set[str] = set()  # started or decided: never judged again
        self._running: set[tuple[str, int]] = set()
        self._started = False

    # -- what the executor calls ------------------------------------------------------------------------

    def start(self) -> SchedulerStep:
        """The first pass: tasks without upstreams, and ``always`` tasks (Airflow's TriggerRuleDep passes them at
        once, even while their upstreams still run)."""
        if self._started:
            raise RuntimeError("Scheduler.start() was already called")
        self._started = True
        step = SchedulerStep()
        self._passes(self._order, step)
        return step

    def complete(self, task_id: str, state: TaskState, follow: Iterable[str] | None = None) -> SchedulerStep:
        """Report one finished task (see ``complete_many``)."""
        return self.complete_many([Completion(task_id, state, None if follow is None else tuple(follow))])

    def complete_many(self, completions: Iterable[Completion]) -> SchedulerStep:
        """Report tasks that finished since the last report; they share one snapshot, like completions that land
        between two passes of Airflow's scheduler."""
        if not self._started:
            raise RuntimeError("call Scheduler.start() before reporting completions")
        step = SchedulerStep()
        changed: list[str] = []
        for c in completions:
            self._check(c)
            self._running.discard((c.task_id, c.map_index))
            if c.map_index == UNMAPPED:
                self._set(c.task_id, c.state)
            else:
                self._set_instance(c.task_id, c.map_index, c.state)
            changed.append(c.task_id)
            if c.task_id in self._branches and c.state == TaskState.SUCCESS:
                for d in self._not_followed(c.task_id, c.follow or ()):  # same snapshot as the branch's success
                    self._claimed.add(d.task_id)
                    self._set(d.task_id, d.state)
                    changed.append(d.task_id)
                    step.decided.append(d)
        self._passes(self._children(changed), step)
        return step

    @property
    def states(self) -> Mapping[str, TaskState]:
        """Terminal states so far (completed or decided)."""
        return self._states

    @property
    def running(self) -> frozenset[str]:
        """Tasks with an instance started and not yet reported as finished."""
        return frozenset(task_id for task_id, _ in self._running)

    def instance_states(self, task_id: str) -> dict[int, TaskState | None] | None:
        """An expanded mapped task's instances (map index -> terminal state, None while unfinished); None for a task
        that is not mapped or never expanded."""
        instances = self._instances.get(task_id)
        return None if instances is None else dict(instances)

    def finished(self) -> bool:
        return len(self._states) == len(self._order)

    def run_state(self) -> RunState:
        """Airflow's DagRun.update_state: running until every leaf task instance is terminal, then failed if one
        failed or is upstream_failed, else success (``meta.semantics.rules.run_state``)."""
        states: list[TaskState | None] = []
        for leaf in self.pipeline.leaves():
            instances = self._instances.get(leaf)
            states.extend(instances.values() if instances else [self._states.get(leaf)])
        return run_state(states)

    # -- passes -----------------------------------------------------------------------------------------

    def _passes(self, candidates: Iterable[str], step: SchedulerStep) -> None:
        """Judge ``candidates`` against the current snapshot; what a pass decides is visible to the next pass."""
        level = list(candidates)
        while level:
            decided: list[Decided] = []
            for task_id in level:
                if task_id in self._claimed:
                    continue
                rule = self._rule[task_id]
                counts = self._counts[task_id]
                decision = decide_from_counts(rule, counts, self._upstream_count[task_id])
                if decision == Decision.WAIT:
                    continue
                self._claimed.add(task_id)
                if decision == Decision.RUN and task_id in self._mapped:
                    expanded = self._expand_task(task_id, step)
                    if expanded is not None:
                        decided.append(expanded)
                elif decision == Decision.RUN:
                    self._running.add((task_id, UNMAPPED))
                    step.start.append(task_id)
                else:
                    state = TaskState.SKIPPED if decision == Decision.SKIP else TaskState.UPSTREAM_FAILED
                    decided.append(Decided(task_id, state, _rule_reason(rule, state, counts)))
            # Only now, after the whole pass: Airflow's snapshot does not contain what this pass set.
            if not decided:
                return
            for d in decided:
                self._set(d.task_id, d.state)
            step.decided += decided
            level = self._children(d.task_id for d in decided)

    def _expand_task(self, task_id: str, step: SchedulerStep) -> Decided | None:
        """Expand a mapped task that may run: start its instances, or decide it when there are none."""
        assert self._expand is not None  # checked in __init__
        try:
            count = self._expand(task_id)
        except ExpansionError as exc:
            return Decided(task_id, TaskState.UPSTREAM_FAILED, str(exc))
        if count == 0:
            return Decided(task_id, TaskState.SKIPPED, "mapped over an empty list: no instance to run")
        self._instances[task_id] = dict.fromkeys(range(count))
        self._pending[task_id] = count
        for child in self._downstream[task_id]:
            self._upstream_count[child] += count - 1  # one upstream instance became ``count``
        for index in range(count):
            self._running.add((task_id, index))
            step.start_mapped.append((task_id, index))
        return None

    def _children(self, task_ids: Iterable[str]) -> list[str]:
        """The unclaimed downstream tasks of ``task_ids``, each once, in a stable order."""
        seen: dict[str, None] = {}
        for task_id in task_ids:
            for child in self._downstream[task_id]:
                if child not in self._claimed:
                    seen[child] = None
        return list(seen)

    def _not_followed(self, branch_id: str, follow: tuple[str, ...]) -> list[Decided]:
        """Airflow's ``SkipMixin.skip_all_except``: skip the branch's direct downstream tasks it does not follow,
        unless they are downstream of a followed task (branch -> join and branch -> task -> join: join is kept) or
        already started (``always`` tasks start at once)."""
        keep = set(follow)
        stack = list(follow)
        while stack:
            for child in self._downstream.get(stack.pop(), ()):
                if child not in keep:
                    keep.add(child)
                    stack.append(child)
        reason = f"not followed by branch {branch_id!r} (it chose {list(follow)})"
        return [
            Decided(child, TaskState.SKIPPED, reason)
            for child in self._downstream[branch_id]
            if child not in keep and child not in self._claimed
        ]

    def _check(self, c: Completion) -> None:
        if (c.task_id, c.map_index) not in self._running:
            known = "unknown task" if c.task_id not in self._rule else "a task instance that is not running"
            where = f"[{c.map_index}]" if c.map_index != UNMAPPED else ""
            raise ValueError(f"completion of {known}: {c.task_id!r}{where}")
        if c.state not in REPORTABLE:
            raise ValueError(f"task {c.task_id!r} cannot finish as {c.state!s}; expected success, failed or skipped")

    def _set(self, task_id: str, state: TaskState) -> None:
        self._states[task_id] = state
        for child in self._downstream[task_id]:
            self._counts[child][state] += 1

    def _set_instance(self, task_id: str, map_index: int, state: TaskState) -> None:
        """One instance finished: it counts for the downstream tasks at once; the task is terminal with its last."""
        instances = self._instances[task_id]
        instances[map_index] = state
        for child in self._downstream[task_id]:
            self._counts[child][state] += 1
        self._pending[task_id] -= 1
        if self._pending[task_id] == 0:
            self._states[task_id] = mapped_state([s for s in instances.values() if s is not None])


def _rule_reason(rule: TriggerRule, state: TaskState, counts: Mapping[TaskState, int]) -> str:
    seen = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if n) or "none finished"
    verb = "skipped by" if state == TaskState.SKIPPED else "upstream failed for"
    return f"{verb} trigger rule {rule} (upstream: {seen})"
