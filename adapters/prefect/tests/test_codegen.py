"""Generated flow files: deterministic, literal-safe, and they run."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from meta_prefect.codegen import module_name, render, spec, write_flows

from meta.spec.errors import CompileError
from meta.spec.model import Pipeline

NASTY = 'it\'s "quoted"\n\'\'\'triple\'\'\' """and""" \\ backslash; import os; os.system("touch /tmp/pwned") #'


def nasty_pipeline() -> Pipeline:
    return Pipeline.model_validate(
        {
            "id": "nasty-pipe.v1",
            "description": NASTY,
            "owner": NASTY,
            "tags": [NASTY],
            "params": {
                "note": {"type": "string", "default": NASTY, "description": NASTY},
                "count": {"type": ["integer", "null"], "default": None},
                "needed": {"type": "string"},
            },
            "tasks": [
                {"id": "a", "action": {"kind": "shell", "command": f"echo {NASTY!r}", "env": {"X": NASTY}}},
                {
                    "id": "b",
                    "action": {"kind": "python", "callable": "os:getcwd", "kwargs": {NASTY: [NASTY, 1.5]}},
                    "upstream": ["a"],
                    "trigger_rule": "all_done",
                    "description": NASTY,
                },
            ],
        }
    )


def load(path: Path) -> ModuleType:
    spec_ = importlib.util.spec_from_file_location(f"generated_{path.stem}", path)
    assert spec_ is not None and spec_.loader is not None
    module = importlib.util.module_from_spec(spec_)
    sys.modules[spec_.name] = module
    spec_.loader.exec_module(module)
    return module


def test_output_is_deterministic_and_unchanged_files_are_not_rewritten(tmp_path: Path) -> None:
    p = nasty_pipeline()
    assert render(p) == render(nasty_pipeline())
    [path] = write_flows([p], tmp_path)
    before = path.stat().st_mtime_ns
    assert write_flows([p], tmp_path) == [path]
    assert path.stat().st_mtime_ns == before
    assert path.name == "nasty_pipe_v1.py"


def test_user_values_are_only_literals(tmp_path: Path) -> None:
    source = render(nasty_pipeline())
    tree = ast.parse(source)
    # Top level: docstring, imports, PIPELINE = ..., the flow function, the __main__ guard. Nothing else.
    kinds = [type(node).__name__ for node in tree.body]
    assert kinds == [
        "Expr",
        "ImportFrom",
        "ImportFrom",
        "ImportFrom",
        "ImportFrom",
        "ImportFrom",
        "ImportFrom",
        "Assign",
        "FunctionDef",
        "If",
    ]
    assign = tree.body[7]
    assert isinstance(assign, ast.Assign) and isinstance(assign.value, ast.Call)
    # The pipeline spec is a pure literal equal to the model's data.
    assert ast.literal_eval(assign.value.args[0]) == spec(nasty_pipeline())
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert calls == {
        "Pipeline.model_validate",
        "flow",
        "ThreadPoolTaskRunner",
        "hooks.flow_hooks",
        "run_pipeline",
        "nasty_pipe_v1",
    }
    assert "touch /tmp/pwned" not in {ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Expr)}


def test_generated_module_rebuilds_the_same_pipeline_and_flow(tmp_path: Path) -> None:
    [path] = write_flows([nasty_pipeline()], tmp_path)
    module = load(path)
    assert module.PIPELINE == nasty_pipeline()
    flow = module.nasty_pipe_v1
    assert flow.name == "nasty-pipe.v1"
    assert flow.description == NASTY
    props = flow.parameters.properties
    assert list(props) == ["note", "count", "needed"]
    assert props["note"]["default"] == NASTY
    assert flow.parameters.required == ["needed"]


def test_module_names_and_collisions(tmp_path: Path) -> None:
    assert module_name("a.b-c") == "a_b_c"
    assert module_name("1abc") == "p_1abc"
    one = Pipeline.model_validate({"id": "a.b", "tasks": [{"id": "t", "action": {"kind": "noop"}}]})
    two = Pipeline.model_validate({"id": "a-b", "tasks": [{"id": "t", "action": {"kind": "noop"}}]})
    with pytest.raises(CompileError, match=r"both become a_b\.py"):
        write_flows([one, two], tmp_path)


def test_values_without_a_literal_form_are_refused() -> None:
    p = Pipeline.model_validate(
        {"id": "p", "params": {"x": {"default": float("nan")}}, "tasks": [{"id": "t", "action": {"kind": "noop"}}]}
    )
    with pytest.raises(CompileError, match="cannot be written as a Python literal"):
        render(p)


def test_meta_compile_cli_writes_the_flow_file(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from meta.cli import cli

    spec_file = tmp_path / "sales.yaml"
    spec_file.write_text(
        "pipeline: sales\nparams: {country: {type: string, default: CH}}\n"
        "tasks:\n  a: {shell: 'echo {{ params.country }}'}\n  b: {noop: {}, upstream: [a]}\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["compile", "--target", "prefect", str(spec_file), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out / "sales.py")
    module = load(out / "sales.py")
    assert module.PIPELINE.task_ids == ("a", "b") and module.sales.name == "sales"
    assert "  b <- a [all_success]" in (out / "sales.py").read_text()
