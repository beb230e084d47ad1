"""``meta run`` (one pipeline on any backend, through its ``Target``) and ``meta runs`` (the control plane's runs in a
workspace, else the local history)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from meta.cli.backend_options import BackendCommand, take
from meta.cli.common import load, pick, supervised
from meta.cli.service import api_options, list_runs_everywhere


def _parse_logical_date(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)  # naive means UTC: RunRequest.build decides that, for every caller
    except ValueError:
        raise click.BadParameter(
            f"expected an ISO-8601 date or date-time like 2026-01-31T01:00:00+00:00, got {value!r}"
        ) from None


@click.command(cls=BackendCommand)
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--pipeline", "pipeline_id", help="which pipeline, when the file defines several")
@click.option("--param", "param_pairs", multiple=True, metavar="NAME=VALUE", help="run parameter (repeatable)")
@click.option("--backend", default="local", show_default=True, help="local, or a backend a plugin provides")
@click.option("--json", "as_json", is_flag=True, help="print only the RunResult JSON document on stdout")
@click.option("--logical-date", callback=_parse_logical_date, metavar="ISO", help="default: now (UTC)")
@click.option("--run-id", help="default: manual__<logical date>")
def run(
    file: str,
    pipeline_id: str | None,
    param_pairs: tuple[str, ...],
    backend: str,
    as_json: bool,
    logical_date: datetime | None,
    run_id: str | None,
    **backend_options: Any,
) -> None:
    """Run one pipeline and wait for it; progress goes to stderr. Exit 0 if the run succeeded, 1 if it failed.

    SLAs the backend cannot enforce itself pass when the workspace file (meta.yaml) above FILE or the working
    directory places the pipeline on a backend of this kind: its control plane (`meta serve`) watches them."""
    from meta.builtin.local.report import result_table
    from meta.plugins.manager import get_target
    from meta.semantics.params import parse_param_args
    from meta.semantics.request import RunRequest

    options = take(click.get_current_context(), backend, backend_options, "--backend")
    p = pick(load([file]), pipeline_id, file)
    params = parse_param_args(p, param_pairs)
    target = supervised(get_target(backend).configure(**options), [p], [file])
    request = RunRequest.build(p, params=params, logical_date=logical_date, run_id=run_id)

    def progress(line: str) -> None:
        click.echo(line, err=True)

    report = target.run_report(p, request, progress=progress)
    result = report.result
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(report.table if report.table is not None else result_table(result))
        click.echo(f"\nrun {result.run_id} of {result.pipeline} on {result.backend}: {result.state}")
        for note in report.notes:
            click.echo(note)
    sys.exit(0 if result.state == "success" else 1)


@click.command()
@click.option("--pipeline", "pipeline_id", help="only this pipeline")
@click.option("--backend", help="only runs on this backend (needs a workspace: the control plane's view)")
@click.option(
    "--state",
    type=click.Choice(["scheduled", "queued", "running", "success", "failed", "other"]),
    help="only runs in this unified state (control plane)",
)
@click.option("--limit", type=click.IntRange(min=1, max=500), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@api_options
def runs(
    pipeline_id: str | None,
    backend: str | None,
    state: str | None,
    limit: int,
    as_json: bool,
    workspace_path: Path | None,
    api_url: str | None,
    token: str | None,
) -> None:
    """Recent runs. In a workspace (a meta.yaml here or above, or --workspace/--api): every backend's, through the
    control plane. Otherwise the local backend's history (<state dir>/meta.db; $META_HOME or ./.meta)."""
    from meta import settings
    from meta.authoring.workspace import find_workspace
    from meta.builtin.local.report import history_table
    from meta.builtin.local.state import History
    from meta.settings import state_dir

    if workspace_path or api_url or settings.api_url() or find_workspace(Path.cwd()):
        list_runs_everywhere(
            workspace_path,
            api_url,
            token,
            backend=backend,
            pipeline_id=pipeline_id,
            state=state,
            limit=limit,
            as_json=as_json,
        )
        return
    if backend or state:
        raise click.UsageError("--backend and --state need a workspace (meta.yaml) or --api: the control plane's view")
    rows = History(state_dir() / "meta.db").runs(pipeline_id, limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo(f"no runs recorded in {state_dir() / 'meta.db'}")
    else:
        click.echo(history_table(rows))
