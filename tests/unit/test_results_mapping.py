"""Results between tasks and dynamic mapping: the model's checks, the expansion rules, the result checks, and the
local runner end to end (real threads, real bash, the real SQLite history). The same semantics on Airflow and
Prefect are proven by the conformance matrix (tests/conformance, the result_* and map_* cases)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from meta.builtin.local import LocalRunner
from meta.builtin.local.state import History
from meta.execution import secrets
from meta.execution.results import MAX_RESULT_BYTES, ResultRefused, checked_result
from meta.semantics.results import ExpansionError, RunResults, expand_map, render_with_results
from meta.spec.model import Pipeline
from meta.spec.references import Reference, referenced_results, replace_results, whole_reference

HERE = "tests.unit.test_results_mapping"


# -- callables -----------------------------------------------------------------------------------------------------


def numbers(count: int) -> list[int]:
    return list(range(1, count + 1))


def square(x: int) -> int:
    return x * x


def total(values: list[int]) -> int:
    return sum(values)


def echo(value: Any) -> Any:
    return value


def leak() -> dict[str, str]:
    return {"token": secrets.resolve("${secret:RESULT_TEST_TOKEN}")}


def not_json() -> object:
    return object()


_active = {"now": 0, "peak": 0}
_active_lock = threading.Lock()


def busy(x: int) -> int:
    with _active_lock:
        _active["now"] += 1
        _active["peak"] = max(_active["peak"], _active["now"])
    time.sleep(0.15)
    with _active_lock:
        _active["now"] -= 1
    return x


def py(task_id: str, function: str, **fields: Any) -> dict[str, Any]:
    kwargs = fields.pop("kwargs", {})
    return {"id": task_id, "action": {"kind": "python", "callable": f"{HERE}:{function}", "kwargs": kwargs}, **fields}


def pipeline(*tasks: dict[str, Any], **fields: Any) -> Pipeline:
    return Pipeline.model_validate({"id": "results", "tasks": list(tasks), **fields})


def run(p: Pipeline, home: Path, **request: Any) -> Any:
    return LocalRunner(home=home).run(p)


# -- references ----------------------------------------------------------------------------------------------------


def test_whole_references_and_references_inside_text() -> None:
    assert whole_reference("{{ tasks.extract.result }}") == Reference("result", "extract")
    assert whole_reference(" {{tasks['load-eu'].result}} ") == Reference("result", "load-eu")
    assert whole_reference("{{ params.items }}") == Reference("param", "items")
    assert whole_reference("rows: {{ tasks.extract.result }}") is None
    assert whole_reference("{{ tasks.a.result }} {{ tasks.b.result }}") is None
    assert referenced_results({"a": ["x {{ tasks.a.result.rows }}", "{{ tasks['b-2'].result }}"]}) == ["a", "b-2"]
    pulled = replace_results("n={{ tasks.a.result + 1 }}", lambda t: f"ti.xcom_pull(task_ids={t!r})")
    assert pulled == "n={{ ti.xcom_pull(task_ids='a') + 1 }}"


def test_a_reference_implies_the_dependency_even_on_a_later_task() -> None:
    p = pipeline(py("load", "echo", kwargs={"value": "{{ tasks.extract.result }}"}), py("extract", "numbers"))
    assert p.task("load").upstream == ("extract",)
    assert Pipeline.model_validate(p.model_dump()) == p  # lossless round trip


def test_references_that_cannot_resolve_are_named() -> None:
    with pytest.raises(ValueError) as caught:
        pipeline(
            {"id": "load", "action": {"kind": "sql", "conn": "w", "statement": "select 1"}},
            {
                "id": "use",
                "action": {"kind": "shell", "command": "echo {{ tasks.load.result }} {{ tasks.lod.result }}"},
            },
        )
    text = str(caught.value)
    assert "uses the result of 'load', a sql task, which has none" in text
    assert "uses the result of 'lod', which is not a task of this pipeline; did you mean 'load'?" in text


@pytest.mark.parametrize(
    ("task", "params", "message"),
    [
        ({"id": "m", "action": {"kind": "shell", "command": "true"}, "map": {"x": [1]}}, {}, "map applies to python"),
        (py("m", "square", kwargs={"x": 1}, map={"x": [1]}), {}, "'x' is also in kwargs"),
        (py("m", "square", map={"x": "1,2"}), {}, "map.x must be a list, '{{ params.NAME }}'"),
        (py("m", "square", map={"x": "{{ params.itemz }}"}), {"items": {"default": [1]}}, "did you mean 'items'"),
        (py("m", "square", map={"x": "{{ params.n }}"}), {"n": {"type": "integer", "default": 1}}, "expected array"),
        (py("m", "square", map={"x": list(range(1025))}), {}, "1025 elements; at most 1024"),
    ],
)
def test_map_entries_that_cannot_expand_are_refused(task: dict, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("{", r"\{").replace("}", r"\}")):
        pipeline(task, params=params)


# -- expansion and results -----------------------------------------------------------------------------------------


def test_expansion_is_airflows_cross_product_last_name_fastest() -> None:
    p = pipeline(py("src", "numbers"), py("m", "square", map={"x": "{{ tasks.src.result }}", "y": ["a", "b"]}))
    combos = expand_map(p.task("m"), {}, lambda _: [1, 2])
    assert combos == [{"x": 1, "y": "a"}, {"x": 1, "y": "b"}, {"x": 2, "y": "a"}, {"x": 2, "y": "b"}]
    with pytest.raises(ExpansionError, match="the result of 'src' is an int; expected a list"):
        expand_map(p.task("m"), {}, lambda _: 5)
    with pytest.raises(ExpansionError, match="has no value"):
        expand_map(p.task("m"), {}, lambda _: None)


def test_a_mapped_tasks_result_is_the_list_of_its_instances_results_in_map_index_order() -> None:
    p = pipeline(py("m", "square", map={"x": [1, 2, 3]}), py("plain", "numbers", kwargs={"count": 1}))
    results = RunResults(p)
    results.put("m", 2, 9)
    results.put("m", 0, 1)  # instance 1 failed: it has no result
    assert results.value_of("m") == [1, 9]
    assert results.value_of("plain") is None  # no result: None, as Airflow's XComArg resolves it
    results.put("plain", -1, [1])
    assert results.value_of("plain") == [1]


def test_a_whole_reference_is_the_value_and_is_never_rendered_again() -> None:
    value = render_with_results(
        {"data": "{{ tasks.a.result }}", "text": "n={{ tasks.a.result.n }} on {{ ds }}"},
        {"ds": "2026-12-04", "tasks": {"a": {"result": {"n": 3, "note": "{{ ds }}"}}}},
        {"a": {"n": 3, "note": "{{ ds }}"}},
    )
    assert value == {"data": {"n": 3, "note": "{{ ds }}"}, "text": "n=3 on 2026-12-04"}


def test_results_are_json_bounded_and_hold_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    assert checked_result("t", (1, "a", {"k": None})) == [1, "a", {"k": None}]
    with pytest.raises(ResultRefused, match="task 't' returned a result that is not a JSON value"):
        checked_result("t", {1, 2})
    with pytest.raises(ResultRefused, match=r"task 't' returned a result of 64\.0 KiB; results are limited to 64\.0"):
        checked_result("t", "x" * (MAX_RESULT_BYTES - 1))
    with pytest.raises(ResultRefused, match=r"credential under .db\.password."):
        checked_result("t", {"db": {"password": "hunter22"}})
    monkeypatch.setenv("META_SECRET_RESULT_TEST_TOKEN", "s3cr3t-value")
    secrets.resolve("${secret:RESULT_TEST_TOKEN}")
    with pytest.raises(ResultRefused, match="holding a secret's value") as caught:
        checked_result("t", ["prefix s3cr3t-value suffix"])
    assert "s3cr3t-value" not in str(caught.value)


# -- the local runner ----------------------------------------------------------------------------------------------


def test_results_flow_down_a_chain_and_mapping_fans_out_and_reduces(tmp_path: Path) -> None:
    p = pipeline(
        py("source", "numbers", kwargs={"count": 4}),
        py("square", "square", map={"x": "{{ tasks.source.result }}"}),
        py("total", "total", kwargs={"values": "{{ tasks.square.result }}"}),
        {"id": "say", "action": {"kind": "shell", "command": "echo noise; echo total={{ tasks.total.result }}"}},
        py("check", "echo", kwargs={"value": "{{ tasks.say.result }}"}),
    )
    outcome = run(p, tmp_path)
    assert outcome.result.to_json()["state"] == "success"
    square_json = outcome.result.to_json()["tasks"]["square"]
    assert square_json["instances"] == {str(i): {"state": "success", "attempts": 1} for i in range(4)}
    by_task = {(a.task_id, a.map_index): a.result for a in outcome.attempts}
    assert [by_task[("square", i)] for i in range(4)] == [1, 4, 9, 16]
    assert by_task[("total", -1)] == 30
    assert by_task[("say", -1)] == "total=30"  # the last line of output, like BashOperator's XCom
    assert by_task[("check", -1)] == "total=30"
    logs = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("logs/results/*/square/*/*.log"))
    assert [log.split("/", 3)[3] for log in logs] == [f"square/map_index={i}/attempt-1.log" for i in range(4)]


def test_history_keeps_each_instance_and_each_attempts_result(tmp_path: Path) -> None:
    p = pipeline(py("square", "square", map={"x": [2, 3]}), py("empty", "square", map={"x": []}))
    outcome = run(p, tmp_path)
    history = History(tmp_path / "meta.db")
    rows = {
        (r["task_id"], r["map_index"]): r["state"] for r in history.task_instances("results", outcome.context.run_id)
    }
    assert rows == {("square", 0): "success", ("square", 1): "success", ("empty", -1): "skipped"}
    attempts = {
        (a["task_id"], a["map_index"]): json.loads(a["result"])
        for a in history.attempts("results", outcome.context.run_id)
    }
    assert attempts == {("square", 0): 4, ("square", 1): 9}


def test_a_history_file_from_before_map_indexes_is_upgraded_in_place(tmp_path: Path) -> None:
    db = tmp_path / "meta.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """CREATE TABLE runs (pipeline_id TEXT NOT NULL, run_id TEXT NOT NULL, state TEXT NOT NULL,
                 backend TEXT NOT NULL, logical_date TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT,
                 params TEXT NOT NULL, log_dir TEXT, PRIMARY KEY (pipeline_id, run_id));
               CREATE TABLE task_instances (pipeline_id TEXT NOT NULL, run_id TEXT NOT NULL, task_id TEXT NOT NULL,
                 state TEXT NOT NULL, attempts INTEGER NOT NULL, started_at TEXT, ended_at TEXT, duration_s REAL,
                 error TEXT, PRIMARY KEY (pipeline_id, run_id, task_id));
               CREATE TABLE attempts (pipeline_id TEXT NOT NULL, run_id TEXT NOT NULL, task_id TEXT NOT NULL,
                 try_number INTEGER NOT NULL, state TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT NOT NULL,
                 log_path TEXT, error TEXT, PRIMARY KEY (pipeline_id, run_id, task_id, try_number));
               INSERT INTO runs VALUES ('old', 'r1', 'success', 'local', '2026-01-01', '2026-01-01', NULL, '{}', NULL);
               INSERT INTO task_instances VALUES ('old', 'r1', 'a', 'success', 1, NULL, NULL, NULL, NULL);
               INSERT INTO attempts VALUES ('old', 'r1', 'a', 1, 'success', '2026-01-01', '2026-01-01', NULL, NULL);"""
        )
    run(pipeline(py("square", "square", map={"x": [2]})), tmp_path)
    history = History(db)
    assert [(r["task_id"], r["map_index"]) for r in history.task_instances("old", "r1")] == [("a", -1)]
    assert [(a["task_id"], a["map_index"], a["result"]) for a in history.attempts("old", "r1")] == [("a", -1, None)]
    assert {r["pipeline_id"] for r in history.runs()} == {"old", "results"}


def test_max_active_bounds_the_instances_running_at_once(tmp_path: Path) -> None:
    _active.update(now=0, peak=0)
    p = pipeline(py("busy", "busy", map={"x": list(range(6))}, max_active=2))
    outcome = LocalRunner(home=tmp_path, parallelism=6).run(p)
    assert str(outcome.result.state) == "success"
    assert _active["peak"] == 2


def test_a_refused_result_fails_the_task_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_SECRET_RESULT_TEST_TOKEN", "another-s3cr3t")
    p = pipeline(py("leak", "leak"), py("odd", "not_json"))
    outcome = run(p, tmp_path)
    assert {t: str(r.state) for t, r in outcome.result.tasks.items()} == {"leak": "failed", "odd": "failed"}
    assert "holding a secret's value" in outcome.errors["leak"]
    assert "not a JSON value (object" in outcome.errors["odd"]
    stored = (tmp_path / "meta.db").read_bytes()
    assert b"another-s3cr3t" not in stored


def test_mapping_over_a_param(tmp_path: Path) -> None:
    p = pipeline(
        py("square", "square", map={"x": "{{ params.items }}"}),
        py("total", "total", kwargs={"values": "{{ tasks.square.result }}"}),
        params={"items": {"type": "array", "default": [1, 2]}},
    )
    outcome = run(p, tmp_path)
    assert outcome.result.tasks["square"].instances is not None
    assert len(outcome.result.tasks["square"].instances) == 2
    assert next(a.result for a in outcome.attempts if a.task_id == "total") == 5


# -- the Python DSL ------------------------------------------------------------------------------------------------


def test_the_dsl_passes_results_and_maps_like_taskflow(tmp_path: Path) -> None:
    from meta.dsl import pipeline as dsl_pipeline
    from meta.dsl import python_task
    from tests.unit import dsl_tasks

    assert dsl_tasks.square(3, power=2) == 9  # outside a pipeline: the plain function
    with dsl_pipeline("taskflow") as built:
        numbers_ = dsl_tasks.extract()
        squares = dsl_tasks.square.partial(power=2).expand(x=numbers_)
        dsl_tasks.total(squares)
        dsl_tasks.total.override(task_id="total_again")(values=squares)
        python_task("echo", f"{HERE}:echo", kwargs={"value": [numbers_, {"n": numbers_}]})
    p = built.pipeline
    assert p is not None
    assert p.task("square").map == {"x": "{{ tasks.extract.result }}"}
    assert p.task("square").action.kwargs == {"power": 2}  # type: ignore[union-attr]
    assert p.task("square").retries == 1
    assert p.task("total").upstream == ("square",)
    assert p.task("echo").upstream == ("extract",)
    outcome = run(p, tmp_path)
    results = {a.task_id: a.result for a in outcome.attempts if a.map_index == -1}
    assert results == {"extract": [1, 2, 3], "total": 14, "total_again": 14, "echo": [[1, 2, 3], {"n": [1, 2, 3]}]}


def test_task_functions_defined_in_the_spec_file_run_by_the_files_name(tmp_path: Path) -> None:
    from meta.authoring.import_roots import import_roots
    from meta.authoring.load import load_file

    spec = tmp_path / "inline_flow.py"
    spec.write_text(
        "from meta.dsl import pipeline, task\n\n\n"
        "@task\ndef numbers() -> list[int]:\n    return [2, 3]\n\n\n"
        "@task\ndef square(x: int) -> int:\n    return x * x\n\n\n"
        "with pipeline('inline_flow'):\n    square.expand(x=numbers())\n",
        encoding="utf-8",
    )
    (p,) = load_file(spec)
    assert p.task("square").action.callable == "inline_flow:square"  # type: ignore[union-attr]
    with import_roots([tmp_path]):
        outcome = run(p, tmp_path / "home")
    assert sorted(a.result for a in outcome.attempts if a.task_id == "square") == [4, 9]


def test_literal_map_elements_are_templates_as_in_airflow(tmp_path: Path) -> None:
    p = pipeline(
        py("greet", "echo", map={"value": ["hi {{ params.who }}", "bye"]}),
        params={"who": {"type": "string", "default": "CH"}},
    )
    outcome = run(p, tmp_path)
    assert [a.result for a in sorted(outcome.attempts, key=lambda a: a.map_index)] == ["hi CH", "bye"]
    with pytest.raises(ValueError, match=r"map\.x: a literal list holds results \(src\)"):
        pipeline(py("src", "numbers"), py("m", "square", map={"x": ["{{ tasks.src.result }}"]}))


def test_a_shell_env_value_must_be_text(tmp_path: Path) -> None:
    p = pipeline(
        py("source", "numbers", kwargs={"count": 2}),
        {"id": "use", "action": {"kind": "shell", "command": "echo $N", "env": {"N": "{{ tasks.source.result }}"}}},
    )
    outcome = run(p, tmp_path)
    assert "env N received list '[1, 2]'; environment values are text" in outcome.errors["use"]


def test_always_on_a_task_mapped_over_a_result_is_refused() -> None:
    with pytest.raises(ValueError, match="trigger_rule always on a task mapped over a result"):
        pipeline(py("src", "numbers"), py("m", "square", map={"x": "{{ tasks.src.result }}"}, trigger_rule="always"))
