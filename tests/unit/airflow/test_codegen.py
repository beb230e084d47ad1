"""Generated DAG files: deterministic, ruff-formatted, injection-proof, and equivalent to the loader's DAG."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import pytest
from meta_airflow.build import build_dag
from meta_airflow.codegen import render_pipeline, string_literal, write_dag_files

from meta.spec.model import Pipeline
from tests.conformance.cases import CASES
from tests.unit.airflow.pipelines import rich, ruff_format_problems, summary

RUFF = Path(sys.executable).parent / "ruff"

HOSTILE = [
    'a"b',
    "a'b",
    "'''",
    '"""); import os; os.system("touch /tmp/pwned"); ("',
    "line1\nline2\r\n\tend",
    "back\\slash\\",
    "\\'; __import__('os')",
    "{{ params.x }}",
    "\x00\x1b[31m",
    "üñí©ødé ✓",
]


def exec_dag(source: str, tmp_path: Path):
    """Execute a generated file as Airflow would (a module in the dags folder) and return its DAG."""
    path = tmp_path / "generated_dag.py"
    path.write_text(source)
    namespace: dict = {"__name__": "generated_dag", "__file__": str(path)}
    exec(compile(source, str(path), "exec"), namespace)
    return namespace["dag"]


@pytest.mark.parametrize("text", HOSTILE)
def test_string_literal_round_trips(text: str) -> None:
    assert ast.literal_eval(string_literal(text)) == text


def hostile_pipeline() -> Pipeline:
    tasks = [
        {
            "id": "t0",
            "action": {"kind": "shell", "command": HOSTILE[0], "env": {"X": HOSTILE[3]}},
            "description": HOSTILE[2],
        },
    ]
    for i, text in enumerate(HOSTILE[1:], start=1):
        tasks.append(
            {
                "id": f"t{i}",
                "action": {
                    "kind": "python",
                    "callable": "tests.conformance.callables:choose_left",
                    "kwargs": {text: text, "nested": [text, {"k": text}]},
                },
                "upstream": [f"t{i - 1}"],
            }
        )
    tasks.append({"id": "sql", "action": {"kind": "sql", "conn": "db", "statement": HOSTILE[3]}})
    return Pipeline.model_validate(
        {
            "id": "hostile",
            "description": HOSTILE[3] + HOSTILE[4],
            "owner": HOSTILE[1],
            "tags": HOSTILE[:5],
            "params": {"p": {"type": "string", "default": HOSTILE[6], "description": HOSTILE[2]}},
            "tasks": tasks,
        }
    )


ALLOWED_CALLS = {
    "DAG",
    "BashOperator",
    "PythonOperator",
    "SQLExecuteQueryOperator",
    "Param",
    "timedelta",
}


def test_hostile_values_stay_literals(tmp_path: Path) -> None:
    source = render_pipeline(hostile_pipeline(), sources=["x\n__import__('os')"])
    tree = ast.parse(source)
    calls = {
        node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }
    assert calls <= ALLOWED_CALLS, calls
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert "os" not in names and "__import__" not in names
    imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom | ast.Import) for a in n.names}
    assert "os" not in imports
    dag = exec_dag(source, tmp_path)
    assert dag.task_dict["t0"].bash_command == HOSTILE[0]
    assert dag.task_dict["t0"].env["X"] == HOSTILE[3]
    for i, text in enumerate(HOSTILE[1:], start=1):
        assert dag.task_dict[f"t{i}"].op_kwargs["kwargs"] == {text: text, "nested": [text, {"k": text}]}
    assert dag.description == HOSTILE[3] + HOSTILE[4]
    assert dag.params.get_param("p").value == HOSTILE[6]
    assert not Path("/tmp/pwned").exists()


def test_deterministic_and_rewritten_only_on_change(tmp_path: Path) -> None:
    pipelines = [rich(), *(c.pipeline for c in CASES)]
    first = {p.name: p.read_bytes() for p in write_dag_files(pipelines, tmp_path / "a", [Path("specs/x.yaml")])}
    second = {p.name: p.read_bytes() for p in write_dag_files(pipelines, tmp_path / "b", [Path("other/x.yaml")])}
    assert first == second
    path = tmp_path / "a" / "rich.py"
    mtime = path.stat().st_mtime_ns
    write_dag_files([rich()], tmp_path / "a", [Path("x.yaml")])
    assert path.stat().st_mtime_ns == mtime


def test_output_is_ruff_formatted(tmp_path: Path) -> None:
    files = write_dag_files([rich(), hostile_pipeline(), *(c.pipeline for c in CASES)], tmp_path)
    assert ruff_format_problems(files, tmp_path) == ""


def comparable(value: Any) -> Any:
    """A DAG summary with each XComArg as ("output", task id): two DAGs' XComArgs name different operator objects."""
    from airflow.sdk.definitions.xcom_arg import XComArg

    if isinstance(value, XComArg):
        return ("output", value.operator.task_id, getattr(value, "key", None))
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [comparable(v) for v in value]
    return value


def mapping_summary(dag: Any) -> dict[str, Any]:
    """What a mapped task passes to Airflow: its fixed kwargs (partial) and the values it expands over."""
    return {
        tid: comparable({"partial": t.partial_kwargs["op_kwargs"], "expand": t.op_kwargs_expand_input.value})
        for tid, t in sorted(dag.task_dict.items())
        if getattr(t, "is_mapped", False)
    }


@pytest.mark.parametrize("pipeline", [rich(), hostile_pipeline(), *(c.pipeline for c in CASES)], ids=lambda p: p.id)
def test_codegen_and_loader_build_the_same_dag(pipeline: Pipeline, tmp_path: Path) -> None:
    generated = exec_dag(render_pipeline(pipeline), tmp_path)
    loaded = build_dag(pipeline)
    assert comparable(summary(generated)) == comparable(summary(loaded))
    assert mapping_summary(generated) == mapping_summary(loaded)


def test_task_variable_names_never_clash(tmp_path: Path) -> None:
    ids = ["dag", "DAG", "BashOperator", "a-b", "a_b", "1x", "class", "pendulum"]
    p = Pipeline.model_validate(
        {"id": "names", "tasks": [{"id": i, "action": {"kind": "shell", "command": "true"}} for i in ids]}
    )
    dag = exec_dag(render_pipeline(p), tmp_path)
    assert sorted(dag.task_dict) == sorted(ids)
    assert all(type(t).__name__ == "BashOperator" for t in dag.task_dict.values())
