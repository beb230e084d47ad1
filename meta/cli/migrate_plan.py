"""``meta migrate plan DAGS_FOLDER --to BACKEND``: what each DAG of a folder needs to move (docs/migrate.md).

Each DAG is imported (``meta import``'s importer, one DAG at a time) and its pipeline checked against the target, as
``meta compile --target`` would (``Target.check``). The verdict per DAG:

* ``moves as is``: imported fully, and the target expresses every feature;
* ``moves with changes``: imported, but the import dropped something or kept it tool-specific (its notes), or the
  target runs it differently (``target_changes``: the local runner schedules nothing): each change is listed;
* ``blocked``: the importer refused the DAG (or its file did not load), or the target cannot express a feature
  (a CompileError): each is named with the reason.

BACKEND is a target (``airflow``, ``prefect``, ``local``, or a plugin's) or a backend of the workspace file
(``meta.yaml``): then the plan assumes the workspace will place the imported pipelines on it, so its control plane
(``meta serve``) runs what the target alone cannot (catchup, end dates, SLAs, ``depends_on``). The target's checks
are pure Python: ``--to prefect`` works without a Prefect server, in the same environment as the Airflow importer.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from meta.cli.workspace_options import workspace_option, workspace_path
from meta.plugins.importing import ImportOutcome
from meta.plugins.targets import Target
from meta.spec.errors import MetaError
from meta.spec.model import Pipeline

MOVES, CHANGES, BLOCKED = "moves as is", "moves with changes", "blocked"


@dataclass
class Destination:
    """Where the plan moves pipelines: the target that checks them, named as the user named it."""

    name: str  # what --to said
    target: Target
    workspace_backend: str | None = None  # set when --to named a backend of the workspace


@dataclass
class Verdict:
    subject: str
    verdict: str
    changes: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)


def destination(name: str, given_workspace: Path | None, pipeline_ids: list[str]) -> Destination:
    """``--to NAME``: a target (checked alone, as ``meta compile --target`` without a workspace; with
    ``--workspace``, what that workspace places keeps its control plane), else a backend of the workspace file,
    which then places ``pipeline_ids`` on it. The workspace file is read only when needed: a broken ``meta.yaml``
    above the working directory does not break a plan for a bare target."""
    from meta.authoring.workspace import load_workspace
    from meta.plugins.manager import targets
    from meta.plugins.supervision import Supervision

    registered = targets()
    if name in registered and given_workspace is None:
        return Destination(name, registered[name])
    found = workspace_path(given_workspace)
    loaded = load_workspace(found) if found is not None else None
    if loaded is not None and name in loaded.workspace.backends:
        kind = loaded.workspace.backends[name].kind
        if kind not in registered:
            raise click.UsageError(f"backend {name!r} of {found} is a {kind} backend; no installed plugin moves to it")
        current = Supervision.of(loaded.workspace, str(found))
        placed = Supervision(current.workspace, (*current.placements, (name, kind, tuple(pipeline_ids))), str(found))
        return Destination(name, registered[kind].supervised(placed), name)
    if name in registered and loaded is not None:
        return Destination(name, registered[name].supervised(Supervision.of(loaded.workspace, str(found))))
    backends = sorted(loaded.workspace.backends) if loaded is not None else []
    raise click.UsageError(
        f"--to {name!r} is neither a target ({', '.join(sorted(registered))}) nor a backend of the workspace file"
        + (f" ({', '.join(backends)})" if backends else " (none found; pass --workspace PATH)")
    )


def target_changes(target: Target, pipeline: Pipeline) -> list[str]:
    """What runs differently on ``target`` although it accepts the pipeline. Only the local runner has such
    changes: it schedules nothing (a past ``start_date`` of a cron schedule without catchup, which Prefect drops, is
    no change: its deployment starts from now, as the DAG would)."""
    if target.scheduled:
        return []
    out = [f"schedule: {target.name} runs pipelines on demand only (`meta run`); nothing schedules it"]
    out = out if pipeline.schedule is not None else []
    return out + [f"{feature} is not watched on {target.name}" for feature in target.unwatched_sla(pipeline)]


def verdicts(outcome: ImportOutcome, target: Target) -> list[Verdict]:
    """One verdict per imported pipeline, then one per refusal (the order of ``import_report.entries``)."""
    out: list[Verdict] = []
    for item in outcome.imported:
        changes = [*item.notes, *target_changes(target, item.pipeline)]
        try:
            blockers = [str(e) for e in target.check(item.pipeline)]
        except ImportError as exc:  # a target plugin installed without its orchestrator's package
            raise MetaError(
                f"the {target.name} target cannot check pipelines here: {exc}; install it beside the importer "
                f"(the checks contact no server)"
            ) from None
        verdict = BLOCKED if blockers else CHANGES if changes else MOVES
        out.append(Verdict(f"DAG {item.pipeline.id!r}", verdict, changes, blockers))
    for refusal in outcome.refused:
        where = f" ({refusal.location})" if refusal.location else ""
        blocker = f"the importer refused it{where}: {refusal.reason}"
        if refusal.expected:
            blocker += f" (expected: {refusal.expected})"
        out.append(Verdict(refusal.subject, BLOCKED, blockers=[blocker]))
    return out


@click.command("plan")
@click.argument("dags_folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--to", "to", required=True, metavar="BACKEND",
              help="a target (airflow, prefect, local) or a backend of the workspace file")  # fmt: skip
@click.option("--from", "source", default="airflow", show_default=True, help="the importer that reads DAGS_FOLDER")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="write the imported specs (and the files they need) here")  # fmt: skip
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="PATH",
              help="write the plan as PATH.md and PATH.json (a .md or .json suffix names that one)")  # fmt: skip
@workspace_option
def plan(
    dags_folder: Path, to: str, source: str, out_dir: Path | None, report_path: Path | None, workspace_path: Path | None
) -> None:
    """Say, per DAG of DAGS_FOLDER, whether it moves to BACKEND as is, with changes (listed), or is blocked (why).

    stdout: one verdict line per DAG, each change or blocker indented below it, then the files written (-o,
    --report). Exit 0 when nothing is blocked, 1 otherwise (also when nothing was found)."""
    from meta.cli.importing import run_importer, write_outcome

    outcome = run_importer(source, dags_folder)
    dest = destination(to, workspace_path, [i.pipeline.id for i in outcome.imported])
    found = verdicts(outcome, dest.target)
    for v in found:
        click.echo(f"{v.subject}: {v.verdict}")
        for change in v.changes:
            click.echo(f"  change: {' '.join(change.split())}")
        for blocker in v.blockers:
            click.echo(f"  blocks: {' '.join(blocker.split())}")
    counts = {kind: sum(1 for v in found if v.verdict == kind) for kind in (MOVES, CHANGES, BLOCKED)}
    if not found:
        click.echo(f"error: nothing to plan: {source} found no definitions in {dags_folder}", err=True)
    else:
        click.echo(", ".join(f"{n} {kind}" for kind, n in counts.items()) + f" (to {to})", err=True)
    specs: dict[str, Path] = {}
    files: dict[str, Path] = {}
    if out_dir is not None:
        specs, files = write_outcome(outcome, out_dir)
    if report_path is not None:
        from meta.cli.import_report import entries, write_report

        items = entries(outcome, specs, files)
        for item, v in zip(items, found, strict=True):
            item.extra = {"verdict": v.verdict, "changes": v.changes, "blockers": v.blockers}
        head = {
            "source": source,
            "folder": str(dags_folder),
            "to": to,
            "target": dest.target.name,
            "workspace_backend": dest.workspace_backend,
            "verdicts": counts,
        }
        lines = [f"`meta migrate plan {dags_folder} --to {to}` (target {dest.target.name}).", ""]
        lines += [", ".join(f"{n} {kind}" for kind, n in counts.items()) + ".", ""]
        for path in write_report(report_path, "Migration plan", items, head, lines):
            click.echo(str(path))
    sys.exit(0 if found and not counts[BLOCKED] else 1)


COMMANDS: list[click.Command] = [plan]
