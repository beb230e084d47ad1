"""Results between tasks and mapped tasks on Airflow: the plan the loader and codegen share, the generated code,
the checks the runtime applies to what a task returns, and instances read back by map index."""

from __future__ import annotations

import ast
import inspect
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from meta_airflow.build import build_dag
from meta_airflow.codegen import render_pipeline, write_dag_files
from meta_airflow.plan import Output, Results, plan, result_jinja
from meta_airflow.remote import task_results
from meta_airflow.runtime import checked, mapped_python, plain

from meta import MAX_MAP_LENGTH, CompileError, ResultRefused, TaskResult, TaskState
from meta.spec.model import Pipeline
from tests.unit.airflow.pipelines import ruff_format_problems, summary
from tests.unit.airflow.test_codegen import comparable, exec_dag, mapping_summary

RUFF = Path(sys.executable).parent / "ruff"
CALLABLES = "tests.conformance.callables"


def py(task_id: str, function: str, upstream: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
    action = {"kind": "python", "callable": f"{CALLABLES}:{function}", "kwargs": fields.pop("kwargs", {})}
    return {"id": task_id, "action": action, "upstream": list(upstream), **fields}


def pipeline(tasks: list[dict[str, Any]], **fields: Any) -> Pipeline:
    return Pipeline.model_validate({"id": fields.pop("id", "results"), "tasks": tasks, **fields})


def mapped_and_results() -> Pipeline:
    """Listed downstream-first on purpose: a reference may point to a task defined later in the spec."""
    return pipeline(
        [
            py("reduce", "expect", kwargs={"value": "{{ tasks.square.result }}", "expected": [1, 4, 9]}),
            py(
                "square",
                "square",
                kwargs={"power": 2},
                map={"x": "{{ tasks.source.result }}"},
                retries=2,
                retry_delay="1s",
                max_active=2,
            ),
            py("source", "numbers", kwargs={"count": 3}),
            py("pair", "pair", map={"x": [1, 2], "y": ["a", "b"]}),
            {
                "id": "echo",
                "action": {
                    "kind": "shell",
                    "command": "echo {{ tasks.square.result }} {{ tasks['load-eu'].result }}; echo tasks.source.result",
                    "env": {"ROWS": "{{ tasks.source.result }}", "TEXT": "n={{ tasks.source.result | length }}"},
                },
            },
            {"id": "load-eu", "action": {"kind": "shell", "command": "echo eu"}},
        ]
    )


# -------------------------------------------------------------------------------------------- plan


def test_plan_orders_tasks_topologically_and_keeps_upstream_first_specs() -> None:
    p = plan(mapped_and_results())
    order = [t.task_id for t in p.tasks]
    assert order.index("source") < order.index("square") < order.index("reduce")
    assert order.index("load-eu") < order.index("echo")
    assert ("source", "square") in p.edges and ("square", "reduce") in p.edges  # implied by the references
    upstream_first = pipeline([py("a", "extract"), py("b", "transform", kwargs={"data": "{{ tasks.a.result }}"})])
    assert [t.task_id for t in plan(upstream_first).tasks] == ["a", "b"]


def test_whole_references_become_outputs_and_text_references_jinja() -> None:
    tasks = {t.task_id: t for t in plan(mapped_and_results()).tasks}
    reduce_kwargs = dict(tasks["reduce"].kwargs)["op_kwargs"]["kwargs"]
    assert reduce_kwargs == {"value": Output("square"), "expected": [1, 4, 9]}
    square = tasks["square"]
    assert square.mapped and square.operator == "airflow.sdk:task"
    assert dict(square.partial) == {"power": 2} and dict(square.expand) == {"x": Output("source")}
    assert dict(square.kwargs)["multiple_outputs"] is False
    assert dict(square.kwargs)["max_active_tis_per_dag"] == 2 and dict(square.kwargs)["retries"] == 2
    assert dict(tasks["pair"].expand) == {"x": [1, 2], "y": ["a", "b"]}
    echo = dict(tasks["echo"].kwargs)
    # Mapped: always a list (Airflow gives a bare value for a single XCom); text outside {{ }} is left alone.
    assert echo["bash_command"] == (
        "echo {{ (ti.xcom_pull(task_ids=['square']) | reject('none') | list) }} "
        "{{ ti.xcom_pull(task_ids='load-eu') }}; echo tasks.source.result"
    )
    assert echo["env"]["ROWS"] == Output("source")
    assert echo["env"]["TEXT"] == "n={{ ti.xcom_pull(task_ids='source') | length }}"
    assert dict(tasks["source"].kwargs)["op_kwargs"]["map_source"] is True
    assert "map_source" not in dict(tasks["reduce"].kwargs)["op_kwargs"]


def test_result_jinja_attribute_access_binds_to_the_whole_list() -> None:
    r = Results(frozenset({"m"}), frozenset())
    assert r.text("{{ tasks.m.result[0] }}") == "{{ " + result_jinja("m", True) + "[0] }}"
    assert r.text("{{ tasks.u.result.source }}") == "{{ ti.xcom_pull(task_ids='u').source }}"
    assert r.text("{% for v in tasks.m.result %}{{ v }}{% endfor %}") == (
        "{% for v in " + result_jinja("m", True) + " %}{{ v }}{% endfor %}"
    )


def test_mapping_over_a_param_is_refused_with_the_workaround() -> None:
    p = pipeline(
        [py("square", "square", map={"x": "{{ params.values }}"})],
        params={"values": {"type": "array", "default": [1, 2]}},
    )
    with pytest.raises(CompileError) as err:
        plan(p)
    message = str(err.value)
    assert "mapping over a param" in message and "task 'square'" in message
    assert "map over its result" in message and "{{ tasks.<that task>.result }}" in message
    with pytest.raises(CompileError):
        render_pipeline(p)


def test_always_trigger_rule_on_a_task_mapped_over_a_literal_list_compiles() -> None:
    # Over a result, the model itself refuses it (Airflow does too): tests/unit/test_results_mapping.py.
    literal = pipeline([py("square", "square", map={"x": [1]}, trigger_rule="always")])
    assert plan(literal).tasks[0].mapped


# -------------------------------------------------------------------------------------------- built DAGs


def test_loader_builds_taskflow_mapped_operators(tmp_path: Path) -> None:
    dag = build_dag(mapped_and_results())
    square = dag.task_dict["square"]
    assert type(square).__name__ == "DecoratedMappedOperator" and square.multiple_outputs is False
    assert square.partial_kwargs["op_kwargs"] == {"power": 2}
    assert square.partial_kwargs["retries"] == 2 and square.partial_kwargs["max_active_tis_per_dag"] == 2
    assert comparable(square.op_kwargs_expand_input.value) == {"x": ("output", "source", "return_value")}
    assert sorted(square.upstream_task_ids) == ["source"]
    assert sorted(dag.task_dict["reduce"].upstream_task_ids) == ["square"]
    signature = inspect.signature(square.python_callable)
    assert [p.name for p in signature.parameters.values()] == ["power", "x", "context"]
    assert dag.task_dict["pair"].op_kwargs_expand_input.value == {"x": [1, 2], "y": ["a", "b"]}


def test_generated_file_is_readable_identical_to_the_loader_and_compiles(tmp_path: Path) -> None:
    p = mapped_and_results()
    source = render_pipeline(p)
    ast.parse(source)
    assert ").partial(power=2)" in source or ".partial(power=2)" in source
    assert ".expand(x=source.output)" in source
    assert '.expand(x=[1, 2], y=["a", "b"])' in source
    assert '"value": square,' in source or '"value": square}' in source  # a mapped task's variable is its XComArg
    generated = exec_dag(source, tmp_path)
    loaded = build_dag(p)
    assert comparable(summary(generated)) == comparable(summary(loaded))
    assert mapping_summary(generated) == mapping_summary(loaded)
    assert render_pipeline(p) == source  # deterministic


def long_mapped() -> Pipeline:
    long = ["a value long enough to push the line over the limit"] * 3
    return pipeline(
        [
            py("source", "numbers", kwargs={"count": 3}),
            py("short", "square", map={"x": [1]}),
            py("one_link", "square", map={"x": long}, retries=1, retry_delay="1s", description="no fixed kwargs"),
            py("two_links", "pair", kwargs={"y": long[0]}, map={"x": "{{ tasks.source.result }}"}),
            py("wide", "pair", kwargs={"x": 1}, map={"y": long}, retries=3, retry_delay="2s", max_active=1),
        ],
        id="long_mapped",
    )


def test_mapped_chains_are_ruff_formatted(tmp_path: Path) -> None:
    files = write_dag_files([long_mapped(), mapped_and_results()], tmp_path)
    assert ruff_format_problems(files, tmp_path) == ""
    generated = exec_dag(files[0].read_text(), tmp_path)
    assert mapping_summary(generated) == mapping_summary(build_dag(long_mapped()))


# -------------------------------------------------------------------------------------------- runtime


class Lazy:
    """A read-only sequence like Airflow's LazyXComSequence (a ``collections.abc.Sequence``, not a list)."""

    def __init__(self, *items: Any):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]


