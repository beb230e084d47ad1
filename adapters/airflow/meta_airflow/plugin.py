"""meta plugin registering the ``airflow`` target and importer (entry point ``meta.plugins: airflow``).

Imports nothing from Airflow at registration time: listing backends must stay fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from meta import (
    BackendOption,
    CompileError,
    Importer,
    ImportOutcome,
    Pipeline,
    ProgressCallback,
    RunRequest,
    RunResult,
    Target,
    hookimpl,
)


class AirflowTarget(Target):
    name = "airflow"
    description = "Apache Airflow 3: parse-time loader, generated DAG files, runs via dag.test() or a server's REST API"

    def problems(self, pipeline: Pipeline) -> list[CompileError]:
        from meta_airflow.plan import problems

        return problems(pipeline)

    def compile(self, pipelines: Sequence[Pipeline], out_dir: Path, sources: Sequence[Path] = ()) -> list[Path]:
        from meta_airflow.codegen import write_dag_files

        for pipeline in pipelines:
            self.ensure_supported(pipeline)
        return write_dag_files(pipelines, out_dir, sources)

    def run(self, pipeline: Pipeline, request: RunRequest, progress: ProgressCallback | None = None) -> RunResult:
        from meta_airflow.run import run_pipeline

        self.ensure_supported(pipeline)
        return run_pipeline(pipeline, request, progress=progress)

    def deploy(self, pipelines: Sequence[Pipeline], **options: Any) -> list[str]:
        """Write specs into an Airflow loader folder (``specs_dir=`` or env META_AIRFLOW_SPECS_DIR)."""
        import os

        from meta_airflow.remote import write_spec

        specs_dir = options.get("specs_dir") or os.environ.get("META_AIRFLOW_SPECS_DIR")
        if not specs_dir:
            raise CompileError(
                self.name,
                ",".join(p.id for p in pipelines),
                "deploy without a specs folder",
                "pass specs_dir= or set META_AIRFLOW_SPECS_DIR to the loader's folder",
            )
        out = []
        for pipeline in pipelines:
            self.ensure_supported(pipeline)
            out.append(str(write_spec(Path(specs_dir), pipeline)))
        return out


class AirflowImporter(Importer):
    name = "airflow"
    description = "Airflow DAG files -> neutral pipelines (unknown operators become airflow_operator passthroughs)"

    def import_pipelines(self, source: Path, **options: Any) -> ImportOutcome:
        from meta_airflow.importer import import_dags

        return import_dags(Path(source), dag_id=options.get("dag_id"))


@hookimpl
def register_targets(register: Callable[[Target], None]) -> None:
    register(AirflowTarget())


@hookimpl
def register_importers(register: Callable[[Importer], None]) -> None:
    register(AirflowImporter())


@hookimpl
def register_commands(add_option: Callable[[BackendOption], None]) -> None:
    """``meta deploy --target airflow --specs-dir DIR``: reach ``deploy(specs_dir=...)``."""
    import click

    option = click.Option(
        ["--specs-dir"],
        type=click.Path(file_okay=False),
        help="airflow: the folder the loader reads specs from (default: META_AIRFLOW_SPECS_DIR)",
    )
    add_option(BackendOption("deploy", "airflow", option))
