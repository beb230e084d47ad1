"""``meta migrate report P``: live and shadow runs compared, run by run (docs/migrate.md#report).

Reads the control plane's store only (no backend is asked, no spec is loaded): the comparisons are taken by
``meta serve`` when both runs of a pair have ended. Exit codes: 0 ready (the last ``agree_after`` compared runs
agree), 1 not ready and some compared run disagrees (or could not be checked), 3 not ready yet (too few agreeing runs,
or runs still pending), 2 usage errors (no workspace, no migration of P).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from meta.cli.workspace_options import workspace_option


@click.command("report")
@click.argument("pipeline_id")
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON (every comparison in full)")
def report(pipeline_id: str, workspace_path: Path | None, as_json: bool) -> None:
    """Compare pipeline PIPELINE_ID's live runs with its shadow runs, logical date by logical date.

    Per run: task states and tries, rows inserted/updated/deleted by each audited load, and the checksum of each
    output table, on both sides; and whether the last `agree_after` (meta.yaml: migrations.<P>.agree_after)
    compared runs agree. Exit 0 ready, 1 a compared run disagrees, 3 not ready yet."""
    from meta.cli.workspace_options import require_workspace
    from meta.service.extra import require_server_extra

    loaded = require_workspace(workspace_path)
    require_server_extra()
    from meta.service.connections import database_url
    from meta.service.migrations.report import migration_report
    from meta.service.store.db import open_store

    store = open_store(database_url(loaded))  # the store alone, as `meta token` opens it: no backend is asked
    try:
        with store.reading() as session:
            result = migration_report(session, pipeline_id, loaded.workspace.migrations.get(pipeline_id))
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, sort_keys=False))
    else:
        click.echo(result.render_text())
    sys.exit(result.exit_code)


COMMANDS: list[click.Command] = [report]