def test_plain_turns_lazy_sequences_and_tuples_into_lists() -> None:
    from collections.abc import Sequence

    Sequence.register(Lazy)
    value = {"a": Lazy(1, (2, 3)), "b": ("x", {"c": Lazy()}), "s": "text", "n": None}
    assert plain(value) == {"a": [1, [2, 3]], "b": ["x", {"c": []}], "s": "text", "n": None}
    assert type(plain(value)["a"]) is list


def test_checked_results_refuse_what_no_backend_keeps() -> None:
    assert checked("t", (1, 2)) == [1, 2]
    assert checked("t", None) is None
    with pytest.raises(ResultRefused, match=r"task 'big' returned a result of 68\.4 KiB"):
        checked("big", "x" * 70_000)
    with pytest.raises(ResultRefused, match="not a JSON value"):
        checked("when", datetime.now(UTC))
    with pytest.raises(ResultRefused, match=r"task 'five' returned an? int, but a downstream task maps over"):
        checked("five", 5, map_source=True)
    with pytest.raises(ResultRefused, match="task 'none' returned nothing"):
        checked("none", None, map_source=True)
    with pytest.raises(ResultRefused, match=f"at most {MAX_MAP_LENGTH}"):
        checked("many", list(range(MAX_MAP_LENGTH + 1)), map_source=True)
    assert checked("ok", (1, 2), map_source=True) == [1, 2]


