"""The one scheduler (meta/semantics/scheduler.py) alone: no threads, no processes, completions reported by hand.

Three references: the trigger-rule table of tests/unit/test_trigger_rules.py (read pass by pass), the run-outcome
oracles of tests/unit/test_properties.py, and a naive model of Airflow's scheduling passes written here (every
waiting task re-judged against the finished set taken at the start of each pass, as
``DagRun.task_instance_scheduling_decisions`` does), which the scheduler's O(1) counters must agree with exactly.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meta.semantics import scheduler as scheduler_module
from meta.semantics.rules import Decision, evaluate_trigger_rule, run_state
from meta.semantics.scheduler import Completion, Scheduler, SchedulerStep
from meta.spec.model import BranchAction, Pipeline
from meta.spec.states import RunState, TaskState, TriggerRule
from tests.unit.test_properties import (
    OUTCOME,
    BranchSpec,
    Spec,
    branch_graphs,
    branch_oracle,
    branch_pipeline,
    graphs,
    oracle,
    to_pipeline,
)
from tests.unit.test_trigger_rules import ROWS

S, F, K, U = TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED


def noop(task_id: str, upstream: Iterable[str] = (), rule: str = "all_success") -> dict:
    return {"id": task_id, "action": {"kind": "noop"}, "upstream": list(upstream), "trigger_rule": rule}


def make(*tasks: dict) -> Pipeline:
    return Pipeline.model_validate({"id": "sched", "tasks": list(tasks)})


def decisions(step: SchedulerStep) -> dict[str, str]:
    """task id -> "run" or the state it was decided in."""
    out = {t: "run" for t in step.start}
    out |= {d.task_id: str(d.state) for d in step.decided}
    return out


# -- the trigger-rule table, pass by pass ------------------------------------------------------------------------

TABLE = {(rule, combo): cell for rule, combo, cell in ROWS}
ORDER = "SFKUN"
LETTER = {"run": "R", "skipped": "K", "upstream_failed": "U"}


def table(rule: TriggerRule, a: str, b: str) -> str:
    return TABLE[(rule, "".join(sorted(a + b, key=ORDER.index)))]


def upstream_tasks(name: str, letter: str) -> list[dict]:
    """An upstream of the join that ends as ``letter``: S/F/K are reported, U is decided a pass after its own
    upstream fails, N is started and never reported."""
    if letter == "U":
        return [noop(f"{name}_src"), noop(name, [f"{name}_src"])]
    return [noop(name)]


def expected_by_passes(rule: TriggerRule, letters: dict[str, str], batch: dict[str, int]) -> str:
    """The table read at every pass: the join's snapshot grows as upstreams arrive (a reported state in the first
    pass after its batch, upstream_failed one pass later); the first decision other than "wait" is final."""
    arrival = {n: (batch[n], 1 if letters[n] == "U" else 0) for n in letters if letters[n] != "N"}
    for moment in [(-1, 0), *sorted(set(arrival.values()))]:
        seen = {n: (letters[n] if n in arrival and arrival[n] <= moment else "N") for n in letters}
        cell = table(rule, seen["a"], seen["b"])
        if cell != "W":
            return cell
    return "W"


# Which report (batch) each upstream's completion is in: together, a first, b first.
SCHEDULES = [{"a": 0, "b": 0}, {"a": 0, "b": 1}, {"a": 1, "b": 0}]


@pytest.mark.parametrize(("rule", "combo", "cell"), ROWS, ids=[f"{r}-{c}" for r, c, _ in ROWS])
def test_trigger_rule_table_pass_by_pass(rule: TriggerRule, combo: str, cell: str) -> None:
    letters = {"a": combo[0], "b": combo[1]}
    for batch in SCHEDULES:
        tasks = upstream_tasks("a", letters["a"]) + upstream_tasks("b", letters["b"])
        sched = Scheduler(make(*tasks, noop("join", ["a", "b"], rule.value)))
        seen = decisions(sched.start())
        reported = {"S": S, "F": F, "K": K, "U": F}  # U: its source fails
        for index in (0, 1):
            report = [
                Completion(f"{n}_src" if letters[n] == "U" else n, reported[letters[n]])
                for n in ("a", "b")
                if batch[n] == index and letters[n] != "N"
            ]
            if report:
                seen |= decisions(sched.complete_many(report))
        got = LETTER.get(seen.get("join", ""), "W")
        assert got == expected_by_passes(rule, letters, batch), (batch, seen)
    if "U" not in combo and "N" not in combo:  # reported together: exactly the table's cell
        assert expected_by_passes(rule, letters, {"a": 0, "b": 0}) == cell


# -- a naive model of Airflow's passes ---------------------------------------------------------------------------


class NaivePasses:
    """Airflow's scheduling loop written plainly: each pass takes the finished set, judges every task not yet
    started or decided with ``evaluate_trigger_rule``, and what it decides is finished from the next pass on. A
    successful branch skips what ``SkipMixin.skip_all_except`` skips, together with its own success."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.finished: dict[str, TaskState] = {}
        self.claimed: set[str] = set()

    def settle(self) -> dict[str, str]:
        out: dict[str, str] = {}
        while True:
            snapshot = dict(self.finished)
            this_pass: dict[str, str] = {}
            for task in self.pipeline.tasks:
                if task.id in self.claimed:
                    continue
                rule = self.pipeline.settings_for(task).trigger_rule
                decision = evaluate_trigger_rule(rule, [snapshot.get(u) for u in task.upstream])
                if decision != Decision.WAIT:
                    this_pass[task.id] = "run" if decision == Decision.RUN else str(decision)
            if not this_pass:
                return out
            self.claimed |= set(this_pass)
            self.finished |= {t: TaskState(s) for t, s in this_pass.items() if s != "run"}
            out |= this_pass

    def complete_many(self, completions: list[Completion]) -> dict[str, str]:
        skipped: dict[str, str] = {}
        for c in completions:
            self.finished[c.task_id] = c.state
            if c.state == S and isinstance(self.pipeline.task(c.task_id).action, BranchAction):
                keep, stack = set(c.follow or ()), list(c.follow or ())
                while stack:
                    for child in self.pipeline.downstream_of(stack.pop()):
                        if child not in keep:
                            keep.add(child)
                            stack.append(child)
                for child in self.pipeline.downstream_of(c.task_id):
                    if child not in keep and child not in self.claimed:
                        self.claimed.add(child)
                        self.finished[child] = K
                        skipped[child] = str(K)
        return skipped | self.settle()


