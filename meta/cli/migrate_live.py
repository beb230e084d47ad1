"""``meta migrate shadow|cutover|rollback|status P``: dual-run, switch over and back (docs/migrate.md).

These commands act on the backends (deploy, pause, resume) with the workspace's credentials, as ``meta deploy``
does, and record each step in the control plane's database, where ``meta serve`` picks them up: it starts the
shadow runs and, once the target is live, the target's slots. Each command is safe to run again after an
interruption: it resumes where the recorded state says.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from meta.cli.workspace_options import require_workspace, workspace_option
from meta.spec.errors import MetaError


@contextmanager
def _switch(workspace_path: Path | None, pipeline_id: str, target: str | None, source: str | None) -> Iterator[Any]:
    """The ``Switch`` for ``pipeline_id``: its spec, both sides' observers, a deploy through the target plugins."""
    from meta.cli.service import _plane
    from meta.cli.workspace_deploy import target_options
    from meta.service.migrations import records
    from meta.service.migrations.switch import Side, Switch

    loaded = require_workspace(workspace_path)
    plane = _plane(loaded)
    try:
        pipeline = next((p for p in plane.pipelines if p.id == pipeline_id), None)
        if pipeline is None:
            known = ", ".join(sorted(p.id for p in plane.pipelines)) or "none"
            raise MetaError(f"no pipeline {pipeline_id!r} in the workspace's specs ({loaded.path}); found: {known}")
        with plane.store.reading() as session:
            row = records.get(session, pipeline_id)
        settings = loaded.workspace.migrations.get(pipeline_id)
        source = source or (row.source_backend if row else None) or _placed_once(loaded, pipeline_id)
        target = target or (row.target_backend if row else None) or (settings.to if settings else None)
        if target is None:
            raise click.UsageError(f"where to? give --to BACKEND (or migrations.{pipeline_id}.to in meta.yaml)")
        observers = {w.connection.name: w.observer for w in plane.watches}
        for name in (source, target):
            if name not in observers:
                raise MetaError(f"backend {name!r} is not in the workspace; defined: {', '.join(sorted(observers))}")
        if source == target:
            raise MetaError(f"{pipeline_id} already runs on {source}: the target must be another backend")

        def deploy(what: Any, backend: str) -> None:
            if loaded.workspace.backends[backend].kind == "local":
                click.echo(f"  {deploy_local(observers[backend].home, what)}")
                return
            target_name, options = target_options(loaded, backend)
            for line in _moving_target(loaded, target_name, backend, pipeline_id).deploy([what], **options):
                click.echo(f"  {line}")

        yield (
            Switch(
                plane.store,
                pipeline,
                Side(source, observers[source]),
                Side(target, observers[target]),
                deploy,
                by="cli",
                echo=click.echo,
            ),
            settings,
            plane,
        )
    finally:
        plane.close()


def _moving_target(loaded: Any, target_name: str, backend: str, pipeline_id: str) -> Any:
    """The target, supervised as if the workspace placed the pipeline (and its shadow) on ``backend`` too: its
    control plane watches and starts them there during the move (depends_on, SLAs), as for a placed pipeline."""
    from meta.plugins.manager import get_target
    from meta.plugins.supervision import Supervision
    from meta.service.migrations.shadow import shadow_id

    placed = Supervision.of(loaded.workspace, str(loaded.path))
    kind = loaded.workspace.backends[backend].kind
    moving = (backend, kind, (pipeline_id, shadow_id(pipeline_id)))
    return get_target(target_name).supervised(
        Supervision(placed.workspace, (*placed.placements, moving), placed.source)
    )


def deploy_local(home: Path, pipeline: Any) -> Path:
    """A local backend runs specs: write this one where its observer's ``trigger`` finds it."""
    from meta.authoring.load import pipeline_to_yaml
    from meta.service.observers.local import deployed_spec

    path = deployed_spec(home, pipeline.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pipeline_to_yaml(pipeline), encoding="utf-8")
    return path


