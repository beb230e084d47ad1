"""``meta backfill P --from D1 --to D2``: one run per schedule slot on every backend P is placed on (Airflow through
its own backfill API), and with ``--with-downstream`` its dependents on their backends, each date after its
upstream date succeeded. Resumable: the same command again continues it."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from meta.cli.service import _loaded, _plane
from meta.cli.workspace_options import workspace_option
from meta.spec.errors import MetaError

REPROCESS = ("none", "failed", "completed")


class When(click.ParamType):
    name = "DATE"

    def __init__(self, end_of_day: bool = False):
        self.end_of_day = end_of_day  # --to 2026-12-03 means through that whole day

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"expected an ISO date or date-time like 2026-12-01 or 2026-12-01T06:00+01:00, got {value!r}")
        if self.end_of_day and len(text) == 10:  # a bare date
            parsed = parsed.replace(hour=23, minute=59, second=59, microsecond=999999)
        return parsed


@click.command()
@click.argument("pipeline")
@click.option("--from", "start", type=When(), required=True, help="first logical date (inclusive)")
@click.option(
    "--to",
    "end",
    type=When(end_of_day=True),
    required=True,
    help="last logical date (inclusive; a bare date: through its end)",
)
@click.option("--backend", "backends", multiple=True, help="only this backend (repeatable; default: every placement)")
@click.option("--with-downstream", is_flag=True, help="also backfill the pipelines that depend on it, date by date")
@click.option(
    "--reprocess",
    type=click.Choice(REPROCESS),
    default="none",
    show_default=True,
    help="dates that already ran: none = skip them, failed = re-run the failed ones, completed = re-run all",
)
@click.option("--dry-run", is_flag=True, help="list the dates per pipeline and backend; start nothing")
@workspace_option
def backfill(
    pipeline: str,
    start: datetime,
    end: datetime,
    backends: tuple[str, ...],
    with_downstream: bool,
    reprocess: str,
    dry_run: bool,
    workspace_path: Path | None,
) -> None:
    """Backfill PIPELINE's schedule slots from --from to --to (both inclusive; dates without an offset are in the
    pipeline's timezone) on every backend it is placed on: Airflow through its backfill API, Prefect and the local
    runner as one run per slot with a deterministic key. Progress goes to stdout, a line per date as it changes.

    Re-running the same command re-does nothing that succeeded, and resumes a backfill stopped by Ctrl-C. Exit
    code 1 when a date failed (or was upstream_failed)."""
    from meta.plugins.observers import BackendUnreachable
    from meta.service.backfills import Backfill
    from meta.service.observers.airflow import AirflowApiError

    plane = _plane(_loaded(workspace_path))
    try:
        job = Backfill(
            plane,
            pipeline,
            start,
            end,
            backends=backends,
            reprocess=reprocess,  # type: ignore[arg-type]
            with_downstream=with_downstream,
            echo=lambda line: click.echo(line),
        )
        try:
            items = _drive(job, dry_run)
        except (BackendUnreachable, AirflowApiError, LookupError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MetaError(
                f"a backend did not answer or refused: {first}"
                + ("" if dry_run else f"; backfill {job.id} is stored: run the same command again to resume it")
            ) from None
        except KeyboardInterrupt:
            click.echo(
                f"\ninterrupted: backfill {job.id} is stored; run the same command again to resume it "
                "(started runs keep running on their backends)",
                err=True,
            )
            sys.exit(130)
        if items is None:
            return
    finally:
        plane.close()
    click.echo("")
    width = max(len(i.label) for i in items) if items else 0
    for item in items:
        click.echo(f"{item.label.ljust(width)}  {item.state:16} {item.run_id or '-'}")
    bad = [i for i in items if i.state in ("failed", "upstream_failed")]
    if bad:
        click.echo(
            f"{len(bad)} of {len(items)} dates did not succeed; fix the cause and run the same command with "
            "--reprocess failed",
            err=True,
        )
        sys.exit(1)


def _drive(job: Any, dry_run: bool) -> Any:
    """The dates with what they will do (dry run: printed, None returned), or every date once all have ended."""
    if not dry_run:
        return job.run()
    items = job.plan()
    click.echo(f"dry run of backfill {job.id}: {len(items)} dates, nothing started")
    for item in items:
        what = "skip (already run)" if item.state == "skipped" else "run"
        after = f", after {item.upstream_of} succeeds" if item.upstream_of else ""
        native = " (Airflow's backfill)" if item.native else ""
        click.echo(f"  {item.label}: {what}{native}{after}")
    return None