def drive(pipeline: Pipeline, outcome: dict[str, Completion], data: st.DataObject) -> tuple[Scheduler, set[str]]:
    """Run ``pipeline`` through the scheduler and the naive model side by side; hypothesis picks which running
    tasks finish in each report. Returns the scheduler and the tasks it started."""
    sched, naive = Scheduler(pipeline), NaivePasses(pipeline)
    step = sched.start()
    assert decisions(step) == naive.settle()
    started = set(step.start)
    while sched.running:
        batch = data.draw(st.lists(st.sampled_from(sorted(sched.running)), min_size=1, unique=True), label="batch")
        report = [outcome[t] for t in batch]
        step = sched.complete_many(report)
        assert decisions(step) == naive.complete_many(report), batch
        assert not started & set(step.start), "a task started twice"
        started |= set(step.start)
    assert sched.finished()
    assert set(sched.states) == set(pipeline.task_ids)
    assert sched.run_state() == run_state(sched.states[t] for t in pipeline.leaves())
    return sched, started


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CODE_STATE = {code: TaskState(state) for code, state in OUTCOME.items()}  # a task body's exit code -> its state


@FAST
@given(graphs(max_tasks=10), st.data())
def test_random_graphs_match_the_oracle_and_airflow_passes(specs: list[Spec], data: st.DataObject) -> None:
    pipeline = to_pipeline(specs)
    outcome = {f"t{i}": Completion(f"t{i}", CODE_STATE[s.code]) for i, s in enumerate(specs)}
    sched, started = drive(pipeline, outcome, data)
    allowed = oracle(specs)
    for i, spec in enumerate(specs):
        tid, state = f"t{i}", sched.states[f"t{i}"]
        assert str(state) in allowed[i], f"{tid}: {state} not in {allowed[i]} ({specs})"
        if tid in started:
            assert state == CODE_STATE[spec.code]
        else:
            assert state in (K, U), tid  # decided by its trigger rule, never started


