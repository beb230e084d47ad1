"""``meta compile`` and ``meta deploy``: backend code and deployments, through the named target's plugin, or, for
``meta deploy`` without ``--target``, through the backends of the workspace file (``meta.cli.workspace_deploy``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from meta.cli.backend_options import BackendCommand, registered, take
from meta.cli.common import load, supervised
from meta.cli.workspace_options import require_workspace, workspace_option
from meta.plugins.targets import DeployAction


@click.command("compile")
@click.option("--target", "target_name", required=True, help="a target a plugin provides, e.g. airflow or prefect")
@click.argument("specs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="output folder")
def compile_(target_name: str, specs: tuple[str, ...], out_dir: str) -> None:
    """Generate backend code, such as Airflow DAG files, for the pipelines in SPECS.

    SLAs the backend cannot enforce itself pass when the workspace file (meta.yaml) above SPECS or the working
    directory places the pipeline on a backend of this kind: its control plane (`meta serve`) watches them."""
    from meta.plugins.manager import get_target

    pipelines = load(specs)
    target = supervised(get_target(target_name), pipelines, specs)
    written = target.compile(pipelines, Path(out_dir), [Path(s) for s in specs])
    for path in written:
        click.echo(str(path))


@click.command(cls=BackendCommand)
@click.option(
    "--target",
    "target_name",
    default=None,
    help="a target a plugin provides, e.g. airflow or prefect (default: every backend of the workspace file, "
    "each pipeline where the file places it)",
)
@click.argument("specs", nargs=-1, type=click.Path(exists=True))
@click.option(
    "--dry-run",
    is_flag=True,
    help="print what deploy would do (created / changed / unchanged / refused, per backend) and change nothing",
)
@workspace_option
def deploy(
    target_name: str | None, specs: tuple[str, ...], dry_run: bool, workspace_path: Path | None, **backend_options: Any
) -> None:
    """Deploy pipelines to running backends: those of SPECS to --target, or, without --target, every pipeline the
    workspace file (meta.yaml) places, to its backends (SPECS then narrows it to those files' pipelines).

    Options whose help starts with a backend's name (airflow:, prefect:) come from that backend's plugin and are
    refused with another --target; without --target the workspace file gives them.
    """
    from meta.plugins.manager import get_target

    ctx = click.get_current_context()
    if target_name is None:
        _deploy_workspace(ctx, specs, dry_run, workspace_path, backend_options)
        return
    if not specs:
        raise click.UsageError("--target needs SPECS (spec files or folders) to deploy", ctx)
    if workspace_path is not None:
        raise click.UsageError("--workspace places pipelines on backends itself; give it or --target, not both", ctx)
    options = take(ctx, target_name, backend_options, "--target")
    pipelines = load(specs)
    target = supervised(get_target(target_name), pipelines, specs)
    if dry_run:
        from meta.cli.workspace_deploy import print_entries

        planned = target.plan_deploy(pipelines, **options)
        print_entries(planned, click.echo)
        if any(p.action is DeployAction.REFUSED for p in planned):
            ctx.exit(1)
        return
    for line in target.deploy(pipelines, **options):
        click.echo(line)


def _deploy_workspace(
    ctx: click.Context, specs: tuple[str, ...], dry_run: bool, workspace: Path | None, given: dict[str, Any]
) -> None:
    from meta.cli import workspace_deploy

    for group in registered(ctx, "deploy"):
        name = group.option.name or ""
        if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            raise click.UsageError(
                f"{group.option.opts[0]} goes with --target {' or '.join(sorted(group.backends))}; without --target "
                "the workspace file says where and how each backend deploys",
                ctx,
            )
    loaded = require_workspace(workspace)
    everything = load([str(p) for p in loaded.spec_paths()])
    pipelines = load(specs) if specs else everything
    planned = workspace_deploy.plan(loaded, pipelines, [p.id for p in everything])
    if not dry_run and not planned.blocked:
        workspace_deploy.deploy(loaded, planned)
    workspace_deploy.print_plan(planned, click.echo, dry_run=dry_run)
    if planned.blocked:
        ctx.exit(1)
