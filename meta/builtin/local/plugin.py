"""Registers the embedded runner as the ``local`` target, through the same hook third-party backends use."""

from __future__ import annotations

from collections.abc import Callable

from meta.plugins.hookspecs import hookimpl
from meta.plugins.targets import Target


@hookimpl
def register_targets(register: Callable[[Target], None]) -> None:
    from meta.builtin.local.target import LocalTarget

    register(LocalTarget())
