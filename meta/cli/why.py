"""``meta why P``: what a pipeline waits for across orchestrators, and what the control plane did about it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from meta.cli.dependency_text import explain
from meta.cli.service import api, api_options


@click.command()
@click.argument("pipeline")
@api_options
@click.option("--limit", default=10, show_default=True, help="how many logical dates to show, newest first")
@click.option("--json", "as_json", is_flag=True, help="print the dependencies and waits as JSON")
def why(
    pipeline: str, workspace_path: Path | None, api_url: str | None, token: str | None, limit: int, as_json: bool
) -> None:
    """Why PIPELINE runs (or does not run yet): its depends_on upstreams, and for each recent logical date what it
    waits for (which upstream, on which backend, since and until when) or which run the control plane started
    for it and from which upstream runs. Without a running `meta serve` the backends are polled once and the
    waits judged in-process; nothing is started."""
    with api(workspace_path, api_url, token) as client:
        found = client.get(f"/pipelines/{pipeline}/dependencies", limit=limit)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(explain(found))
