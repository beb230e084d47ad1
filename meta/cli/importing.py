"""``meta import``: another tool's definitions (Airflow DAGs, ...) as meta YAML, through the named importer."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("import")
@click.argument("source")
@click.option("--dags-folder", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--dag-id", help="only this DAG")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="folder for YAML")
def import_(source: str, dags_folder: str, dag_id: str | None, out_dir: str) -> None:
    """Convert another tool's definitions (SOURCE: airflow, ...) into meta YAML, one file per pipeline.

    Imports each definition on its own: writes those that map (stdout lists only the files written), and prints on
    stderr the notes of partial imports and every refusal with its reason. Exit 0 if everything was imported, 1 if
    anything was refused or nothing was found.
    """
    import contextlib

    from meta.authoring.load import pipeline_to_yaml
    from meta.plugins.manager import get_importer

    importer = get_importer(source)
    options = {"dag_id": dag_id} if dag_id is not None else {}
    with contextlib.redirect_stdout(sys.stderr):  # whatever the importer or the tool prints is not our output
        outcome = importer.import_pipelines(Path(dags_folder), **options)
    out = Path(out_dir)
    for extra in outcome.files:
        target = out / extra.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(extra.text, encoding="utf-8")
        click.echo(str(target))
    for item in outcome.imported:
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{item.pipeline.id}.yaml"
        path.write_text(pipeline_to_yaml(item.pipeline), encoding="utf-8")
        click.echo(str(path))
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
    sys.exit(0 if outcome.complete else 1)
