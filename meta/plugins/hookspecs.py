"""Every extension point of meta. Plugins implement these with ``@hookimpl`` and register under the
``meta.plugins`` entry-point group; meta's own backends, op types and channels are registered the same way.

Each hook receives a ``register`` callback (the simonw/llm style): call it once per thing you provide. A hookimpl
whose name matches no hook here is an error when plugins load (``meta.plugins.manager.plugin_manager``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from meta.plugins.commands import BackendOption
    from meta.plugins.observers import ObserverKind
    from meta.plugins.ops import OpType
    from meta.plugins.protocols import ChannelKind, SecretProvider
    from meta.plugins.targets import Importer, Target

hookspec = pluggy.HookspecMarker("meta")
hookimpl = pluggy.HookimplMarker("meta")


@hookspec
def register_targets(register: Callable[[Target], None]) -> None:
    """Register backends: things that run, compile or deploy pipelines (local, airflow, prefect, ...)."""


@hookspec
def register_observers(register: Callable[[ObserverKind], None]) -> None:
    """Register backend kinds the control plane can watch (``kind:`` of a backend in the workspace file)."""


@hookspec
def register_ops(register: Callable[[OpType], None]) -> None:
    """Register op types usable in a task as ``op: <name>`` with ``with: {...}``."""


@hookspec
def register_channels(register: Callable[[ChannelKind], None]) -> None:
    """Register alert channel kinds (the part before the colon in ``slack:data-team``)."""


@hookspec
def register_importers(register: Callable[[Importer], None]) -> None:
    """Register importers for ``meta import <source>`` (e.g. existing Airflow DAGs)."""


@hookspec
def register_secret_providers(register: Callable[[SecretProvider], None]) -> None:
    """Register secret providers consulted, in order, to resolve ``${secret:NAME}``."""


@hookspec
def register_commands(cli: click.Group, add_option: Callable[[BackendOption], None]) -> None:
    """Extend the ``meta`` command line: ``cli.add_command(...)`` adds a command; ``add_option(BackendOption(...))``
    adds an option to a core command (``run``, ``deploy``) that only your backend takes (meta/plugins/commands.py).
    An implementation may take only the arguments it uses."""
