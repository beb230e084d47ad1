"""Airflow's trigger-rule and run-state semantics, shared by every backend.

``evaluate_trigger_rule`` mirrors Airflow's ``TriggerRuleDep`` (airflow/ti_deps/deps/trigger_rule_dep.py) with
``flag_upstream_failed=True``: given the states of the upstream tasks seen *so far*, it says whether the task may
run now, must wait, or is already decided as skipped / upstream_failed. Deciding early on partial information is
what Airflow's scheduler does, so backends that call this on every upstream completion end in Airflow's states.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from enum import StrEnum

from meta.spec.states import RunState, TaskState, TriggerRule

DONE = frozenset({TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED})


class Decision(StrEnum):
    RUN = "run"
    WAIT = "wait"
    SKIP = "skipped"
    UPSTREAM_FAILED = "upstream_failed"


def evaluate_trigger_rule(
    rule: TriggerRule, upstream_states: Iterable[TaskState | None], upstream_count: int | None = None
) -> Decision:
    """Airflow's decision for a task whose upstream tasks are in ``upstream_states`` (None = not finished yet).

    ``upstream_count`` defaults to the number of states given; pass it when only finished states are known.
    """
    states = list(upstream_states)
    total = len(states) if upstream_count is None else upstream_count
    return decide_from_counts(rule, Counter(s for s in states if s is not None), total)


def decide_from_counts(rule: TriggerRule, counts: Mapping[TaskState, int], total: int) -> Decision:
    """``evaluate_trigger_rule`` from the number of finished upstreams in each state (``total`` upstreams in all).

    Constant time: a runner that keeps these counts up to date decides a wide fan-in in O(1) per completion.
    """
    success = counts.get(TaskState.SUCCESS, 0)
    skipped = counts.get(TaskState.SKIPPED, 0)
    failed = counts.get(TaskState.FAILED, 0)
    upstream_failed = counts.get(TaskState.UPSTREAM_FAILED, 0)
    done = success + skipped + failed + upstream_failed
    all_done = done >= total

    if total == 0 or rule == TriggerRule.ALWAYS:
        return Decision.RUN

    # 1. Early decisions (Airflow sets these states as soon as they are certain).
    if rule == TriggerRule.ALL_SUCCESS:
        if failed or upstream_failed:
            return Decision.UPSTREAM_FAILED
        if skipped:
            return Decision.SKIP
    elif rule == TriggerRule.ALL_FAILED:
        if success or skipped:
            return Decision.SKIP
    elif rule == TriggerRule.ONE_SUCCESS:
        if all_done and done == skipped:
            return Decision.SKIP
        if all_done and success <= 0:
            return Decision.UPSTREAM_FAILED
    elif rule == TriggerRule.ONE_FAILED:
        if all_done and not (failed or upstream_failed):
            return Decision.SKIP
    elif rule == TriggerRule.ONE_DONE:
        if all_done and not (failed or success):
            return Decision.SKIP
    elif rule == TriggerRule.NONE_FAILED:
        if failed or upstream_failed:
            return Decision.UPSTREAM_FAILED
    elif rule == TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS:
        if failed or upstream_failed:
            return Decision.UPSTREAM_FAILED
        if skipped == total:
            return Decision.SKIP
        if all_done and success == 0:
            return Decision.UPSTREAM_FAILED
    elif rule == TriggerRule.NONE_SKIPPED:
        if skipped:
            return Decision.SKIP
    elif rule == TriggerRule.ALL_SKIPPED:
        if success or failed or upstream_failed:
            return Decision.SKIP
    elif rule == TriggerRule.ALL_DONE_MIN_ONE_SUCCESS:
        # Skipped upstreams do not count as "done" for this rule.
        if skipped:
            return Decision.SKIP
        if (success + failed + upstream_failed) >= total and success == 0:
            return Decision.UPSTREAM_FAILED

    # 2. Is the rule met, so the task may run now?
    if rule == TriggerRule.ONE_SUCCESS:
        met = success > 0
    elif rule == TriggerRule.ONE_FAILED:
        met = bool(failed or upstream_failed)
    elif rule == TriggerRule.ONE_DONE:
        met = (success + failed) > 0
    elif rule == TriggerRule.ALL_SUCCESS:
        met = success >= total
    elif rule == TriggerRule.ALL_FAILED:
        met = (failed + upstream_failed) >= total
    elif rule == TriggerRule.ALL_DONE:
        met = all_done
    elif rule == TriggerRule.ALL_SKIPPED:
        met = skipped >= total
    elif rule == TriggerRule.NONE_FAILED:
        met = (success + skipped) >= total
    elif rule == TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS:
        met = (success + skipped) >= total and success > 0
    elif rule == TriggerRule.ALL_DONE_MIN_ONE_SUCCESS:
        met = not skipped and (success + failed + upstream_failed) >= total and success > 0
    elif rule == TriggerRule.NONE_SKIPPED:
        met = all_done and not skipped
    else:  # pragma: no cover - every rule is handled above
        raise ValueError(f"unknown trigger rule {rule!r}")
    return Decision.RUN if met else Decision.WAIT


def run_state(leaf_states: Iterable[TaskState | None]) -> RunState:
    """Airflow's rule: once every leaf is finished, the run failed if any leaf failed or is upstream_failed."""
    states = list(leaf_states)
    if any(s is None or s not in DONE for s in states):
        return RunState.RUNNING
    if any(s in (TaskState.FAILED, TaskState.UPSTREAM_FAILED) for s in states):
        return RunState.FAILED
    return RunState.SUCCESS
