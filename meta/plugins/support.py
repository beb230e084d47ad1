"""The checks every backend shares, run by the base ``Target.check`` (meta/plugins/targets.py) before a backend's
own ``Target.problems``: an op task names a registered op type that this backend may run, and an
``airflow_operator`` task runs only on airflow.

The action type is matched exhaustively (``assert_never``): a new task kind added to ``meta.spec.model.Action``
fails ``mypy`` here until someone decides what each backend does with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_never

from meta.plugins.ops import OpType
from meta.spec.errors import CompileError, PluginError
from meta.spec.model import (
    AirflowOperatorAction,
    BranchAction,
    NoopAction,
    OpAction,
    Pipeline,
    PythonAction,
    ShellAction,
    SqlAction,
)

AIRFLOW = "airflow"


def shared_problems(backend: str, pipeline: Pipeline, get_op: Callable[[str], OpType]) -> list[CompileError]:
    """What ``backend`` cannot run in ``pipeline`` for reasons that are the same on every backend; ``get_op`` looks
    registered op types up (``meta.plugins.manager.get_op``, given by the caller: the registry is above this)."""
    errors: list[CompileError] = []
    for task in pipeline.tasks:
        action = task.action
        match action:
            case ShellAction() | PythonAction() | BranchAction() | SqlAction() | NoopAction():
                pass
            case OpAction():
                errors.extend(_op_problems(backend, pipeline.id, task.id, get_op, action.op))
            case AirflowOperatorAction():
                if backend != AIRFLOW:
                    errors.append(
                        CompileError(
                            backend,
                            pipeline.id,
                            f"the Airflow operator {action.operator}",
                            "only the airflow backend runs airflow_operator tasks",
                            task=task.id,
                        )
                    )
            case _:
                assert_never(action)
    return errors


def _op_problems(
    backend: str, pipeline_id: str, task_id: str, get_op: Callable[[str], OpType], op_name: str
) -> list[CompileError]:
    feature = f"op type {op_name!r}"
    try:
        op = get_op(op_name)
    except PluginError as exc:
        return [CompileError(backend, pipeline_id, feature, str(exc), task=task_id)]
    if op.backends is not None and backend not in op.backends:
        return [CompileError(backend, pipeline_id, feature, f"it supports only {sorted(op.backends)}", task=task_id)]
    return []
