"""The plugin manager: entry points of group ``meta.plugins`` loaded once, built-ins registered the same way."""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

import pluggy

from meta.plugins import hookspecs
from meta.plugins.ops import OpType
from meta.plugins.targets import Importer, Target
from meta.spec.checks import did_you_mean
from meta.spec.errors import PluginError

ENTRY_POINT_GROUP = "meta.plugins"
# meta's own plugins; each module holds @hookimpl functions, exactly like a third-party plugin.
BUILTIN_PLUGINS = ("meta.builtin.local.plugin", "meta.builtin.operators.plugin")
# Friendly hints when a well-known backend is asked for but its distribution is not installed.
INSTALL_HINTS = {"airflow": "pip install meta-airflow", "prefect": "pip install meta-prefect"}


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("meta")
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real import error inside the plugin: show it
                raise
            continue
        pm.register(module, name)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


def _collect(hook_name: str) -> list[Any]:
    items: list[Any] = []
    getattr(plugin_manager().hook, hook_name)(register=items.append)
    return items


@lru_cache(maxsize=1)
def targets() -> dict[str, Target]:
    return {t.name: t for t in _collect("register_targets")}


@lru_cache(maxsize=1)
def ops() -> dict[str, OpType]:
    return {o.name: o for o in _collect("register_ops")}


@lru_cache(maxsize=1)
def importers() -> dict[str, Importer]:
    return {i.name: i for i in _collect("register_importers")}


def channels() -> dict[str, Any]:
    return {c.kind: c for c in _collect("register_channels")}


def secret_providers() -> list[Any]:
    return _collect("register_secret_providers")


def _lookup(kind: str, name: str, available: dict[str, Any]) -> Any:
    if name in available:
        return available[name]
    hint = f" (install it: {INSTALL_HINTS[name]})" if name in INSTALL_HINTS else did_you_mean(name, list(available))
    raise PluginError(f"no {kind} named {name!r}{hint}; available: {', '.join(sorted(available)) or 'none'}")


def get_target(name: str) -> Target:
    return _lookup("backend", name, targets())


def get_op(name: str) -> OpType:
    return _lookup("op type", name, ops())


def get_importer(name: str) -> Importer:
    return _lookup("importer", name, importers())


def reset() -> None:
    """Forget loaded plugins (tests that register plugins call this)."""
    for cached in (plugin_manager, targets, ops, importers):
        cached.cache_clear()
