"""``meta validate``, ``meta list`` and ``meta schema``: reading pipelines without running them."""

from __future__ import annotations

import json
import sys

import click

from meta.cli.common import load
from meta.spec.errors import ValidationFailed
from meta.spec.model import Pipeline


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def validate(paths: tuple[str, ...]) -> None:
    """Check pipeline files and folders; list every problem (file:line:col), exit 1 if any."""
    try:
        pipelines = load(paths)
    except ValidationFailed as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"{len(pipelines)} pipeline{'s' if len(pipelines) != 1 else ''} OK")


@click.command("list")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="print a JSON list instead of a table")
def list_(paths: tuple[str, ...], as_json: bool) -> None:
    """List pipelines with their schedule, task count and owner."""
    from meta.builtin.local.report import table

    pipelines = load(paths)
    rows = [
        {"pipeline": p.id, "schedule": _schedule_text(p), "tasks": len(p.tasks), "owner": p.owner or ""}
        for p in pipelines
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(table(("pipeline", "schedule", "tasks", "owner"), [tuple(r.values()) for r in rows]))


def _schedule_text(p: Pipeline) -> str:
    s = p.schedule
    if s is None:
        return "-"
    if s.kind == "cron":
        return f"{s.cron} ({p.timezone})"
    if s.kind == "interval":
        from meta.spec.durations import format_duration

        return f"every {format_duration(s.every)}"
    return f"on {s.mode} of {', '.join(s.datasets)}"


@click.command()
@click.option("--workspace", "of_workspace", is_flag=True, help="the workspace file's (meta.yaml) schema instead")
def schema(of_workspace: bool) -> None:
    """Print the JSON Schema of the YAML pipeline format (or, with --workspace, of the workspace file)."""
    if of_workspace:
        from meta.authoring.schema import workspace_json_schema

        click.echo(json.dumps(workspace_json_schema(), indent=2, sort_keys=True))
        return
    from meta.authoring.load import json_schema

    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))