def fake_context(task_id: str, try_number: int = 1, **kwargs: Any) -> dict[str, Any]:
    """The names of an Airflow task context that meta's runtime reads."""
    now = datetime(2024, 5, 1, tzinfo=UTC)
    return {
        "ti": SimpleNamespace(task_id=task_id, try_number=try_number),
        "dag": SimpleNamespace(dag_id="results"),
        "dag_run": SimpleNamespace(run_after=now, dag_id="results"),
        "run_id": "manual__x",
        "logical_date": now,
        "params": {},
        **kwargs,
    }


def test_mapped_python_calls_the_target_with_its_names_and_the_run_context() -> None:
    run = mapped_python(f"{CALLABLES}:flaky_on", ["flaky", "x"])
    params = inspect.signature(run).parameters
    assert [(p.name, p.kind) for p in params.values()] == [
        ("flaky", inspect.Parameter.KEYWORD_ONLY),
        ("x", inspect.Parameter.KEYWORD_ONLY),
        ("context", inspect.Parameter.VAR_KEYWORD),
    ]
    assert run(**fake_context("flaky", try_number=2, flaky=2, x=2)) == 2  # try_number from the context
    with pytest.raises(RuntimeError, match="fails its first try"):
        run(**fake_context("flaky", try_number=1, flaky=2, x=2))
    big = mapped_python(f"{CALLABLES}:too_big", [])
    with pytest.raises(ResultRefused, match="task 'big'"):
        big(**fake_context("big"))


def test_taskflow_accepts_the_mapped_function_without_multiple_outputs() -> None:
    from airflow.sdk import DAG, task

    with DAG("taskflow_check", schedule=None) as dag:
        fn = mapped_python(f"{CALLABLES}:square", ["power", "x"])
        task(fn, task_id="sq", multiple_outputs=False).partial(power=3).expand(x=[1, 2])
        task(mapped_python(f"{CALLABLES}:extract", []), task_id="plain")()
    assert dag.task_dict["sq"].multiple_outputs is False
    assert dag.task_dict["plain"].multiple_outputs is False  # inferred from the signature: no dict annotation


# -------------------------------------------------------------------------------------------- results read back


