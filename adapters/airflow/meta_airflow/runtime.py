"""Callables that run inside Airflow tasks and callbacks (imported by workers, never at DAG parse time).

They give python/branch/op tasks exactly what the local runner gives them (``meta.execute_task``): the callable's
kwargs plus the run-context names its signature asks for, ``TaskSkipped`` -> skipped. Other tasks' results arrive
as plain JSON (Airflow's lazy XCom sequence of a mapped task becomes a list), and a python task's return value is
checked like on every backend (``meta.checked_result``; a list when a task maps over it).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from meta import ResultRefused, call_kwargs, checked_result, mappable_problem, resolve_callable
from meta_airflow.secret_provider import airflow_secrets

log = logging.getLogger(__name__)


def run_context(context: dict[str, Any]) -> Any:
    """meta's RunContext for an Airflow task context (manual runs without a logical date use ``run_after``)."""
    from meta import RunContext

    dag_run = context.get("dag_run")
    run_after = getattr(dag_run, "run_after", None)
    logical_date = context.get("logical_date") or run_after
    if logical_date is None:
        raise ValueError("the Airflow context has neither a logical date nor a dag_run.run_after")
    params = dict(context.get("params") or {})
    return RunContext(
        pipeline_id=context["dag"].dag_id if context.get("dag") is not None else dag_run.dag_id,  # type: ignore[union-attr]
        run_id=context["run_id"],
        logical_date=logical_date,
        params=params,
        backend="airflow",
        data_interval_start=context.get("data_interval_start") or logical_date,
        data_interval_end=context.get("data_interval_end") or logical_date,
    )


def resolve_secret_refs(value: Any) -> Any:
    """Resolve ``${secret:NAME}`` while a task runs: Airflow connections/variables first, then meta's chain (env
    vars, files). Each resolved value is registered with Airflow's log masker, so task logs show ``***``."""
    from meta import secrets

    if not secrets.has_reference(value):
        return value
    from airflow.sdk.log import mask_secret

    with airflow_secrets():
        resolved = secrets.resolve(value)
    for original, plain in _leaves(value, resolved):
        if secrets.has_reference(original):
            mask_secret(plain)
    return resolved


def _leaves(original: Any, resolved: Any) -> list[tuple[Any, Any]]:
    if isinstance(original, dict):
        return [pair for k in original for pair in _leaves(original[k], resolved[k])]
    if isinstance(original, list | tuple):
        return [pair for o, r in zip(original, resolved, strict=True) for pair in _leaves(o, r)]
    return [(original, resolved)]


def _try_number(context: dict[str, Any]) -> int:
    ti = context.get("ti")
    return int(getattr(ti, "try_number", 1) or 1)


def plain(value: Any) -> Any:
    """``value`` as the JSON-like value the local runner passes: Airflow's lazy sequences (a mapped task's results,
    ``LazyXComSequence``/``LazySelectSequence``) and tuples become lists, mappings dicts."""
    if isinstance(value, str | bytes | bytearray):
        return value
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [plain(v) for v in value]
    return value


def _task_id(context: dict[str, Any]) -> str:
    return str(context["ti"].task_id if context.get("ti") is not None else context["task"].task_id)


def _call(target: str, kwargs: dict[str, Any], context: dict[str, Any]) -> Any:
    from airflow.sdk.exceptions import AirflowSkipException

    from meta import TaskSkipped

    func = resolve_callable(target)
    ctx = run_context(context)
    variables = ctx.template_vars(_task_id(context), _try_number(context))
    try:
        return func(**call_kwargs(func, resolve_secret_refs(plain(kwargs)), variables))
    except TaskSkipped as exc:
        raise AirflowSkipException(str(exc) or f"{target} asked to skip") from exc


def checked(task_id: str, value: Any, map_source: bool = False) -> Any:
    """The result Airflow stores as the task's XCom: meta's checks (JSON, size, no secret) and, for a task some
    task maps over, a list (the message Airflow's UnmappableXComTypePushed would give, in meta's words)."""
    if value is None and not map_source:
        return None  # no result: Airflow pushes no XCom
    value = checked_result(task_id, value)
    if map_source:
        problem = mappable_problem(value)
        if problem:
            raise ResultRefused(f"task {task_id!r} {problem}")
    return value


