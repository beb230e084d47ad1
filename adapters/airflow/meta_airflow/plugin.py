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
    DeployAction,
    Importer,
    ImportOutcome,
    Pipeline,
    PlannedDeploy,
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

    def native_sla(self, pipeline: Pipeline) -> set[str]:
        """max_duration, finish_by (a fixed daily cron time) and every sla.deadlines entry, as Deadline Alerts."""
        from meta import airflow_native_sla

        return airflow_native_sla(pipeline)

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
        from meta_airflow.remote import write_spec

        specs_dir = self._specs_dir(pipelines, options)
        out = []
        for pipeline in pipelines:
            self.ensure_supported(pipeline)
            out.append(str(write_spec(specs_dir, pipeline)))
        return out

    def compare_deployed(self, pipelines: Sequence[Pipeline], **options: Any) -> list[PlannedDeploy]:
        """Compare each spec with the file ``deploy`` would overwrite in the loader's folder (reads only)."""
        from meta_airflow.remote import spec_path, spec_text

        specs_dir = self._specs_dir(pipelines, options)
        out = []
        for pipeline in pipelines:
            path = spec_path(specs_dir, pipeline.id)
            if not path.is_file():
                out.append(PlannedDeploy(pipeline.id, DeployAction.CREATED, f"writes {path}"))
                continue
            old = path.read_text(encoding="utf-8", errors="replace")
            new = spec_text(pipeline)
            if old == new:
                out.append(PlannedDeploy(pipeline.id, DeployAction.UNCHANGED, str(path)))
            else:
                out.append(
                    PlannedDeploy(pipeline.id, DeployAction.CHANGED, f"rewrites {path}{_changed_keys(old, new)}")
                )
        return out

    def _specs_dir(self, pipelines: Sequence[Pipeline], options: dict[str, Any]) -> Path:
        import os

        specs_dir = options.get("specs_dir") or os.environ.get("META_AIRFLOW_SPECS_DIR")
        if not specs_dir:
            raise CompileError(
                self.name,
                ",".join(p.id for p in pipelines),
                "deploy without a specs folder",
                "pass specs_dir= or set META_AIRFLOW_SPECS_DIR to the loader's folder",
            )
        return Path(specs_dir)


def _changed_keys(old: str, new: str) -> str:
    """`` (changed: schedule, tasks)``: the top-level fields of the spec that differ, when the old file parses."""
    import json

    try:
        before, after = json.loads(old), json.loads(new)
    except ValueError:
        return ""
    if not isinstance(before, dict):
        return ""
    keys = sorted(k for k in {*before, *after} if before.get(k) != after.get(k))
    return f" (changed: {', '.join(keys)})" if keys else ""


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
