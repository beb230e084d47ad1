"""Airflow's dynamic task mapping -> ``Task.map``: ``f.partial(...).expand(...)`` of a python task (TaskFlow, or
PythonOperator over ``op_kwargs``/``op_args`` sets that form a cross product) becomes a python task with ``kwargs``
(the partial ones) and ``map`` (the expanded ones); other mappings are refused with the reason."""

from __future__ import annotations

import inspect
import itertools
from typing import Any

from meta_airflow.import_results import has_xcom, keyword_args, python_notes, with_references
from meta_airflow.import_values import NEUTRAL, ImportRefused, jsonable, plain_kwargs, python_callable_ref
from meta_airflow.plan import RUNTIME

# -------------------------------------------------------------------------------------------- dynamic mapping


def mapped_action(op: Any, module_names: dict[str, str], notes: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(python action, ``map``) for ``f.partial(**kwargs).expand(**map)`` of a @task or a PythonOperator; ImportRefused
    for every other mapping (``expand_kwargs``, a non-python operator, a ``.map()``-ed result, ...)."""
    tid = op.task_id
    cls = op.operator_class
    path = f"{cls.__module__}.{cls.__qualname__}"
    kind = NEUTRAL.get(path)
    expand_input = op.op_kwargs_expand_input if hasattr(op, "op_kwargs_expand_input") else op.expand_input
    names = list(expand_input.value) if isinstance(expand_input.value, dict) else []
    if kind != "python":
        what = cls.__name__ + (" (a branch)" if kind == "branch" else "")
        raise ImportRefused(
            f"task {tid}: dynamic mapping of {what} has no neutral form: meta maps python tasks only (map names "
            "keyword arguments of a callable)",
            task=tid,
            received=f"{cls.__name__}.partial(...).expand({', '.join(f'{n}=...' for n in names) or '...'})",
            expected="a python task (@task or PythonOperator) mapped over keyword arguments, or one task per value "
            "written out in the DAG file",
        )
    if type(expand_input).__name__ == "ListOfDictsExpandInput":
        raise ImportRefused(
            f"task {tid}: expand_kwargs (one whole set of arguments per instance) has no neutral form: meta maps each "
            "argument name over a list of its own (the cross product of several names)",
            task=tid,
            received=f"{tid}.expand_kwargs({expand_input.value!r:.120})",
            expected="f.partial(fixed=...).expand(name=[...]) over each varying argument",
        )
    partial = dict(op.partial_kwargs)
    if hasattr(op, "op_kwargs_expand_input"):  # @task: f.partial(**kwargs).expand(**map)
        func = op.python_callable
        target = meta_mapped_target(func)
        fixed = keyword_args(func, partial.get("op_args"), dict(partial.get("op_kwargs") or {}), tid)
        mapped = dict(expand_input.value)
    else:  # PythonOperator.partial(python_callable=f, ...).expand(op_kwargs=[...] | op_args=[...])
        func = partial.get("python_callable")
        expanded = dict(expand_input.value)
        unmappable = sorted(set(expanded) - {"op_kwargs", "op_args"})
        if unmappable or func is None:
            raise ImportRefused(
                f"task {tid}: PythonOperator mapped over {unmappable or ['python_callable']}; meta maps the callable's "
                "arguments only",
                task=tid,
                received=f"PythonOperator.partial(...).expand({', '.join(f'{n}=...' for n in expanded)})",
                expected="expand(op_kwargs=[...]) over literal argument sets, or @task f.expand(name=...)",
            )
        fixed, mapped = python_operator_map(func, partial, expanded, tid)
        target = None
    ref = target or python_callable_ref(func, tid, module_names)
    kwargs = with_references(fixed, tid, "argument")
    plain_kwargs(kwargs, tid)
    map_: dict[str, Any] = {}
    for name, source in mapped.items():
        if isinstance(source, dict):
            raise ImportRefused(
                f"task {tid}: expand({name}=<a dict>) maps over a mapping's items; meta maps over lists",
                task=tid,
                received=f"{name}={source!r:.120}",
                expected=f"a list ({name}=list(d.items()) to map over the pairs)",
            )
        if isinstance(source, list | tuple) and has_xcom(source):
            raise ImportRefused(
                f"task {tid}: expand {name} is a list holding results of other tasks; meta maps over a literal list "
                "or over one task's result",
                task=tid,
                received=f"{name}={source!r:.120}",
                expected=f"{name}=<a task that returns the list> (its result), or a list of plain values",
            )
        map_[name] = with_references(source, tid, f"expand {name}")
        if isinstance(map_[name], list) and not jsonable(map_[name]):
            raise ImportRefused(
                f"task {tid}: expand {name} holds values that are not plain data",
                task=tid,
                received=f"{name}={source!r:.120}",
                expected="a list of JSON values, or the result of another task",
            )
    if target is None:
        python_notes(op, func, notes)
    return {"kind": "python", "callable": ref, "kwargs": kwargs}, map_


def meta_mapped_target(func: Any) -> str | None:
    """The ``module:function`` of a mapped python task meta compiled (``runtime.mapped_python(target, names)``)."""
    if getattr(func, "__module__", None) != RUNTIME:
        return None
    if isinstance(getattr(func, "meta_target", None), str):
        return str(func.meta_target)
    try:
        target = inspect.getclosurevars(func).nonlocals.get("target")
    except (TypeError, ValueError):
        return None
    return target if isinstance(target, str) else None


def python_operator_map(
    func: Any, partial: dict[str, Any], expanded: dict[str, Any], tid: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(kwargs, map) for ``PythonOperator.partial(...).expand(op_kwargs=[{...}, ...])``: each element is a whole set
    of arguments. Arguments equal in every set are fixed (kwargs); the rest must vary as a cross product does (the
    last name fastest, as Airflow expands several names), or the sets have no ``map`` form."""
    from airflow.sdk.definitions.xcom_arg import XComArg

    if len(expanded) > 1:
        raise ImportRefused(
            f"task {tid}: PythonOperator mapped over both op_args and op_kwargs has no neutral form",
            task=tid,
            received="expand(op_args=..., op_kwargs=...)",
            expected="expand(op_kwargs=[...]) alone",
        )
    ((field, sets),) = expanded.items()
    if isinstance(sets, XComArg):
        raise ImportRefused(
            f"task {tid}: expand({field}=<the result of a task>) maps over whole argument sets decided at run time; "
            "meta maps each argument name over a list of its own",
            task=tid,
            received=f"expand({field}={sets!r:.100})",
            expected="@task f.expand(name=<the result of a task>) over one argument",
        )
    if not isinstance(sets, list | tuple) or not sets:
        raise ImportRefused(
            f"task {tid}: expand({field}=...) needs a non-empty literal list to be read at import",
            task=tid,
            received=f"{field}={sets!r:.100}",
            expected="a list of argument sets",
        )
    fixed_op_kwargs = dict(partial.get("op_kwargs") or {})
    if field == "op_args":
        rows = [keyword_args(func, list(s), {}, tid) for s in sets]
    elif all(isinstance(s, dict) for s in sets):
        rows = [dict(s) for s in sets]
    else:
        rows = []
    if not rows or len({tuple(sorted(r)) for r in rows}) != 1:
        raise ImportRefused(
            f"task {tid}: expand({field}=...) sets of different names have no neutral form",
            task=tid,
            received=f"{field}={list(sets)!r:.160}",
            expected="argument sets (mappings) with the same names",
        )
    names = list(rows[0])
    distinct: dict[str, list[Any]] = {}
    for name in names:
        seen: list[Any] = []
        for row in rows:
            if row[name] not in seen:
                seen.append(row[name])
        distinct[name] = seen
    varying = [n for n in names if len(distinct[n]) > 1]
    if not varying and len(rows) == 1 and names:  # one instance: still a mapped task (its result is a list)
        varying = names[:1]
    fixed = {**fixed_op_kwargs, **{n: v[0] for n, v in distinct.items() if n not in varying}}
    product = [dict(zip(varying, combo, strict=True)) for combo in itertools.product(*(distinct[n] for n in varying))]
    if product != [{n: row[n] for n in varying} for row in rows]:
        raise ImportRefused(
            f"task {tid}: expand({field}=...) varies {varying} together (one set per instance, not every "
            "combination); meta's map is the cross product of its names",
            task=tid,
            received=f"{field}={list(sets)!r:.160}",
            expected="sets that are every combination of the varying values, or a single varying argument",
        )
    return fixed, {n: distinct[n] for n in varying}