def test_task_results_group_instances_by_map_index() -> None:
    tis = [
        {"task_id": "source", "map_index": -1, "state": "success", "try_number": 1},
        {"task_id": "square", "map_index": 2, "state": "success", "try_number": 1},
        {"task_id": "square", "map_index": 0, "state": "failed", "try_number": 2},
        {"task_id": "square", "map_index": 1, "state": "success", "try_number": 2},
        {"task_id": "empty", "map_index": -1, "state": "skipped", "try_number": 0},
        {"task_id": "never", "map_index": -1, "state": "upstream_failed", "try_number": 0},
    ]
    out = task_results(tis, {"square", "empty", "never"})
    assert out["source"] == TaskResult(TaskState.SUCCESS, 1)
    assert out["square"].state == TaskState.FAILED and out["square"].attempts == 5
    assert out["square"].instances == {
        0: TaskResult(TaskState.FAILED, 2),
        1: TaskResult(TaskState.SUCCESS, 2),
        2: TaskResult(TaskState.SUCCESS, 1),
    }
    assert list(out["square"].instances) == [0, 1, 2]
    assert out["empty"] == TaskResult(TaskState.SKIPPED, 0, instances={})
    assert out["never"] == TaskResult(TaskState.UPSTREAM_FAILED, 0, instances={})
    assert task_results(tis[:1])["source"].instances is None
    without_pipeline = task_results(tis)  # expanded tasks are known by their map indexes
    assert without_pipeline["square"] == out["square"] and without_pipeline["empty"].instances is None


def test_sql_parameters_get_a_mapped_result_as_a_plain_list() -> None:
    from collections.abc import Sequence

    Sequence.register(Lazy)
    p = pipeline(
        [
            py("ids", "square", map={"x": [1, 2]}),
            py("count", "numbers", kwargs={"count": 2}),
            {
                "id": "load",
                "action": {
                    "kind": "sql",
                    "conn": "db",
                    "statement": "select {{ tasks.count.result | length }}",
                    "parameters": {"ids": "{{ tasks.ids.result }}"},
                },
            },
            {
                "id": "plain",
                "action": {
                    "kind": "sql",
                    "conn": "db",
                    "statement": "select 1",
                    "parameters": {"n": "{{ tasks.count.result }}"},
                },
            },
        ]
    )
    dag = build_dag(p)
    load = dag.task_dict["load"]
    assert type(load).__name__ == "MetaSQLExecuteQueryOperator"
    assert type(dag.task_dict["plain"]).__name__ == "SQLExecuteQueryOperator"  # unmapped results arrive as JSON
    assert load.sql == "select {{ ti.xcom_pull(task_ids='count') | length }}"
    assert sorted(load.upstream_task_ids) == ["count", "ids"]
    load.sql, load.parameters = "select 1", {"ids": Lazy(1, 4)}  # Lazy: what Airflow's XComArg of a mapped task gives
    load.render_template_fields({"params": {}})
    assert load.parameters == {"ids": [1, 4]} and type(load.parameters["ids"]) is list


def test_mapped_arguments_named_like_the_airflow_context_are_refused() -> None:
    p = pipeline([py("sq", "square", kwargs={"params": 1}, map={"ds": [1], "x": [2]})])
    with pytest.raises(CompileError, match=r"Airflow's task context \(ds, params\) on a mapped task"):
        plan(p)
    unmapped = pipeline([py("sq", "square", kwargs={"params": 1, "x": 2})])  # nested in op_kwargs: no clash
    assert not plan(unmapped).tasks[0].mapped


def test_strings_of_a_literal_map_list_are_templates_as_in_airflow() -> None:
    p = pipeline(
        [
            py("n", "numbers", kwargs={"count": 2}),
            py("pair", "pair", map={"x": [1], "y": ["{{ params.who }}", "{{ tasks.n.result | length }}"]}),
        ],
        params={"who": {"type": "string", "default": "CH"}},
    )
    pair = {t.task_id: t for t in plan(p).tasks}["pair"]
    assert dict(pair.expand)["y"] == ["{{ params.who }}", "{{ ti.xcom_pull(task_ids='n') | length }}"]


def test_task_ids_never_shadow_the_names_the_tasks_use(tmp_path: Path) -> None:
    ids = ["task", "mapped_python", "call_python", "timedelta", "source"]
    p = pipeline(
        [
            py("source", "numbers", kwargs={"count": 2}),
            py("mapped_python", "square", map={"x": "{{ tasks.source.result }}"}, retry_delay="1s"),
            py("task", "square", kwargs={"power": 1}, map={"x": [1]}),
            py("call_python", "expect", kwargs={"value": "{{ tasks.mapped_python.result }}", "expected": [1, 4]}),
            py("timedelta", "extract", retry_delay="2s"),
        ]
    )
    source = render_pipeline(p)
    generated = exec_dag(source, tmp_path)
    assert sorted(generated.task_dict) == sorted(ids)
    assert mapping_summary(generated) == mapping_summary(build_dag(p))
    assert comparable(summary(generated)) == comparable(summary(build_dag(p)))
