"""Instantiate a plan into a real ``airflow.sdk.DAG`` (what the loader does at parse time)."""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

from meta import Pipeline
from meta_airflow.plan import Call, DagPlan, Output, Ref, TaskPlan, plan


@lru_cache(maxsize=256)
def resolve(path: str) -> Any:
    """``'module:attr.attr'`` -> the object (cached: the loader resolves the same few names thousands of times)."""
    module_name, _, attrs = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attrs.split("."):
        obj = getattr(obj, part)
    return obj


def materialize(value: Any, operators: dict[str, Any] | None = None) -> Any:
    """A plan value as the Python object; ``Output(X)`` is ``operators[X].output`` (X is built before: plan order)."""
    if isinstance(value, Call):
        fn = resolve(value.path)
        args = (materialize(a, operators) for a in value.args)
        return fn(*args, **{k: materialize(v, operators) for k, v in value.kwargs})
    if isinstance(value, Ref):
        return resolve(value.path)
    if isinstance(value, Output):
        if operators is None or value.task_id not in operators:
            raise ValueError(f"the result of {value.task_id!r} is used before its task is built")
        return operators[value.task_id].output
    if isinstance(value, dict):
        return {k: materialize(v, operators) for k, v in value.items()}
    if isinstance(value, list):
        return [materialize(v, operators) for v in value]
    if isinstance(value, tuple):
        return tuple(materialize(v, operators) for v in value)
    return value


def build_task(t: TaskPlan, operators: dict[str, Any]) -> Any:
    """The operator of one task plan (a mapped task's MappedOperator)."""
    cls = resolve(t.operator)
    args = [materialize(a, operators) for a in t.args]
    built = cls(*args, task_id=t.task_id, **{k: materialize(v, operators) for k, v in t.kwargs})
    if not t.mapped:
        return built
    if t.partial:
        built = built.partial(**{k: materialize(v, operators) for k, v in t.partial})
    return built.expand(**{k: materialize(v, operators) for k, v in t.expand}).operator


def build_from_plan(dag_plan: DagPlan) -> Any:
    dag_cls = resolve("airflow.sdk:DAG")
    kwargs = {k: materialize(v) for k, v in dag_plan.kwargs}
    with dag_cls(**kwargs) as dag:
        operators: dict[str, Any] = {}
        for t in dag_plan.tasks:
            operators[t.task_id] = build_task(t, operators)
        for up, down in dag_plan.edges:
            operators[up] >> operators[down]
    return dag


def build_dag(pipeline: Pipeline) -> Any:
    """The Airflow DAG for ``pipeline``; raises CompileError for features Airflow cannot express."""
    return build_from_plan(plan(pipeline))
