"""CLI extensions a plugin adds through the ``register_commands`` hook (meta/plugins/hookspecs.py).

A plugin adds whole commands to the ``meta`` group (``cli.add_command``), or a ``BackendOption``: an option of a core
command that only its backend takes, such as ``meta deploy --target prefect --pool NAME``. The core command
(meta/cli) shows backend options in ``--help``, refuses one given with another backend (naming the backends that
take it) and passes the given ones on: to ``Target.deploy(pipelines, **options)`` for ``deploy``, to
``Target.configure(**options)`` for ``run``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import click

CoreCommand = Literal["run", "deploy"]


@dataclass(frozen=True)
class BackendOption:
    command: CoreCommand
    backend: str
    option: click.Option


@dataclass
class OptionGroup:
    """One click option of a core command and the backends taking it (two backends may register the same name)."""

    option: click.Option
    backends: set[str] = field(default_factory=set)


def group_options(options: Iterable[BackendOption]) -> dict[str, list[OptionGroup]]:
    """Core command name -> its backend options, one per option name (the first registration's click.Option)."""
    out: dict[str, dict[str, OptionGroup]] = {}
    for item in options:
        by_name = out.setdefault(item.command, {})
        name = item.option.name or ""
        by_name.setdefault(name, OptionGroup(item.option)).backends.add(item.backend)
    return {command: list(by_name.values()) for command, by_name in out.items()}
