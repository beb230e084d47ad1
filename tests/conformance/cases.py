"""One case list, run on every backend (local, Airflow, Prefect): final task states and the run state must match.

Expected states follow Airflow 3.3's TriggerRuleDep and DagRun.update_state. Airflow decides some states early, on
partial information (e.g. all_success is set upstream_failed as soon as one upstream fails, but skipped as soon as
one is skipped): where two upstreams could finish in either order, the cases chain them (``upstream`` + all_done) so
the order, and so the expected state, is the same on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meta.spec.model import Pipeline
from meta.spec.states import TriggerRule

RULES = [r.value for r in TriggerRule]


@dataclass(frozen=True)
class Case:
    name: str
    pipeline: Pipeline
    expected: dict[str, str]
    run_state: str
    attempts: dict[str, int] = field(default_factory=dict)  # only where the count matters (retries)
    params: dict[str, Any] = field(default_factory=dict)
    instances: dict[str, dict[int, str]] = field(default_factory=dict)  # mapped task -> {map index: state}
    instance_attempts: dict[str, dict[int, int]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.pipeline.id


def sh(task_id: str, command: str, upstream: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
    return {"id": task_id, "action": {"kind": "shell", "command": command}, "upstream": upstream, **fields}


def pipeline(name: str, tasks: list[dict[str, Any]], **fields: Any) -> Pipeline:
    return Pipeline.model_validate({"id": f"conf_{name}", "tags": ["conformance"], "tasks": tasks, **fields})


def rule_fanin(name: str, upstream_tasks: list[dict[str, Any]], outcome: dict[str, str], run_state: str) -> Case:
    """Every trigger rule as a leaf task downstream of the same upstream tasks."""
    ups = tuple(t["id"] for t in upstream_tasks)
    rule_tasks = [sh(f"t_{r}", "true", ups, trigger_rule=r) for r in RULES]
    expected = {t["id"]: state for t, state in zip(upstream_tasks, outcome["_upstream"].split(), strict=True)}
    expected |= {f"t_{r}": outcome[r] for r in RULES}
    return Case(name, pipeline(name, upstream_tasks + rule_tasks), expected, run_state)


def cascade(name: str, skip_depth: int, fail_depth: int, join: str, run_state: str) -> Case:
    """``bad`` fails and starts two cascades towards an all_success ``join``: a skip down ``skip_depth`` tasks (the
    first all_skipped) and an upstream_failed down ``fail_depth`` tasks. The join sees whichever reaches it in
    fewer scheduling passes, and both at once when they take as many. Only ``bad`` runs, so no timing is involved.
    """
    tasks, expected = [sh("bad", "exit 1")], {"bad": "failed"}
    for prefix, depth, state in (("skip", skip_depth, "skipped"), ("fail", fail_depth, "upstream_failed")):
        for level in range(1, depth + 1):
            upstream = f"{prefix}{level - 1}" if level > 1 else "bad"
            rule = {"trigger_rule": "all_skipped"} if prefix == "skip" and level == 1 else {}  # else all_success
            tasks.append(sh(f"{prefix}{level}", "true", (upstream,), **rule))
            expected[f"{prefix}{level}"] = state
    tasks.append(sh("join", "true", (f"skip{skip_depth}", f"fail{fail_depth}")))
    return Case(name, pipeline(name, tasks), expected | {"join": join}, run_state)  # join is the only leaf


CASES: list[Case] = [
    Case(
        "linear_success",
        pipeline("linear_success", [sh("a", "true"), sh("b", "true", ("a",)), sh("c", "exit 0", ("b",))]),
        {"a": "success", "b": "success", "c": "success"},
        "success",
    ),
    Case(
        "failure_propagates",
        pipeline("failure_propagates", [sh("a", "exit 3"), sh("b", "true", ("a",)), sh("c", "true", ("b",))]),
        {"a": "failed", "b": "upstream_failed", "c": "upstream_failed"},
        "failed",
    ),
    Case(
        "skip_exit_99",
        pipeline(
            "skip_exit_99",
            [sh("a", "exit 99"), sh("b", "true", ("a",)), sh("c", "true", ("b",), trigger_rule="none_failed")],
        ),
        {"a": "skipped", "b": "skipped", "c": "success"},
        "success",
    ),
    # Upstream states success, failed, skipped; `skip` runs after `bad` (all_done) so bad's failure is seen first.
    rule_fanin(
        "rules_mixed",
        [sh("ok", "true"), sh("bad", "exit 1"), sh("skip", "exit 99", ("bad",), trigger_rule="all_done")],
        {
            "_upstream": "success failed skipped",
            "all_success": "upstream_failed",
            "all_failed": "skipped",
            "all_done": "success",
            "all_done_min_one_success": "skipped",
            "all_skipped": "skipped",
            "one_success": "success",
            "one_failed": "success",
            "one_done": "success",
            "none_failed": "upstream_failed",
            "none_failed_min_one_success": "upstream_failed",
            "none_skipped": "skipped",
            "always": "success",
        },
        "failed",
    ),
    rule_fanin(
        "rules_success_skipped",
        [sh("ok", "true"), sh("skip", "exit 99")],
        {
            "_upstream": "success skipped",
            "all_success": "skipped",
            "all_failed": "skipped",
            "all_done": "success",
            "all_done_min_one_success": "skipped",
            "all_skipped": "skipped",
            "one_success": "success",
            "one_failed": "skipped",
            "one_done": "success",
            "none_failed": "success",
            "none_failed_min_one_success": "success",
            "none_skipped": "skipped",
            "always": "success",
        },
        "success",
    ),
    rule_fanin(
        "rules_all_failed",
        [sh("f1", "exit 1"), sh("f2", "exit 2")],
        {
            "_upstream": "failed failed",
            "all_success": "upstream_failed",
            "all_failed": "success",
            "all_done": "success",
            "all_done_min_one_success": "upstream_failed",
            "all_skipped": "skipped",
            "one_success": "upstream_failed",
            "one_failed": "success",
            "one_done": "success",
            "none_failed": "upstream_failed",
            "none_failed_min_one_success": "upstream_failed",
            "none_skipped": "success",
            "always": "success",
        },
        "failed",
    ),
    rule_fanin(
        "rules_all_skipped",
        [sh("s1", "exit 99"), sh("s2", "exit 99")],
        {
            "_upstream": "skipped skipped",
            "all_success": "skipped",
            "all_failed": "skipped",
            "all_done": "success",
            "all_done_min_one_success": "skipped",
            "all_skipped": "success",
            "one_success": "skipped",
            "one_failed": "skipped",
            "one_done": "skipped",
            "none_failed": "success",
            "none_failed_min_one_success": "skipped",
            "none_skipped": "skipped",
            "always": "success",
        },
        "success",
    ),
    # upstream_failed counts as a failure for one_failed / all_failed; the run state looks at leaves only.
    Case(
        "upstream_failed_as_input",
        pipeline(
            "upstream_failed_as_input",
            [
                sh("a", "exit 1"),
                sh("b", "true", ("a",)),
                sh("c", "true", ("b",), trigger_rule="all_done"),
                sh("d", "true", ("b",), trigger_rule="one_failed"),
                sh("e", "true", ("b",), trigger_rule="all_failed"),
            ],
        ),
        {"a": "failed", "b": "upstream_failed", "c": "success", "d": "success", "e": "success"},
        "success",
    ),
    Case(
        "branch",
        pipeline(
            "branch",
            [
                {"id": "pick", "action": {"kind": "branch", "callable": "tests.conformance.callables:choose_left"}},
                sh("left", "true", ("pick",)),
                sh("right", "true", ("pick",)),
                sh("after_right", "true", ("right",)),
                sh("join", "true", ("left", "right"), trigger_rule="none_failed_min_one_success"),
            ],
        ),
        {"pick": "success", "left": "success", "right": "skipped", "after_right": "skipped", "join": "success"},
        "success",
    ),
    # Cascades move one dependency level per scheduling pass (ADR 0002); see `cascade`.
    cascade("cascade_skip_one_level_shorter", skip_depth=1, fail_depth=2, join="skipped", run_state="success"),
    cascade("cascade_same_pass", skip_depth=2, fail_depth=2, join="upstream_failed", run_state="failed"),
    # A branch's skips land with its success, so they reach the join before the followed task can fail.
    Case(
        "branch_skip_before_failure",
        pipeline(
            "branch_skip_before_failure",
            [
                {"id": "pick", "action": {"kind": "branch", "callable": "tests.conformance.callables:choose_left"}},
                sh("left", "exit 1", ("pick",)),
                sh("right", "true", ("pick",)),
                sh("join", "true", ("left", "right")),
            ],
        ),
        {"pick": "success", "left": "failed", "right": "skipped", "join": "skipped"},
        "success",
    ),
    Case(
        "retries_recover",
        pipeline(
            "retries_recover",
            [
                sh("flaky", 'test "$META_TRY_NUMBER" -ge 2', retries=2, retry_delay="1s"),
                sh("after", "true", ("flaky",)),
            ],
        ),
        {"flaky": "success", "after": "success"},
        "success",
        attempts={"flaky": 2, "after": 1},
    ),
    Case(
        "retries_exhaust",
        pipeline(
            "retries_exhaust",
            [
                sh("doomed", "exit 1", retries=2, retry_delay="1s", retry_backoff=2.0, max_retry_delay="3s"),
                sh("after", "true", ("doomed",)),
            ],
        ),
        {"doomed": "failed", "after": "upstream_failed"},
        "failed",
        attempts={"doomed": 3, "after": 0},
    ),
    Case(
        "timeout",
        pipeline("timeout", [sh("slow", "sleep 120", timeout="3s"), sh("after", "true", ("slow",))]),
        {"slow": "failed", "after": "upstream_failed"},
        "failed",
        attempts={"slow": 1},
    ),
    # Airflow renders templates with StrictUndefined: a name that is not in the context fails the task.
    Case(
        "undefined_template_name",
        pipeline(
            "undefined_template_name", [sh("render", "echo {{ no_such_name }}"), sh("after", "true", ("render",))]
        ),
        {"render": "failed", "after": "upstream_failed"},
        "failed",
    ),
    Case(
        "params_and_context",
        pipeline(
            "params_and_context",
            [
                sh("env", 'test "$META_PARAM_COUNTRY" = CH && test -n "$META_RUN_ID" && test -n "$META_DS"'),
                sh("template", 'test "{{ params.country }}" = CH'),
                {
                    "id": "python",
                    "action": {"kind": "python", "callable": "tests.conformance.callables:check_context"},
                },
            ],
            params={"country": {"type": "string", "default": "DE"}},
        ),
        {"env": "success", "template": "success", "python": "success"},
        "success",
        params={"country": "CH"},
    ),
]


def py(task_id: str, function: str, upstream: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
    kwargs = fields.pop("kwargs", {})
    action = {"kind": "python", "callable": f"tests.conformance.callables:{function}", "kwargs": kwargs}
    return {"id": task_id, "action": action, "upstream": upstream, **fields}


def result(task_id: str) -> str:
    return "{{ tasks." + task_id + ".result }}"


# Results and dynamic mapping (issue 14). States recorded from Airflow 3.3.2 (docs/results-and-mapping.md); the
# callables assert what they receive, so a success also proves the value that was passed down.
CASES += [
    Case(
        "result_chain",
        pipeline(
            "result_chain",
            [
                py("extract", "extract"),
                py("transform", "transform", kwargs={"data": result("extract")}),
                sh("announce", 'echo "rows doubled: {{ tasks.transform.result }}"; echo {{ tasks.transform.result }}'),
                py("check", "expect", kwargs={"value": result("announce"), "expected": "6"}),
                py(
                    "check_text",
                    "expect",
                    kwargs={"value": "from {{ tasks.extract.result.source }}", "expected": "from orders"},
                ),
            ],
        ),
        {
            "extract": "success",
            "transform": "success",
            "announce": "success",
            "check": "success",
            "check_text": "success",
        },
        "success",
    ),
    Case(
        "map_zero",
        pipeline(
            "map_zero",
            [
                py("source", "numbers", kwargs={"count": 0}),
                py("square", "square", map={"x": result("source")}),
                py("after", "expect", kwargs={"value": result("square"), "expected": []}),
                py(
                    "after_all_done",
                    "expect",
                    kwargs={"value": result("square"), "expected": []},
                    trigger_rule="all_done",
                ),
            ],
        ),
        {"source": "success", "square": "skipped", "after": "skipped", "after_all_done": "success"},
        "success",
        instances={"square": {}},
    ),
    # Airflow renders templates inside the strings of a literal map list (never a value that came from a result).
    Case(
        "map_literal_templates",
        pipeline(
            "map_literal_templates",
            [
                py(
                    "greet",
                    "expect",
                    kwargs={"expected": "hello CH"},
                    map={"value": ["hello {{ params.who }}", "hello {{ params.who }}"]},
                ),
            ],
            params={"who": {"type": "string", "default": "CH"}},
        ),
        {"greet": "success"},
        "success",
        instances={"greet": {0: "success", 1: "success"}},
    ),
    Case(
        "map_one",
        pipeline(
            "map_one",
            [
                py("square", "square", kwargs={"power": 3}, map={"x": [2]}),
                py("reduce", "expect", kwargs={"value": result("square"), "expected": [8]}),
            ],
        ),
        {"square": "success", "reduce": "success"},
        "success",
        instances={"square": {0: "success"}},
    ),
    Case(
        "map_many_and_product",
        pipeline(
            "map_many_and_product",
            [
                py("source", "numbers", kwargs={"count": 3}),
                py("square", "square", map={"x": result("source")}),
                py("reduce", "expect", kwargs={"value": result("square"), "expected": [1, 4, 9]}),
                py("pair", "pair", map={"x": [1, 2], "y": ["a", "b"]}),
                py("pairs", "expect", kwargs={"value": result("pair"), "expected": ["1a", "1b", "2a", "2b"]}),
                py("again", "square", map={"x": result("square")}, kwargs={"power": 1}),
                py("again_reduce", "expect", kwargs={"value": result("again"), "expected": [1, 4, 9]}),
            ],
        ),
        {
            "source": "success",
            "square": "success",
            "reduce": "success",
            "pair": "success",
            "pairs": "success",
            "again": "success",
            "again_reduce": "success",
        },
        "success",
        instances={
            "square": {0: "success", 1: "success", 2: "success"},
            "pair": {0: "success", 1: "success", 2: "success", 3: "success"},
            "again": {0: "success", 1: "success", 2: "success"},
        },
    ),
    Case(
        "map_one_failing",
        pipeline(
            "map_one_failing",
            [
                py("check", "fail_on", kwargs={"bad": 2}, map={"x": [1, 2, 3]}),
                py("after", "expect", kwargs={"value": result("check"), "expected": [1, 3]}),
                py(
                    "after_all_done",
                    "expect",
                    kwargs={"value": result("check"), "expected": [1, 3]},
                    trigger_rule="all_done",
                ),
                sh("after_one_failed", "true", ("check",), trigger_rule="one_failed"),
            ],
        ),
        {"check": "failed", "after": "upstream_failed", "after_all_done": "success", "after_one_failed": "success"},
        "failed",
        instances={"check": {0: "success", 1: "failed", 2: "success"}},
    ),
    Case(
        "map_retries",
        pipeline(
            "map_retries",
            [
                py("flaky", "flaky_on", kwargs={"flaky": 2}, map={"x": [1, 2, 3]}, retries=1, retry_delay="1s"),
                py("doomed", "fail_on", kwargs={"bad": 1}, map={"x": [1, 2]}, retries=1, retry_delay="1s"),
                py(
                    "after",
                    "expect",
                    ("flaky", "doomed"),
                    kwargs={"value": result("flaky"), "expected": [1, 2, 3]},
                    trigger_rule="all_done",
                ),
            ],
        ),
        {"flaky": "success", "doomed": "failed", "after": "success"},
        "success",
        instances={"flaky": {0: "success", 1: "success", 2: "success"}, "doomed": {0: "failed", 1: "success"}},
        instance_attempts={"flaky": {0: 1, 1: 2, 2: 1}, "doomed": {0: 2, 1: 1}},
    ),
    Case(
        "map_before_branch",
        pipeline(
            "map_before_branch",
            [
                py("square", "square", map={"x": [1, 2, 3]}),
                {
                    "id": "pick",
                    "action": {
                        "kind": "branch",
                        "callable": "tests.conformance.callables:pick_by_total",
                        "kwargs": {"values": result("square")},
                    },
                },
                sh("big", "true", ("pick",)),
                sh("small", "true", ("pick",)),
            ],
        ),
        {"square": "success", "pick": "success", "big": "success", "small": "skipped"},
        "success",
        instances={"square": {0: "success", 1: "success", 2: "success"}},
    ),
    Case(
        "result_refused",
        pipeline(
            "result_refused",
            [
                py("big", "too_big"),
                py("after_big", "expect", kwargs={"value": result("big"), "expected": None}, trigger_rule="all_done"),
                py("five", "not_a_list"),
                py("mapped", "square", map={"x": result("five")}),
            ],
        ),
        {"big": "failed", "after_big": "success", "five": "failed", "mapped": "upstream_failed"},
        "failed",
    ),
]

CASES_BY_ID = {c.id: c for c in CASES}
