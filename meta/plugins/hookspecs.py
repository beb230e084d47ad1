"""Every extension point of meta. Plugins implement these with ``@hookimpl`` and register under the
``meta.plugins`` entry-point group; meta's own backends, op types and channels are registered the same way.

Each hook receives a ``register`` callback (the simonw/llm style): call it once per thing you provide.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from meta.plugins.ops import OpType
    from meta.plugins.targets import Importer, Target

hookspec = pluggy.HookspecMarker("meta")
hookimpl = pluggy.HookimplMarker("meta")


@hookspec
def register_targets(register: Callable[[Target], None]) -> None:
    """Register backends: things that run, compile or deploy pipelines (local, airflow, prefect, ...)."""


@hookspec
def register_ops(register: Callable[[OpType], None]) -> None:
    """Register op types usable in a task as ``op: <name>`` with ``with: {...}``."""


@hookspec
def register_channels(register: Callable[[object], None]) -> None:
    """Register alert channel kinds (the part before the colon in ``slack:data-team``)."""


@hookspec
def register_importers(register: Callable[[Importer], None]) -> None:
    """Register importers for ``meta import <source>`` (e.g. existing Airflow DAGs)."""


@hookspec
def register_secret_providers(register: Callable[[object], None]) -> None:
    """Register secret providers consulted, in order, to resolve ``${secret:NAME}``."""
