"""The ``meta`` command line. Exit codes: 0 ok, 1 a run failed or validation found problems, 2 usage/meta errors.

Backend-specific commands (``compile``, ``deploy``, ``import``, ``run --backend``) only look targets and importers
up through the plugin manager, so adapters plug in without touching this file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from meta import __version__
from meta.spec.errors import MetaError, ValidationFailed
from meta.spec.model import Pipeline

GRAPH_FORMATS = ("mermaid", "dot", "ascii")


class MetaGroup(click.Group):
    """Turns every MetaError into a clean message on stderr and exit code 2 (no traceback)."""

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
    """Like Airflow's dags folder: python callables next to a spec (``jobs.x:f`` beside ``dags/x.yaml``) import."""
    # Appended, not prepended: a spec folder must not shadow the standard library or installed packages.
    for entry in [str(Path.cwd())] + [
        str(Path(p).resolve().parent if Path(p).is_file() else Path(p).resolve()) for p in paths
    ]:
        if entry not in sys.path:
            sys.path.append(entry)


def _pick(pipelines: list[Pipeline], pipeline_id: str | None, source: str) -> Pipeline:
    if pipeline_id is not None:
        for p in pipelines:
            if p.id == pipeline_id:
                return p
        raise click.BadParameter(
            f"no pipeline {pipeline_id!r} in {source}; it defines: {', '.join(p.id for p in pipelines)}",
            param_hint="--pipeline",
        )
    if len(pipelines) != 1:
        raise click.BadParameter(
            f"{source} defines {len(pipelines)} pipelines ({', '.join(p.id for p in pipelines)}); choose one",
            param_hint="--pipeline",
        )
    return pipelines[0]


# ---------------------------------------------------------------------------------------------- validate, list


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def validate(paths: tuple[str, ...]) -> None:
    """Check pipeline files and folders; list every problem (file:line:col), exit 1 if any."""
    try:
        pipelines = _load(paths)
    except ValidationFailed as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"{len(pipelines)} pipeline{'s' if len(pipelines) != 1 else ''} OK")


@cli.command("list")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="print a JSON list instead of a table")
def list_(paths: tuple[str, ...], as_json: bool) -> None:
    """List pipelines with their schedule, task count and owner."""
    from meta.builtin.local.report import table

    pipelines = _load(paths)
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


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the YAML pipeline format."""
    from meta.authoring.load import json_schema

    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


# ---------------------------------------------------------------------------------------------- graph


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(GRAPH_FORMATS), default="ascii", show_default=True)
@click.option("--pipeline", "pipeline_id", help="which pipeline, when the file defines several")
def graph(file: str, fmt: str, pipeline_id: str | None) -> None:
    """Print a pipeline's task graph as Mermaid, Graphviz dot or plain text."""
    p = _pick(_load([file]), pipeline_id, file)
    click.echo({"mermaid": _mermaid, "dot": _dot, "ascii": _ascii}[fmt](p))


def _rule_note(p: Pipeline, task_id: str) -> str | None:
    rule = p.settings_for(p.task(task_id)).trigger_rule
    return None if rule == "all_success" else str(rule)


def _mermaid(p: Pipeline) -> str:
    # Node ids n0, n1, ...: task ids may contain '.' and '-', which Mermaid reads as syntax.
    node = {t.id: f"n{i}" for i, t in enumerate(p.tasks)}
    lines = ["flowchart LR"]
    for t in p.tasks:
        note = _rule_note(p, t.id)
        label = f"{t.id}<br/><i>{note}</i>" if note else t.id
        lines.append(f'    {node[t.id]}["{label}"]')
    for t in p.tasks:
        lines += [f"    {node[u]} --> {node[t.id]}" for u in t.upstream]
    return "\n".join(lines)


def _dot(p: Pipeline) -> str:
    lines = [f"digraph {json.dumps(p.id)} {{", "    rankdir=LR;", "    node [shape=box];"]
    for t in p.tasks:
        note = _rule_note(p, t.id)
        label = f"{t.id} ({note})" if note else t.id
        lines.append(f"    {json.dumps(t.id)} [label={json.dumps(label)}];")
    for t in p.tasks:
        lines += [f"    {json.dumps(u)} -> {json.dumps(t.id)};" for u in t.upstream]
    lines.append("}")
    return "\n".join(lines)


def _ascii(p: Pipeline) -> str:
    from meta.spec.dag import topological_order

    order = topological_order({t.id: t.upstream for t in p.tasks})
    depth: dict[str, int] = {}
    for task_id in order:
        ups = p.task(task_id).upstream
        depth[task_id] = 1 + max((depth[u] for u in ups), default=-1)
    width = max(2 * depth[t] + len(t) for t in order)
    lines = [p.id]
    for task_id in order:
        t = p.task(task_id)
        name = "  " * depth[task_id] + task_id
        line = f"  {name.ljust(width)}"
        if t.upstream:
            line += f"  <- {', '.join(t.upstream)}"
        note = _rule_note(p, task_id)
        if note:
            line += f"  [{note}]"
        lines.append(line.rstrip())
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- run, runs