def _placed_once(loaded: Any, pipeline_id: str) -> str:
    placed = loaded.workspace.backends_of(pipeline_id)
    if len(placed) != 1:
        where = ", ".join(placed) or "no backend"
        raise click.UsageError(f"{pipeline_id} is placed on {where}; say which one is live with --from BACKEND")
    return str(placed[0])


def _options(command: Any) -> Any:
    command = click.option("--from", "source", metavar="BACKEND", help="the live backend (default: its placement)")(
        command
    )
    command = click.argument("pipeline_id")(command)
    return workspace_option(command)


@click.command("shadow")
@_options
@click.option("--to", "target", metavar="BACKEND", help="the backend to move to (default: migrations.<id>.to)")
def shadow(workspace_path: Path | None, pipeline_id: str, source: str | None, target: str | None) -> None:
    """Keep PIPELINE_ID live where it is and run a shadow copy on --to for the same logical dates.

    The copy is deployed as <id>__shadow, without a schedule, alerts, SLA or datasets, writing through the shadow
    connections of meta.yaml (migrations.<id>.shadow_connections); `meta serve` starts it for each live run."""
    from meta.spec.workspace import Migration

    with _switch(workspace_path, pipeline_id, target, source) as (switch, settings, plane):
        copy = switch.start_shadow(settings or Migration(), plane.team_of(pipeline_id))
    for note in copy.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"{pipeline_id}: shadowing on {switch.target.backend} as {copy.pipeline.id}; `meta serve` starts it for each "
        f"live run on {switch.source.backend}; compare with `meta migrate report {pipeline_id}`"
    )


@click.command("cutover")
@_options
def cutover(workspace_path: Path | None, pipeline_id: str, source: str | None) -> None:
    """Make the target live: pause PIPELINE_ID on the source (between runs), deploy it on the target, and let the
    control plane start every slot after the hand-off there. Run again to resume an interrupted cutover."""
    with _switch(workspace_path, pipeline_id, None, source) as (switch, _settings, _plane):
        switch.cutover()


@click.command("rollback")
@_options
def rollback(workspace_path: Path | None, pipeline_id: str, source: str | None) -> None:
    """Undo the cutover: stop starting slots on the target, record its slots on the source as handled, resume the
    source as it was, and start the slots between the two schedules once. Run again to resume."""
    with _switch(workspace_path, pipeline_id, None, source) as (switch, _settings, _plane):
        switch.rollback()


@click.command("status")
@workspace_option
@click.argument("pipeline_id", required=False)
def status(workspace_path: Path | None, pipeline_id: str | None) -> None:
    """Every migration (or PIPELINE_ID's): phase, sides, hand-off slot, shadow runs and driven slots, history."""
    from meta.cli.service import _store_only
    from meta.service.migrations import records

    with _store_only(workspace_path) as store, store.reading() as session:
        rows = [r for r in records.every(session) if pipeline_id in (None, r.pipeline_id)]
        if not rows:
            raise MetaError(f"no migration{' of ' + pipeline_id if pipeline_id else ''} is recorded")
        for row in rows:
            live = records.live_backend(row)
            click.echo(
                f"{row.pipeline_id}: {row.phase}, live on {live} ({row.source_backend} -> {row.target_backend}), "
                f"shadow {row.shadow_id}; hand-off slot {_iso(row.handoff_slot)}"
            )
            pairs = records.pairs(session, row.pipeline_id)
            slots = records.slots(session, row.pipeline_id)
            click.echo(f"  shadow runs: {len(pairs)}; slots started by the control plane: {len(slots)}")
            for slot in slots:
                click.echo(f"    {_iso(slot.slot)} on {slot.backend}: {slot.state} {slot.run_id or ''}".rstrip())
            for entry in row.history or []:
                detail = ", ".join(f"{k} {v}" for k, v in entry.items() if k not in ("action", "at", "by"))
                click.echo(f"  {entry['at']} {entry['action']} by {entry['by']}{': ' + detail if detail else ''}")


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value is not None else "-"


COMMANDS: list[click.Command] = [shadow, cutover, rollback, status]
