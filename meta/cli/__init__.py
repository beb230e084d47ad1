"""The ``meta`` command line. Exit codes: 0 ok, 1 a run failed or validation found problems, 2 usage/meta errors.

One module per group of commands: ``inspect`` (validate, list, schema), ``graph``, ``run`` (run, runs), ``build``
(compile, deploy), ``importing`` (import), ``service`` (serve, status, trigger, token: the control plane); they
import ``meta.cli.common``, ``meta.cli.backend_options`` and ``meta.cli.workspace_options``, never this package,
which adds their commands to ``cli``. Backend-specific commands (``compile``, ``deploy``, ``import``,
``run --backend``) only look targets and importers up through the plugin manager, and backends add their own
options and commands through the ``register_commands`` hook (meta/plugins/commands.py), so adapters plug in
without touching this package.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from meta import __version__
from meta.cli.backfills import backfill
from meta.cli.build import compile_, deploy
from meta.cli.graph import graph
from meta.cli.importing import import_
from meta.cli.inspect import list_, schema, validate
from meta.cli.migrate import migrate
from meta.cli.run import run, runs
from meta.cli.service import serve, sla, status, token, trigger
from meta.cli.why import why
from meta.plugins.commands import OptionGroup
from meta.spec.errors import MetaError
from meta.spec.model import Pipeline


class MetaGroup(click.Group):
    """Turns every MetaError into a clean message on stderr and exit code 2 (no traceback), and applies what
    plugins add (``register_commands``) before each command line is parsed."""

    backend_options: dict[str, list[OptionGroup]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.backend_options = {}
        self._core: dict[str, click.Command] | None = None

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            self.load_plugins()
        except MetaError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        return super().main(*args, **kwargs)

    def load_plugins(self) -> None:
        """Start from meta's own commands and let every plugin extend them (again: tests register plugins late)."""
        from meta.plugins.commands import group_options
        from meta.plugins.manager import register_commands

        if self._core is None:
            self._core = dict(self.commands)
        self.commands = dict(self._core)
        self.backend_options = group_options(register_commands(self))
        replaced = sorted(name for name, command in self._core.items() if self.commands.get(name) is not command)
        if replaced:
            raise MetaError(f"a plugin replaced meta's own command(s) {', '.join(replaced)}; choose another name")

    def load_pipelines(self, paths: Sequence[str]) -> list[Pipeline]:
        """What the command modules load pipelines with (meta.cli.common.load)."""
        return _load(paths)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MetaError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=MetaGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="meta")
def cli() -> None:
    """meta: define pipelines once, run them on the local runner, Airflow or Prefect with Airflow's semantics."""


def main() -> None:
    cli(prog_name="meta")


# ---------------------------------------------------------------------------------------------- loading


def _load(paths: Sequence[str]) -> list[Pipeline]:
    from meta.authoring.load import load_paths

    _add_import_paths(paths)
    return load_paths(list(paths))


def _add_import_paths(paths: Sequence[str]) -> None:
    """Like Airflow's dags folder: python callables next to a spec (``jobs.x:f`` beside ``dags/x.yaml``) import.

    Import roots of this command's context (``meta.authoring.import_roots``), not ``sys.path`` entries; looked up
    after the standard library and installed packages, so a spec folder never shadows them."""
    from meta.authoring.import_roots import add_import_roots

    folders = [Path(p).resolve().parent if Path(p).is_file() else Path(p) for p in paths]
    restore = add_import_roots([Path.cwd(), *folders])
    command = click.get_current_context(silent=True)
    if command is not None:  # scoped to this command: an in-process caller (CliRunner, a server) gets them back
        command.call_on_close(restore)


for _command in (
    validate,
    list_,
    schema,
    graph,
    run,
    runs,
    compile_,
    deploy,
    import_,
    migrate,
    serve,
    status,
    sla,
    trigger,
    backfill,
    why,
    token,
):
    cli.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    main()
