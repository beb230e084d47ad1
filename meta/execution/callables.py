"""How every backend calls a user's python/branch function: import ``module:function``, pass its kwargs plus the
run-context names its signature asks for (all of them when it takes ``**kwargs``), Airflow's rule.

Kept apart from ``meta.execution.attempt`` so Airflow and Prefect workers can use it without importing the local runner.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any


def resolve_callable(ref: str) -> Callable[..., Any]:
    """Import ``package.module:function`` (the function part may be dotted, e.g. ``Class.method``).

    The module is found like any import: installed packages, ``sys.path``, then the import roots of the current
    context (the folders of the specs, ``meta.authoring.import_roots``)."""
    module_name, _, attr_path = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{ref!r} is a {type(obj).__name__}, not a callable")
    return obj


def call_kwargs(func: Callable[..., Any], kwargs: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Airflow's rule: the task's kwargs, plus every context name the signature asks for (all with ``**kwargs``)."""
    try:
        parameters = inspect.signature(func).parameters
    except (TypeError, ValueError):  # builtins without a signature get only their kwargs
        return dict(kwargs)
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    extra = {k: v for k, v in context.items() if k not in kwargs and (takes_all or k in parameters)}
    return {**kwargs, **extra}
