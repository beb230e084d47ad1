"""Instantiate a plan into a real ``airflow.sdk.DAG`` (what the loader does at parse time)."""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

from meta import Pipeline
from meta_airflow.plan import Call, DagPlan, Ref, plan


@lru_cache(maxsize=256)
def resolve(path: str) -> Any:
    """``'module:attr.attr'`` -> the object (cached: the loader resolves the same few names thousands of times)."""
    module_name, _, attrs = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attrs.split("."):
        obj = getattr(obj, part)
    return obj


def materialize(value: Any) -> Any:
    if isinstance(value, Call):
        fn = resolve(value.path)
        return fn(*(materialize(a) for a in value.args), **{k: materialize(v) for k, v in value.kwargs})
    if isinstance(value, Ref):
        return resolve(value.path)
    if isinstance(value, dict):
        return {k: materialize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [materialize(v) for v in value]
    if isinstance(value, tuple):
        return tuple(materialize(v) for v in value)
    return value


def build_from_plan(dag_plan: DagPlan) -> Any:
    dag_cls = resolve("airflow.sdk:DAG")
    kwargs = {k: materialize(v) for k, v in dag_plan.kwargs}
    with dag_cls(**kwargs) as dag:
        operators = {}
        for t in dag_plan.tasks:
            cls = resolve(t.operator)
            operators[t.task_id] = cls(task_id=t.task_id, **{k: materialize(v) for k, v in t.kwargs})
        for up, down in dag_plan.edges:
            operators[up] >> operators[down]
    return dag


def build_dag(pipeline: Pipeline) -> Any:
    """The Airflow DAG for ``pipeline``; raises CompileError for features Airflow cannot express."""
    return build_from_plan(plan(pipeline))
