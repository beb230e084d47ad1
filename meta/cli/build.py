"""``meta compile`` and ``meta deploy``: backend code and deployments, through the named target's plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from meta.cli.backend_options import BackendCommand, take
from meta.cli.common import load


@click.command("compile")
@click.option("--target", "target_name", required=True, help="a target a plugin provides, e.g. airflow or prefect")
@click.argument("specs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="output folder")
def compile_(target_name: str, specs: tuple[str, ...], out_dir: str) -> None:
    """Generate backend code, such as Airflow DAG files, for the pipelines in SPECS."""
    from meta.plugins.manager import get_target

    target = get_target(target_name)
    pipelines = load(specs)
    written = target.compile(pipelines, Path(out_dir), [Path(s) for s in specs])
    for path in written:
        click.echo(str(path))


@click.command(cls=BackendCommand)
@click.option("--target", "target_name", required=True, help="a target a plugin provides, e.g. airflow or prefect")
@click.argument("specs", nargs=-1, required=True, type=click.Path(exists=True))
def deploy(target_name: str, specs: tuple[str, ...], **backend_options: Any) -> None:
    """Deploy the pipelines in SPECS to a running backend.

    Options whose help starts with a backend's name (airflow:, prefect:) come from that backend's plugin and are
    refused with another --target.
    """
    from meta.plugins.manager import get_target

    options = take(click.get_current_context(), target_name, backend_options, "--target")
    target = get_target(target_name)
    for line in target.deploy(load(specs), **options):
        click.echo(line)
