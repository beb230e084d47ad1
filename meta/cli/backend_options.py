"""Options of ``meta run`` / ``meta deploy`` that only some backends take, registered by plugins through the
``register_commands`` hook (meta/plugins/commands.py): shown in ``--help``, refused with another backend."""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource

from meta.plugins.commands import OptionGroup


def registered(ctx: click.Context, command: str) -> list[OptionGroup]:
    """The backend options plugins registered for ``command`` (kept on the root group, see ``MetaGroup``)."""
    return list(getattr(ctx.find_root().command, "backend_options", {}).get(command, []))


class BackendCommand(click.Command):
    """A core command whose options include the ones backends registered for it."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        own = len(self.params)  # click appends --help after the command's own parameters
        return [*params[:own], *(group.option for group in registered(ctx, self.name or "")), *params[own:]]


def take(ctx: click.Context, backend: str, values: dict[str, Any], flag: str) -> dict[str, Any]:
    """The backend options given on the command line for ``backend``, as keywords for the target.

    One given for another backend is a usage error naming who takes it (``flag`` is ``--backend`` or ``--target``),
    never silently ignored."""
    out: dict[str, Any] = {}
    for group in registered(ctx, ctx.command.name or ""):
        name = group.option.name or ""
        source = ctx.get_parameter_source(name)
        if source not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            continue
        if backend not in group.backends:
            raise click.UsageError(
                f"{group.option.opts[0]} is an option of {' and '.join(sorted(group.backends))}; "
                f"{flag} {backend} does not take it",
                ctx,
            )
        out[name] = values[name]
    return out
