"""Airflow operators -> neutral tasks: the task half of the importer (see importer.py for DAGs and files).

BashOperator -> shell, PythonOperator/@task -> python, BranchPythonOperator/@task.branch -> branch, EmptyOperator ->
noop, SQLExecuteQueryOperator -> sql, meta's own runtime wrappers -> their original python/branch/op tasks, anything
else -> an ``airflow_operator`` passthrough (class path + plain-data arguments, see typed_args.py).

XComs become results in import_results.py, dynamic mapping becomes ``Task.map`` in import_mapping.py; what all of them
share (the refusal, plain-data checks, callable references) is import_values.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from meta_airflow.import_alerts import CALLBACK_ROUTES, callback_routes, merge, task_alerts
from meta_airflow.import_mapping import mapped_action
from meta_airflow.import_meta_ops import meta_op_action
from meta_airflow.import_operators import DagExtras, special_action
from meta_airflow.import_results import (
    has_xcom,
    keyword_args,
    mapped_group_refusal,
    python_notes,
    with_references,
)
from meta_airflow.import_sql import sql_parameters
from meta_airflow.import_values import (
    BASE_ARGS,
    NEUTRAL,
    ImportRefused,
    class_path,
    init_kwargs,
    jsonable,
    plain_kwargs,
    python_callable_ref,
    seconds,
)
from meta_airflow.plan import META_ENV_KEYS, RUNTIME
from meta_airflow.typed_args import NotPlain, encode

AIRFLOW_DEFAULTS: dict[str, Any] = {
    "retries": 0,
    "retry_delay": timedelta(seconds=300),
    "retry_exponential_backoff": 0,
    "max_retry_delay": None,
    "execution_timeout": None,
    "pool": "default_pool",
    "trigger_rule": "all_success",
}
# Operator settings meta has no field for: importing a non-default value is noted, never silently dropped.
UNMAPPED_TASK_FIELDS: dict[str, Any] = {
    "depends_on_past": False,
    "wait_for_downstream": False,
    "priority_weight": 1,
    "pool_slots": 1,
    "queue": "default",
    "executor_config": None,
    "sla": None,
    "max_active_tis_per_dagrun": None,
    "map_index_template": None,
}


# -------------------------------------------------------------------------------------------- tasks


def action_of(op: Any, dag: Any, module_names: dict[str, str], notes: list[str]) -> dict[str, Any]:
    path = class_path(op)
    kind = NEUTRAL.get(path)
    tid = op.task_id
    if (
        kind == "shell"
        and tuple(op.skip_on_exit_code or ()) == (99,)
        and isinstance(command := with_references(op.bash_command, tid, "bash_command"), str)
    ):
        if command.endswith(" ") and command.rstrip().endswith((".sh", ".bash")):
            command = command[:-1]  # meta adds this space when compiling (BashOperator's template-file rule)
        action: dict[str, Any] = {"kind": "shell", "command": command}
        env = {k: v for k, v in (op.env or {}).items() if k not in META_ENV_KEYS and not k.startswith("META_PARAM_")}
        if env:
            action["env"] = with_references(env, tid, "env")
        if op.env is not None and not op.append_env and not _is_meta_env(op.env):
            notes.append(f"task {tid}: env without append_env replaces the whole environment; meta appends")
        if op.cwd:
            action["cwd"] = op.cwd
        given = init_kwargs(op)
        if given.get("multiple_outputs"):
            notes.append(
                f"task {tid}: multiple_outputs=True: meta keeps a shell task's result whole; the per-key XComs are "
                "not carried over"
            )
        if "output_processor" in given:
            notes.append(
                f"task {tid}: output_processor is not carried over: meta's result of a shell task is its last line "
                "of output, as text"
            )
        return action
    if kind in ("python", "branch"):
        func = op.python_callable
        op_kwargs = dict(op.op_kwargs or {})
        runtime_name = f"{getattr(func, '__module__', '')}:{getattr(func, '__qualname__', '')}"
        if runtime_name == f"{RUNTIME}:call_python" or runtime_name == f"{RUNTIME}:call_branch":
            kwargs = with_references(op_kwargs.get("kwargs", {}), tid, "kwargs")
            return {"kind": kind, "callable": op_kwargs["target"], "kwargs": kwargs}
        if runtime_name == f"{RUNTIME}:run_op":
            return {
                "kind": "op",
                "op": op_kwargs["op"],
                "with": with_references(op_kwargs.get("with_args", {}), tid, "with"),
            }
        ref = python_callable_ref(func, tid, module_names)
        kwargs = with_references(keyword_args(func, op.op_args, op_kwargs, tid), tid, "argument")
        plain_kwargs(kwargs, tid)
        python_notes(op, func, notes)
        return {"kind": kind, "callable": ref, "kwargs": kwargs}
    if kind == "noop":
        return {"kind": "noop"}
    if kind == "sql" and not has_xcom(op.sql):
        sql = op.sql
        statement = sql if isinstance(sql, str) else ";\n".join(sql)
        action = {"kind": "sql", "conn": op.conn_id, "statement": statement}
        if op.split_statements:
            action["split_statements"] = True
        if op.parameters:
            action["parameters"] = sql_parameters(op.parameters, tid)
        return action
    meta_op = meta_op_action(op)
    if meta_op is not None:
        return meta_op
    return passthrough(op, notes, module_names, dag)


def _is_meta_env(env: dict[str, Any]) -> bool:
    return "META_RUN_ID" in env


def passthrough(op: Any, notes: list[str], module_names: dict[str, str], dag: Any) -> dict[str, Any]:
    cls = type(op)
    path = f"{module_names.get(cls.__module__, cls.__module__)}.{cls.__qualname__}"
    if "<locals>" in path:
        raise ImportRefused(
            f"task {op.task_id}: operator class {path} is defined inside a function",
            task=op.task_id,
            received=f"class {path}",
            expected="an operator class defined at module level (importable by its path)",
        )
    arguments: dict[str, Any] = {}
    dropped: dict[str, str] = {}
    results: dict[str, str] = {}
    inherited = dict(dag.default_args or {})
    for key, value in sorted(init_kwargs(op).items()):
        if key in BASE_ARGS or (key in inherited and inherited[key] == value):  # default_args are not its own
            continue
        if has_xcom(value):
            results[key] = f"{value!r:.100}"
            continue
        try:
            arguments[key] = encode(value)
        except NotPlain:
            dropped[key] = type(value).__name__
    if results:
        raise ImportRefused(
            f"task {op.task_id}: {path} arguments {list(results)} take results of other tasks (XComArgs); an "
            "airflow_operator passthrough holds plain data only, and only python, shell and sql tasks take results",
            task=op.task_id,
            received=", ".join(f"{k}={v}" for k, v in results.items()),
            expected="a python task (@task) that takes the result as an argument, or plain-data arguments",
        )
    if dropped:
        # Leaving an argument out would compile to a different (or broken) operator: refuse instead.
        raise ImportRefused(
            f"task {op.task_id}: {path} arguments {list(dropped)} are not plain data (callables, objects); an "
            "airflow_operator passthrough keeps JSON-like arguments plus timedelta/datetime/date/time",
            task=op.task_id,
            received=", ".join(f"{k}: {t}" for k, t in dropped.items()),
            expected="JSON-like values, timedelta, datetime, date or time",
        )
    notes.append(f"task {op.task_id}: {path} has no neutral form; kept as an airflow_operator (Airflow only)")
    return {"kind": "airflow_operator", "operator": path, "arguments": arguments}


def retry_fields(get: Any, baseline: dict[str, Any]) -> dict[str, Any]:
    """meta retry/timeout/pool/trigger-rule fields whose Airflow value differs from ``baseline``."""
    out: dict[str, Any] = {}
    for af, meta_name in (
        ("retries", "retries"),
        ("retry_delay", "retry_delay"),
        ("retry_exponential_backoff", "retry_backoff"),
        ("max_retry_delay", "max_retry_delay"),
        ("execution_timeout", "timeout"),
        ("pool", "pool"),
        ("trigger_rule", "trigger_rule"),
    ):
        value = get(af)
        if af in ("retry_delay", "max_retry_delay", "execution_timeout"):
            value = seconds(value)
        if af == "trigger_rule" and value is not None:
            value = str(getattr(value, "value", value))
        if value == baseline.get(af):
            continue
        if af == "retry_exponential_backoff":
            value = 1.0 if not value else float(value)
            if value == 1.0 and not baseline.get(af):
                continue
        out[meta_name] = value
    return out


def task_params(op: Any, dag: Any) -> dict[str, Any]:
    """Params the task sets itself: Airflow merges the DAG's params into every task's, so subtract those."""
    from airflow.sdk.definitions._internal.types import NOTSET

    dag_values = {k: dag.params.get_param(k).value for k in dag.params}
    out = {}
    for key in op.params or {}:
        value = op.params.get_param(key).value
        if value is NOTSET or (key in dag_values and dag_values[key] == value):
            continue
        out[key] = value
    return out


def task_of(
    op: Any,
    dag: Any,
    baseline: dict[str, Any],
    module_names: dict[str, str],
    notes: list[str],
    extras: DagExtras | None = None,
) -> dict[str, Any]:
    """One operator as a task; what it adds beyond the task (files, dependencies, ...) goes into ``extras``."""
    extras = extras if extras is not None else DagExtras()
    if op.get_closest_mapped_task_group() is not None:
        raise mapped_group_refusal(op.task_id)
    task: dict[str, Any] = {"id": op.task_id}
    if getattr(op, "is_mapped", False) or class_path(op).endswith("MappedOperator"):
        task["action"], task["map"] = mapped_action(op, module_names, notes)
    else:
        special = special_action(op, dag, module_names, notes, extras)
        task["action"] = special if special is not None else action_of(op, dag, module_names, notes)
        merge(extras.alerts, task_alerts(op, init_kwargs(op), dict(dag.default_args or {}), notes, module_names))
    upstream = [t for t in dag.task_dict if t in op.upstream_task_ids]
    if upstream:
        task["upstream"] = upstream
    task.update(retry_fields(lambda name: getattr(op, name, None), baseline))
    if op.max_active_tis_per_dag is not None:
        task["max_active"] = op.max_active_tis_per_dag
    for af, meta_name in (("inlets", "inputs"), ("outlets", "outputs")):
        uris = []
        for item in getattr(op, af) or ():
            uri = getattr(item, "uri", None)
            if uri is None or type(item).__name__ != "Asset":
                notes.append(f"task {op.task_id}: {af} item {item!r} is not an Asset and was left out")
            else:
                uris.append(uri)
        if uris:
            task[meta_name] = uris
    values = task_params(op, dag)
    if values:
        if jsonable(values):
            task["params"] = values
        else:
            notes.append(f"task {op.task_id}: params are not plain data and were left out")
    doc = getattr(op, "doc", None)
    if doc:
        task["description"] = doc
    # The task's own callbacks (not default_args'): notifiers become pipeline-wide routes, others are named.
    own = {cb: getattr(op, cb, None) for cb in CALLBACK_ROUTES if cb not in (dag.default_args or {})}
    routes = callback_routes(f"task {op.task_id}:", {k: v for k, v in own.items() if v}, notes, module_names)
    if routes:
        merge(extras.alerts, routes)
        notes.append(f"task {op.task_id}: its callback alerts become pipeline-wide routes (meta routes every task's)")
    for attr, default in UNMAPPED_TASK_FIELDS.items():
        value = getattr(op, attr, default)
        if value not in (default, None) and value != {}:
            notes.append(f"task {op.task_id}: {attr}={value!r} has no neutral form and is not carried over")
    return task