@FAST
@given(branch_graphs(), st.data())
def test_random_branches_match_the_oracle_and_airflow_passes(spec: BranchSpec, data: st.DataObject) -> None:
    pipeline = branch_pipeline(spec)
    kids = [f"c{i}" for i in range(len(spec.children))]
    outcome = {"start": Completion("start", S), "join": Completion("join", S)}
    outcome["branch"] = Completion("branch", CODE_STATE[spec.branch_code], tuple(kids[i] for i in spec.follow))
    outcome |= {kid: Completion(kid, CODE_STATE[code]) for kid, (_, code) in zip(kids, spec.children, strict=True)}
    sched, _ = drive(pipeline, outcome, data)
    allowed = branch_oracle(spec)
    for task_id, state in sched.states.items():
        assert str(state) in allowed[task_id], f"{task_id}: {state} not in {allowed[task_id]} ({spec})"


# -- cascades: one dependency level per pass (ADR 0002, conformance cases cascade_*) ------------------------------


def cascade(skip_depth: int, fail_depth: int) -> Pipeline:
    """``bad`` fails; a chain of ``skip_depth`` tasks (the first all_skipped) and one of ``fail_depth`` all_success
    tasks lead from it to an all_success join."""
    tasks = [noop("bad")]
    for prefix, depth, first_rule in (("skip", skip_depth, "all_skipped"), ("fail", fail_depth, "all_success")):
        prev = "bad"
        for level in range(1, depth + 1):
            tasks.append(noop(f"{prefix}{level}", [prev], first_rule if level == 1 else "all_success"))
            prev = f"{prefix}{level}"
    return make(*tasks, noop("join", [f"skip{skip_depth}", f"fail{fail_depth}"]))


@pytest.mark.parametrize(
    ("skip_depth", "fail_depth", "join", "run"),
    [
        (1, 2, K, RunState.SUCCESS),  # the skip arrives a pass earlier
        (2, 1, U, RunState.FAILED),
        (2, 2, U, RunState.FAILED),  # same pass: all_success sees the failure
        (1, 1, U, RunState.FAILED),
        (1, 3, K, RunState.SUCCESS),
    ],
)
def test_a_cascade_reaches_the_join_one_level_per_pass(
    skip_depth: int, fail_depth: int, join: TaskState, run: RunState
) -> None:
    pipeline = cascade(skip_depth, fail_depth)
    # The order in which tasks are listed never matters (the immediate cascades it replaced depended on it).
    for tasks in (pipeline.tasks, pipeline.tasks[::-1]):
        sched = Scheduler(pipeline.model_copy(update={"tasks": tasks}))
        assert sched.start().start == ["bad"]
        step = sched.complete("bad", F)
        assert step.start == []
        assert sched.states["join"] == join
        assert sched.run_state() == run
        # Pass by pass: a chain's n-th task in pass n, the join in the pass after the shorter chain reaches it.
        passes = [min(skip_depth, fail_depth) + 1 if d.task_id == "join" else int(d.task_id[-1]) for d in step.decided]
        assert passes == sorted(passes)


def test_a_pass_does_not_see_what_it_decides() -> None:
    """``ok`` and ``bad`` are reported together. In the first pass ``y`` (all_failed after a success) is skipped
    and ``z`` upstream_failed, but ``x`` is judged on the snapshot (ok only) and waits; the next pass sees both and
    all_success gives upstream_failed. Seeing y's skip within its own pass would have skipped x."""
    p = make(
        noop("ok"),
        noop("bad"),
        noop("y", ["ok"], "all_failed"),
        noop("x", ["ok", "y", "z"]),
        noop("z", ["bad"]),
    )
    sched = Scheduler(p)
    sched.start()
    step = sched.complete_many([Completion("ok", S), Completion("bad", F)])
    assert [(d.task_id, d.state) for d in step.decided] == [("y", K), ("z", U), ("x", U)]


