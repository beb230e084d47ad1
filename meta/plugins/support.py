"""The checks every backend shares, run by the base ``Target.check`` (meta/plugins/targets.py) before a backend's
own ``Target.problems``: an op task names a registered op type that this backend may run, an
``airflow_operator`` task runs only on airflow, and every SLA feature is enforced by someone: the backend itself
(``Target.native_sla``) or the control plane of a workspace that places the pipeline on this kind of backend
(``meta.plugins.supervision``). Never a silent drop.

The action type is matched exhaustively (``assert_never``): a new task kind added to ``meta.spec.model.Action``
fails ``mypy`` here until someone decides what each backend does with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_never

from meta.plugins.ops import OpType
from meta.plugins.supervision import Supervision, sla_features
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


def sla_problems(
    backend: str, pipeline: Pipeline, native: set[str], supervision: Supervision | None, strict: bool = True
) -> list[CompileError]:
    """The SLA features of ``pipeline`` nobody would enforce on ``backend``: neither native to it (``native``: the
    kinds of ``sla.kinds()`` it enforces itself, or whole feature names) nor watched by ``supervision``'s control
    plane. ``strict=False`` (a backend that only runs on demand, see ``Target.scheduled``) lists none."""
    if not strict or (supervision is not None and supervision.watches(pipeline.id, backend)):
        return []
    errors = []
    for feature, task in sla_features(pipeline):
        kind = feature.removeprefix("sla.")
        if kind in native or feature in native or (feature == "alerts.on_sla_miss" and native):
            continue  # the backend enforces it (on_sla_miss: it routes the misses of its native kinds)
        article = "an" if backend[:1] in "aeiou" else "a"
        detail = (
            f"{backend} cannot enforce {feature} itself; place the pipeline on {article} {backend} backend in a "
            "workspace (meta.yaml) so the control plane (`meta serve`) watches it"
        )
        if supervision is not None:
            detail += f" ({supervision.where()} places {pipeline.id!r} on no {backend} backend)"
        errors.append(CompileError(backend, pipeline.id, feature, detail, task=task))
    return errors


def dependency_problems(
    backend: str, pipeline: Pipeline, supervision: Supervision | None, strict: bool = True
) -> list[CompileError]:
    """``depends_on`` where no control plane would start the pipeline: only ``meta serve`` sees the upstream on
    every backend, and the target compiles such a pipeline without a schedule of its own (``backend_schedule``), so
    unwatched it would never run. ``strict=False`` (a backend that only runs on demand) lists none."""
    if not pipeline.depends_on or not strict or (supervision is not None and supervision.watches(pipeline.id, backend)):
        return []
    detail = (
        "the control plane (`meta serve`) starts a pipeline with depends_on once its upstreams succeeded (the "
        f"{backend} deployment gets no schedule of its own); place {pipeline.id!r} on a {backend} backend in a "
        "workspace (meta.yaml)"
    )
    if supervision is not None:
        detail += f" ({supervision.where()} places it on no {backend} backend)"
    upstreams = ", ".join(d.label for d in pipeline.depends_on)
    return [CompileError(backend, pipeline.id, f"depends_on ({upstreams})", detail)]