def call_python(target: str, kwargs: dict[str, Any], map_source: bool = False, **context: Any) -> Any:
    """A meta ``python`` task: call ``module:function``; its checked return value is the task's result."""
    return checked(_task_id(context), _call(target, kwargs, context), map_source)


def mapped_python(target: str, names: Sequence[str]) -> Callable[..., Any]:
    """The function of a mapped python task (a TaskFlow task): ``names`` are the callable's kwargs, fixed ones from
    ``partial()`` and mapped ones from ``expand()``; Airflow passes the rest of the context as ``**context``.

    Its signature names them (keyword-only), so TaskFlow binds and shows them, and returns nothing TaskFlow could
    read as a mapping (``multiple_outputs`` stays False). Each instance's return value is checked on its own.
    """
    names = list(names)

    def run(**context: Any) -> Any:
        kwargs = {name: context.pop(name) for name in names if name in context}
        return checked(_task_id(context), _call(target, kwargs, context))

    params = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in names]
    params.append(inspect.Parameter("context", inspect.Parameter.VAR_KEYWORD))
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__name__ = run.__qualname__ = target.rpartition(":")[2].replace(".", "_") or "mapped_python"
    run.__doc__ = f"{target} for each element of the map (meta python task)"
    run.meta_target = target  # type: ignore[attr-defined]  # what the importer reads back
    return run


def call_branch(target: str, kwargs: dict[str, Any], **context: Any) -> Any:
    """A meta ``branch`` task: the callable returns the task id(s) to follow (BranchPythonOperator skips the rest)."""
    value = _call(target, kwargs, context)
    return [] if value is None else plain(value)


def run_op(op: str, with_args: dict[str, Any], **context: Any) -> None:
    """A meta ``op`` task: ``meta.plugins.manager.get_op(op).run(OpContext, **with)``."""
    from meta import OpContext, get_op

    task_id = _task_id(context)
    op_type = get_op(op)
    # ${secret:NAME} in the op's arguments may name Airflow connections/variables while the task runs.
    with airflow_secrets():
        op_type.run(
            OpContext(run=run_context(context), task_id=task_id, try_number=_try_number(context), log=log),
            **plain(with_args),
        )


class AlertCallback:
    """An Airflow callback ``(context)`` that sends a meta alert to ``channels`` (e.g. ``['slack:data-team']``)."""

    def __init__(self, channels: list[str], event: str):
        self.channels = list(channels)
        self.event = event

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AlertCallback) and (self.channels, self.event) == (other.channels, other.event)

    def __hash__(self) -> int:
        return hash((tuple(self.channels), self.event))

    def __repr__(self) -> str:
        return f"AlertCallback({self.channels!r}, {self.event!r})"

    def __call__(self, context: dict[str, Any]) -> None:
        from meta import (
            AlertEvent,
            send_alert,  # lazily: only when an alert fires
        )

        dag_run = context.get("dag_run")
        ti = context.get("ti") or context.get("task_instance")
        error = context.get("exception") or context.get("reason")
        event = AlertEvent(
            pipeline_id=str(getattr(dag_run, "dag_id", None) or getattr(context.get("dag"), "dag_id", "")),
            run_id=str(getattr(dag_run, "run_id", None) or context.get("run_id") or ""),
            event=self.event,
            task_id=getattr(ti, "task_id", None) if self.event == "retry" else None,
            state=str(getattr(dag_run, "state", "") or "") or None,
            backend="airflow",
            logical_date=getattr(dag_run, "logical_date", None),
            try_number=getattr(ti, "try_number", None),
            message=str(error) if error else None,
        )
        try:
            send_alert(self.channels, event)  # records failures per channel itself; never fails the task
        except Exception:
            log.exception("meta: could not send the %s alert to %s", self.event, self.channels)