def test_independent_completions_race_unless_reported_together() -> None:
    """Two roots, one skipped (one level from the join), one failed: the order of the reports decides, as the
    order of scheduler passes decides in Airflow; reported together they share a snapshot."""
    p = make(noop("s"), noop("f"), noop("a", ["s"]), noop("join", ["a", "f"]))

    def outcome(*reports: list[Completion]) -> TaskState:
        sched = Scheduler(p)
        sched.start()
        for report in reports:
            sched.complete_many(report)
        return sched.states["join"]

    skip, fail = Completion("s", K), Completion("f", F)
    assert outcome([skip], [fail]) == K
    assert outcome([fail], [skip]) == U
    assert outcome([skip, fail]) == U  # a is skipped in the pass that already sees f failed


# -- branches, reasons, misuse ---------------------------------------------------------------------------------


def branch(task_id: str, upstream: Iterable[str] = ()) -> dict:
    return {"id": task_id, "upstream": list(upstream), "action": {"kind": "branch", "callable": "x:y"}}


def test_branch_skips_land_with_its_success_and_say_why() -> None:
    p = make(
        branch("pick"),
        noop("left", ["pick"]),
        noop("right", ["pick"]),
        noop("after_right", ["right"]),
        noop("join", ["left", "after_right"], "none_failed_min_one_success"),
        noop("both", ["pick", "left"]),  # downstream of a followed task: kept although not chosen
        noop("watch", ["pick"], "always"),  # started at once: a branch never skips a started task
    )
    sched = Scheduler(p)
    assert sched.start().start == ["pick", "watch"]
    step = sched.complete("pick", S, follow=["left"])
    assert step.start == ["left"]
    assert [(d.task_id, d.state) for d in step.decided] == [("right", K), ("after_right", K)]
    assert step.decided[0].reason == "not followed by branch 'pick' (it chose ['left'])"
    assert step.decided[1].reason == "skipped by trigger rule all_success (upstream: 1 skipped)"
    assert sched.complete("left", S).start == ["join", "both"]


def test_failed_branch_skips_nothing_itself() -> None:
    sched = Scheduler(make(branch("pick"), noop("left", ["pick"]), noop("right", ["pick"], "all_done")))
    sched.start()
    step = sched.complete("pick", F, follow=["left"])
    assert step.start == ["right"]
    assert [(d.task_id, d.state, d.reason) for d in step.decided] == [
        ("left", U, "upstream failed for trigger rule all_success (upstream: 1 failed)")
    ]


def test_no_follow_skips_every_direct_downstream() -> None:
    sched = Scheduler(make(branch("pick"), noop("a", ["pick"]), noop("b", ["pick"])))
    sched.start()
    assert {d.task_id for d in sched.complete("pick", S).decided} == {"a", "b"}
    assert sched.finished() and sched.run_state() == RunState.SUCCESS


def test_misuse_is_refused() -> None:
    sched = Scheduler(make(noop("a"), noop("b", ["a"])))
    with pytest.raises(RuntimeError, match="start"):
        sched.complete("a", S)
    sched.start()
    with pytest.raises(RuntimeError, match="already"):
        sched.start()
    with pytest.raises(ValueError, match="not running: 'b'"):
        sched.complete("b", S)
    with pytest.raises(ValueError, match="unknown task: 'zz'"):
        sched.complete("zz", S)
    with pytest.raises(ValueError, match="cannot finish as upstream_failed"):
        sched.complete("a", U)
    assert sched.run_state() == RunState.RUNNING
    sched.complete("a", S)
    with pytest.raises(ValueError, match="not running: 'a'"):  # reported twice
        sched.complete("a", S)


def test_wide_fan_in_costs_constant_work_per_completion(monkeypatch: pytest.MonkeyPatch) -> None:
    n = 3000
    p = make(noop("start"), *(noop(f"w{i}", ["start"]) for i in range(n)), noop("join", [f"w{i}" for i in range(n)]))
    calls = 0
    real = scheduler_module.decide_from_counts

    def counting(*args: object) -> Decision:
        nonlocal calls
        calls += 1
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(scheduler_module, "decide_from_counts", counting)
    sched = Scheduler(p)
    sched.start()
    assert len(sched.complete("start", S).start) == n
    for i in range(n):
        sched.complete(f"w{i}", S)
    assert sched.running == {"join"}
    assert calls <= 3 * n + 2  # every task once at start, then once per edge: O(tasks + edges)
