"""Registers the built-in observer kinds through ``register_observers``, exactly as a third-party plugin would."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from meta.plugins.hookspecs import hookimpl
from meta.plugins.observers import ObserverKind

BUILTIN_KINDS = ("airflow", "prefect", "local")


@hookimpl
def register_observers(register: Callable[[ObserverKind], None]) -> None:
    for kind in BUILTIN_KINDS:
        name = f"meta.service.observers.{kind}"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a missing dependency inside the observer: show it
                raise
            continue
        register(module.KIND)
