"""The plugin manager: entry points of group ``meta.plugins`` loaded once, built-ins registered the same way."""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import pluggy

from meta.plugins import hookspecs
from meta.plugins.commands import BackendOption
from meta.plugins.observers import ObserverKind
from meta.plugins.ops import OpType
from meta.plugins.protocols import ChannelKind, SecretProvider
from meta.plugins.targets import Importer, Target
from meta.spec.checks import did_you_mean
from meta.spec.errors import PluginError

if TYPE_CHECKING:
    import click

ENTRY_POINT_GROUP = "meta.plugins"
# meta's own plugins; each module holds @hookimpl functions, exactly like a third-party plugin.
BUILTIN_PLUGINS = ("meta.builtin.local.plugin", "meta.builtin.operators.plugin", "meta.service.observers.plugin")
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
    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    except pluggy.PluginValidationError as exc:  # a hookimpl asking for arguments its hook does not pass
        raise PluginError(f"plugin {getattr(exc.plugin, '__name__', exc.plugin)!r}: {exc}") from None
    check_pending(pm)
    return pm


def check_pending(pm: pluggy.PluginManager) -> None:
    """A hookimpl matching no hookspec (a misspelled ``register_target``) is an error, not a silently unused hook."""
    known = [name for name in vars(hookspecs) if name.startswith("register_")]
    unknown = []
    for name, caller in vars(pm.hook).items():
        if name.startswith("_") or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if not impl.optionalhook:
                unknown.append(
                    f"plugin {impl.plugin_name!r} implements {name!r}, which is no meta hook{did_you_mean(name, known)}"
                )
    if unknown:
        raise PluginError("; ".join(unknown) + f" (meta's hooks: {', '.join(known)})")


def _collect(hook_name: str) -> list[Any]:
    items: list[Any] = []
    getattr(plugin_manager().hook, hook_name)(register=items.append)
    return items


@lru_cache(maxsize=1)
def targets() -> dict[str, Target]:
    registered: dict[str, Target] = {}
    for target in _collect("register_targets"):
        target.op_lookup = get_op  # what Target.check needs for the shared op checks
        registered[target.name] = target
    return registered


@lru_cache(maxsize=1)
def ops() -> dict[str, OpType]:
    return {o.name: o for o in _collect("register_ops")}


@lru_cache(maxsize=1)
def observer_kinds() -> dict[str, ObserverKind]:
    return {o.kind: o for o in _collect("register_observers")}


@lru_cache(maxsize=1)
def importers() -> dict[str, Importer]:
    return {i.name: i for i in _collect("register_importers")}


def channels() -> dict[str, ChannelKind]:
    return {c.kind: c for c in _collect("register_channels")}


def secret_providers() -> list[SecretProvider]:
    return _collect("register_secret_providers")


def register_commands(cli: click.Group) -> list[BackendOption]:
    """Let every plugin extend ``cli`` (commands) and collect the backend options they add to core commands."""
    options: list[BackendOption] = []
    plugin_manager().hook.register_commands(cli=cli, add_option=options.append)
    return options


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


def get_observer_kind(kind: str) -> ObserverKind:
    return _lookup("observer kind", kind, observer_kinds())


def reset() -> None:
    """Forget loaded plugins (tests that register plugins call this)."""
    for cached in (plugin_manager, targets, ops, importers, observer_kinds):
        cached.cache_clear()
