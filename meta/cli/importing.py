"""``meta import``: another tool's definitions (Airflow DAGs, ...) as meta YAML, through the named importer."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from meta.plugins.importing import ImportOutcome


def run_importer(source: str, folder: Path, dag_id: str | None = None) -> ImportOutcome:
    """The named importer on ``folder``; whatever it or the tool prints goes to stderr (stdout is for paths)."""
    from meta.plugins.manager import get_importer

    importer = get_importer(source)
    options = {"dag_id": dag_id} if dag_id is not None else {}
    with contextlib.redirect_stdout(sys.stderr):
        return importer.import_pipelines(folder, **options)


def write_outcome(outcome: ImportOutcome, out: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Write each imported pipeline's spec and the files they need into ``out``, echoing each path on stdout.
    Returns (pipeline id -> spec written, ``ImportedFile.path`` -> file written)."""
    from meta.authoring.load import pipeline_to_yaml

    files: dict[str, Path] = {}
    for extra in outcome.files:
        target = out / extra.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(extra.text, encoding="utf-8")
        files[extra.path] = target
        click.echo(str(target))
    specs: dict[str, Path] = {}
    for item in outcome.imported:
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{item.pipeline.id}.yaml"
        path.write_text(pipeline_to_yaml(item.pipeline), encoding="utf-8")
        specs[item.pipeline.id] = path
        click.echo(str(path))
    return specs, files


@click.command("import")
@click.argument("source")
@click.option("--dags-folder", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--dag-id", help="only this DAG")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="folder for YAML")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    default=None,
    help="also write a report per DAG: PATH.md (Markdown) and PATH.json (JSON); a .md or .json suffix picks the "
    "name of that one, the other is written beside it",
)
def import_(source: str, dags_folder: str, dag_id: str | None, out_dir: str, report_path: Path | None) -> None:
    """Convert another tool's definitions (SOURCE: airflow, ...) into meta YAML, one file per pipeline.

    Imports each definition on its own: writes those that map (stdout lists only the files written), and prints on
    stderr the notes of partial imports and every refusal with its reason. Exit 0 if everything was imported, 1 if
    anything was refused or nothing was found.
    """
    outcome = run_importer(source, Path(dags_folder), dag_id)
    specs, files = write_outcome(outcome, Path(out_dir))
    for item in outcome.imported:
        if item.notes:
            where = f" ({item.location})" if item.location else ""
            count = f"{len(item.notes)} note{'s' if len(item.notes) != 1 else ''}"
            click.echo(f"partial: {item.pipeline.id}{where}, written with {count}:", err=True)
            for note in item.notes:
                click.echo(f"  - {note}", err=True)
    for refusal in outcome.refused:
        click.echo(f"refused: {refusal}", err=True)
    if not outcome.imported and not outcome.refused:
        click.echo(f"error: nothing to import: {source} found no definitions in {dags_folder}", err=True)
    else:
        partial = sum(1 for i in outcome.imported if i.partial)
        click.echo(f"imported {len(outcome.imported)} ({partial} partial), refused {len(outcome.refused)}", err=True)
    if report_path is not None:
        from meta.cli.import_report import entries, write_report

        head = {"source": source, "folder": str(dags_folder), "out": str(out_dir), "complete": outcome.complete}
        lines = [f"`meta import {source}` of `{dags_folder}` into `{out_dir}`.", ""]
        for path in write_report(report_path, "Import report", entries(outcome, specs, files), head, lines):
            click.echo(str(path))
    sys.exit(0 if outcome.complete else 1)
