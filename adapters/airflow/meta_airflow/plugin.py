"""meta plugin registering the ``airflow`` target and importer (entry point ``meta.plugins: airflow``).

Imports nothing from Airflow at registration time: listing backends must stay fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from meta import CompileError, Importer, Pipeline, ProgressCallback, RunResult, Target, hookimpl


class AirflowTarget(Target):
    name = "airflow"
    description = "Apache Airflow 3: parse-time loader, generated DAG files, runs via dag.test() or a server's REST API"

    def check(self, pipeline: Pipeline) -> list[CompileError]:
        from meta_airflow.plan import problems

        return problems(pipeline)

    def compile(self, pipelines: Sequence[Pipeline], out_dir: Path, sources: Sequence[Path] = ()) -> list[Path]:
        from meta_airflow.codegen import write_dag_files

        return write_dag_files(pipelines, out_dir, sources)

    def run(
        self,
        pipeline: Pipeline,
        *,
        params: dict[str, Any] | None = None,
        logical_date: datetime | None = None,
        run_id: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> RunResult:
        from meta_airflow.run import run_pipeline

        return run_pipeline(pipeline, params=params, logical_date=logical_date, run_id=run_id, progress=progress)

    def deploy(self, pipelines: Sequence[Pipeline], **options: Any) -> list[str]:
        """Write specs into an Airflow loader folder (``specs_dir=`` or env META_AIRFLOW_SPECS_DIR)."""
        import os

        from meta_airflow.plan import ensure_supported
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
            ensure_supported(pipeline)
            out.append(str(write_spec(Path(specs_dir), pipeline)))
        return out


class AirflowImporter(Importer):
    name = "airflow"
    description = "Airflow DAG files -> neutral pipelines (unknown operators become airflow_operator passthroughs)"

    def import_pipelines(self, source: Path, **options: Any) -> list[Pipeline]:
        from meta_airflow.importer import import_dags

        return import_dags(Path(source), dag_id=options.get("dag_id"))


@hookimpl
def register_targets(register: Any) -> None:
    register(AirflowTarget())


@hookimpl
def register_importers(register: Any) -> None:
    register(AirflowImporter())
