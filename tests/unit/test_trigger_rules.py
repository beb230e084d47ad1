"""Every trigger rule x every combination of two upstream states, written out from Airflow's semantics.

Sources: https://airflow.apache.org/docs/apache-airflow/stable/core-concepts/dags.html#trigger-rules and Airflow
3.3's ``airflow/ti_deps/deps/trigger_rule_dep.py`` with ``flag_upstream_failed=True`` (what the scheduler uses):
a task is decided as soon as the states seen so far make the outcome certain, e.g. ``all_success`` with one failed
upstream is ``upstream_failed`` even while the other upstream still runs.

The N columns are what a scheduling pass decides while an upstream is unfinished; tests/unit/test_scheduler.py
reads this table pass by pass to check the scheduler itself.

Letters: S success, F failed, K skipped, U upstream_failed, N not finished yet.
Decisions: R run now, W wait, K skipped, U upstream_failed.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from meta.semantics.rules import Decision, decide_from_counts, evaluate_trigger_rule, run_state
from meta.spec.states import RunState, TaskState, TriggerRule

STATE = {
    "S": TaskState.SUCCESS,
    "F": TaskState.FAILED,
    "K": TaskState.SKIPPED,
    "U": TaskState.UPSTREAM_FAILED,
    "N": None,
}
DECISION = {"R": Decision.RUN, "W": Decision.WAIT, "K": Decision.SKIP, "U": Decision.UPSTREAM_FAILED}

TABLE = """
rule                         SS SF SK SU SN FF FK FU FN KK KU KN UU UN NN
all_success                  R  U  K  U  W  U  U  U  U  K  U  K  U  U  W
all_failed                   K  K  K  K  K  R  K  R  W  K  K  K  R  W  W
all_done                     R  R  R  R  W  R  R  R  W  R  R  W  R  W  W
all_done_min_one_success     R  R  K  R  W  U  K  U  W  K  K  K  U  W  W
all_skipped                  K  K  K  K  K  K  K  K  K  R  K  W  K  K  W
one_success                  R  R  R  R  R  U  U  U  W  K  U  W  U  W  W
one_failed                   K  R  K  R  W  R  R  R  R  K  R  W  R  R  W
one_done                     R  R  R  R  R  R  R  R  R  K  K  W  K  W  W
none_failed                  R  U  R  U  W  U  U  U  U  R  U  W  U  U  W
none_failed_min_one_success  R  U  R  U  W  U  U  U  U  K  U  W  U  U  W
none_skipped                 R  R  K  R  W  R  K  R  W  K  K  K  R  W  W
always                       R  R  R  R  R  R  R  R  R  R  R  R  R  R  R
"""


def _rows() -> list[tuple[TriggerRule, str, str]]:
    lines = [line.split() for line in TABLE.strip().splitlines()]
    combos = lines[0][1:]
    out = []
    for rule, *cells in lines[1:]:
        assert len(cells) == len(combos), rule
        out += [(TriggerRule(rule), combo, cell) for combo, cell in zip(combos, cells, strict=True)]
    return out


ROWS = _rows()


def test_table_covers_every_rule() -> None:
    assert {r for r, _, _ in ROWS} == set(TriggerRule)


@pytest.mark.parametrize(("rule", "combo", "expected"), ROWS, ids=[f"{r}-{c}" for r, c, _ in ROWS])
def test_two_upstreams(rule: TriggerRule, combo: str, expected: str) -> None:
    states = [STATE[c] for c in combo]
    assert evaluate_trigger_rule(rule, states) == DECISION[expected]
    # The order in which upstreams are listed never matters.
    assert evaluate_trigger_rule(rule, list(reversed(states))) == DECISION[expected]
    # Passing only the finished states plus the upstream count is the same question.
    finished = [s for s in states if s is not None]
    assert evaluate_trigger_rule(rule, finished, upstream_count=2) == DECISION[expected]
    # The runner's constant-time form, from per-state counts.
    assert decide_from_counts(rule, Counter(finished), 2) == DECISION[expected]


@pytest.mark.parametrize("rule", list(TriggerRule))
def test_no_upstream_always_runs(rule: TriggerRule) -> None:
    assert evaluate_trigger_rule(rule, []) == Decision.RUN


# A few three-upstream cases where counting matters (all vs one, "min one success").
THREE = [
    (TriggerRule.ALL_SUCCESS, "SSN", "W"),
    (TriggerRule.ALL_SUCCESS, "SSS", "R"),
    (TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS, "KKN", "W"),
    (TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS, "KKS", "R"),
    (TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS, "KKK", "K"),
    (TriggerRule.ONE_SUCCESS, "KKU", "U"),
    (TriggerRule.ONE_SUCCESS, "KKK", "K"),
    (TriggerRule.ALL_FAILED, "FUN", "W"),
    (TriggerRule.ALL_FAILED, "FUU", "R"),
    (TriggerRule.ALL_DONE_MIN_ONE_SUCCESS, "FFS", "R"),
    (TriggerRule.ALL_DONE_MIN_ONE_SUCCESS, "FFU", "U"),
    (TriggerRule.ONE_DONE, "UUN", "W"),
    (TriggerRule.ALL_SKIPPED, "KKN", "W"),
]


@pytest.mark.parametrize(("rule", "combo", "expected"), THREE, ids=[f"{r}-{c}" for r, c, _ in THREE])
def test_three_upstreams(rule: TriggerRule, combo: str, expected: str) -> None:
    for order in itertools.permutations(combo):
        assert evaluate_trigger_rule(rule, [STATE[c] for c in order]) == DECISION[expected]


@pytest.mark.parametrize(
    ("leaves", "expected"),
    [
        ("SS", RunState.SUCCESS),
        ("SK", RunState.SUCCESS),
        ("KK", RunState.SUCCESS),
        ("SF", RunState.FAILED),
        ("SU", RunState.FAILED),
        ("SN", RunState.RUNNING),
        ("FN", RunState.RUNNING),
    ],
)
def test_run_state_from_leaves(leaves: str, expected: RunState) -> None:
    """Airflow's DagRun.update_state: failed if any leaf failed or is upstream_failed, once all leaves are done."""
    assert run_state(STATE[c] for c in leaves) == expected