def _parse_logical_date(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"expected an ISO-8601 date or date-time like 2026-01-31T01:00:00+00:00, got {value!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--pipeline", "pipeline_id", help="which pipeline, when the file defines several")
@click.option("--param", "param_pairs", multiple=True, metavar="NAME=VALUE", help="run parameter (repeatable)")
@click.option("--backend", default="local", show_default=True, help="local, or a backend a plugin provides")
@click.option("--json", "as_json", is_flag=True, help="print only the RunResult JSON document on stdout")
@click.option("--logical-date", callback=_parse_logical_date, metavar="ISO", help="default: now (UTC)")
@click.option("--run-id", help="default: manual__<logical date>")
@click.option("--parallelism", type=click.IntRange(min=1), help="local backend: tasks at once (default: CPUs)")
def run(
    file: str,
    pipeline_id: str | None,
    param_pairs: tuple[str, ...],
    backend: str,
    as_json: bool,
    logical_date: datetime | None,
    run_id: str | None,
    parallelism: int | None,
) -> None:
    """Run one pipeline and wait for it; progress goes to stderr. Exit 0 if the run succeeded, 1 if it failed."""
    from meta.builtin.local.report import result_table, run_table
    from meta.plugins.manager import get_target
    from meta.semantics.params import parse_param_args

    p = _pick(_load([file]), pipeline_id, file)
    params = parse_param_args(p, param_pairs)

    def progress(line: str) -> None:
        click.echo(line, err=True)

    target = get_target(backend)
    outcome = None
    if backend == "local":
        from meta.builtin.local import LocalRunner

        target.ensure_supported(p)
        outcome = LocalRunner(parallelism=parallelism).run(
            p, params=params, logical_date=logical_date, run_id=run_id, progress=progress
        )
        result = outcome.result
    else:
        if parallelism is not None:
            raise click.BadParameter("only the local backend takes --parallelism", param_hint="--parallelism")
        result = target.run(p, params=params, logical_date=logical_date, run_id=run_id, progress=progress)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(run_table(outcome) if outcome is not None else result_table(result))
        click.echo(f"\nrun {result.run_id} of {result.pipeline} on {result.backend}: {result.state}")
        if outcome is not None and outcome.log_dir is not None:
            click.echo(f"logs: {outcome.log_dir}")
    sys.exit(0 if result.state == "success" else 1)


@cli.command()
@click.option("--pipeline", "pipeline_id", help="only this pipeline")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def runs(pipeline_id: str | None, limit: int, as_json: bool) -> None:
    """Recent runs of the local backend (from <state dir>/meta.db; $META_HOME or ./.meta)."""
    from meta.builtin.local.report import history_table
    from meta.builtin.local.state import History
    from meta.settings import state_dir

    rows = History(state_dir() / "meta.db").runs(pipeline_id, limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo(f"no runs recorded in {state_dir() / 'meta.db'}")
    else:
        click.echo(history_table(rows))


# ---------------------------------------------------------------------------------------------- plugin commands


@cli.command("compile")
@click.option("--target", "target_name", required=True, help="a target a plugin provides, e.g. airflow or prefect")
@click.argument("specs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="output folder")
def compile_(target_name: str, specs: tuple[str, ...], out_dir: str) -> None:
    """Generate backend code, such as Airflow DAG files, for the pipelines in SPECS."""
    from meta.plugins.manager import get_target

    target = get_target(target_name)
    pipelines = _load(specs)
    written = target.compile(pipelines, Path(out_dir), [Path(s) for s in specs])
    for path in written:
        click.echo(str(path))


@cli.command()
@click.option("--target", "target_name", required=True, help="a target a plugin provides, e.g. airflow or prefect")
@click.argument("specs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--pool", help="work pool / pool name, for targets that use one")
@click.option("--api-url", help="the backend's API URL (default: the target's own setting)")
def deploy(target_name: str, specs: tuple[str, ...], pool: str | None, api_url: str | None) -> None:
    """Deploy the pipelines in SPECS to a running backend."""
    from meta.plugins.manager import get_target

    target = get_target(target_name)
    options = {k: v for k, v in {"pool": pool, "api_url": api_url}.items() if v is not None}
    for line in target.deploy(_load(specs), **options):
        click.echo(line)


@cli.command("import")
@click.argument("source")
@click.option("--dags-folder", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--dag-id", help="only this DAG")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="folder for YAML")
def import_(source: str, dags_folder: str, dag_id: str | None, out_dir: str) -> None:
    """Convert another tool's definitions (SOURCE: airflow, ...) into meta YAML, one file per pipeline."""
    from meta.authoring.load import pipeline_to_yaml
    from meta.plugins.manager import get_importer

    importer = get_importer(source)
    options = {"dag_id": dag_id} if dag_id is not None else {}
    pipelines = importer.import_pipelines(Path(dags_folder), **options)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for p in pipelines:
        path = out / f"{p.id}.yaml"
        path.write_text(pipeline_to_yaml(p), encoding="utf-8")
        click.echo(str(path))


if __name__ == "__main__":  # pragma: no cover
    main()
