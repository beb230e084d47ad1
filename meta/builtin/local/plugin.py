"""Registers the embedded runner as the ``local`` target, through the same hooks third-party backends use."""

from __future__ import annotations

from collections.abc import Callable

import click

from meta.plugins.commands import BackendOption
from meta.plugins.hookspecs import hookimpl
from meta.plugins.targets import Target


@hookimpl
def register_targets(register: Callable[[Target], None]) -> None:
    from meta.builtin.local.target import LocalTarget

    register(LocalTarget())


@hookimpl
def register_commands(add_option: Callable[[BackendOption], None]) -> None:
    # Reaches LocalTarget.configure(parallelism=...).
    option = click.Option(["--parallelism"], type=click.IntRange(min=1), help="local: tasks at once (default: CPUs)")
    add_option(BackendOption("run", "local", option))
