"""What every part of the Airflow importer shares: the refusal error, plain-data checks and references to
callables (``module:function``, a ``@task``'s ``module:name.function``)."""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta
from typing import Any

from meta import CALLABLE_PATTERN, MetaError

# Operator classes with a neutral form: class path -> task kind.
NEUTRAL = {
    "airflow.providers.standard.operators.bash.BashOperator": "shell",
    "airflow.providers.standard.operators.python.PythonOperator": "python",
    "airflow.providers.standard.decorators.python._PythonDecoratedOperator": "python",
    "airflow.providers.standard.operators.python.BranchPythonOperator": "branch",
    "airflow.providers.standard.decorators.branch_python._BranchPythonDecoratedOperator": "branch",
    "airflow.providers.standard.operators.empty.EmptyOperator": "noop",
    "airflow.providers.common.sql.operators.sql.SQLExecuteQueryOperator": "sql",
    # meta's own subclasses (compiled from shell/sql tasks): the same arguments
    "meta_airflow.operators.MetaBashOperator": "shell",
    "meta_airflow.operators.MetaSQLExecuteQueryOperator": "sql",
}


class ImportRefused(MetaError, ValueError):
    """A DAG whose structure has no neutral form: the reason, the task at fault (to locate it in the DAG file), what
    the DAG has (``received``) and what meta would need instead (``expected``)."""

    def __init__(
        self, reason: str, *, task: str | None = None, received: str | None = None, expected: str | None = None
    ) -> None:
        super().__init__(reason)
        self.task, self.received, self.expected = task, received, expected


# -------------------------------------------------------------------------------------------- values


def jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def class_path(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def callable_ref(func: Any, module_names: dict[str, str]) -> str | None:
    """``module:qualname`` for an importable function; DAG-file modules map to their file name (Airflow puts the
    dags folder on sys.path). None when the function is not importable by name (a lambda, a nested function).

    A ``@task`` function's module-level name is the TaskFlow decorator, not the function (calling it outside a DAG
    makes an XComArg): its code is the decorator's ``.function``, so the reference ends in ``.function``."""
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname:
        return None
    ref = f"{module_names.get(module, module)}:{qualname}"
    if not re.match(CALLABLE_PATTERN, ref):
        return None
    named: Any = sys.modules.get(module)
    if named is None:
        return ref
    for part in qualname.split("."):
        named = getattr(named, part, None)
    if named is func:
        return ref
    if getattr(named, "function", None) is func:
        return ref + ".function"
    return None  # the name is another object now (a later definition in the module replaced it)


def seconds(value: Any) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=float(value))


def python_callable_ref(func: Any, tid: str, module_names: dict[str, str]) -> str:
    """``module:function`` of a python/branch task's callable. While ``meta import airflow`` imports a folder,
    ``module_names`` is import_callables' ``DagCallables``: a callable of the DAG file is lifted into the module
    written beside the specs (ImportRefused when it cannot be: a lambda, a closure over non-constants). Otherwise
    (a DAG built in this process, an installed package) the callable's own import name."""
    reference = getattr(module_names, "reference", None)
    if callable(reference):
        lifted = reference(func, tid)
        if isinstance(lifted, str):
            return lifted
    ref = callable_ref(func, module_names)
    if ref is None:
        name = getattr(func, "__qualname__", func)
        raise ImportRefused(
            f"task {tid}: its callable {name!r} is not importable by name ({not_importable_why(func)})",
            task=tid,
            received=f"python_callable {name}",
            expected="a function defined at module level (meta references callables as module:function)",
        )
    return ref


def not_importable_why(func: Any) -> str:
    qualname = str(getattr(func, "__qualname__", ""))
    if "<lambda>" in qualname:
        return "a lambda; define it with def at module level"
    if "<locals>" in qualname:
        return "a function nested in another (e.g. TaskFlow inside @dag); move it to module level"
    return (
        f"the module-level name {qualname} is another object by now (a later definition, e.g. in a loop, replaced "
        "it); give each function its own module-level name"
    )


def plain_kwargs(kwargs: dict[str, Any], tid: str, what: str = "arguments") -> None:
    if not jsonable(kwargs):
        raise ImportRefused(
            f"task {tid}: {what} hold values that are not plain data (objects, callables)",
            task=tid,
            received=f"{what} " + ", ".join(f"{k}={v!r}"[:100] for k, v in kwargs.items() if not jsonable(v)),
            expected="JSON data (strings, numbers, booleans, lists, mappings) or results of other tasks (XComArgs)",
        )


# BaseOperator arguments mapped to meta fields (or deliberately ignored); never copied into passthrough arguments.
BASE_ARGS = frozenset(
    {
        "task_id",
        "owner",
        "retries",
        "retry_delay",
        "retry_exponential_backoff",
        "max_retry_delay",
        "execution_timeout",
        "pool",
        "trigger_rule",
        "max_active_tis_per_dag",
        "inlets",
        "outlets",
        "params",
        "doc",
        "doc_md",
        "dag",
        "default_args",
        "task_group",
        "on_failure_callback",
        "on_retry_callback",
        "on_success_callback",
        "on_execute_callback",
        "on_skipped_callback",
        "start_date",
        "end_date",
        "depends_on_past",
        "wait_for_downstream",
        "email",
        "email_on_failure",
        "email_on_retry",
        "queue",
        "priority_weight",
        "weight_rule",
        "pool_slots",
        "executor_config",
        "do_xcom_push",
        "multiple_outputs",
        "pre_execute",  # noted (import_alerts.execute_hooks)
        "post_execute",
    }
)


def init_kwargs(op: Any) -> dict[str, Any]:
    """The arguments the operator was constructed with (what the DAG file wrote, defaults left out)."""
    return dict(getattr(op, "_BaseOperator__init_kwargs", {}) or {})
