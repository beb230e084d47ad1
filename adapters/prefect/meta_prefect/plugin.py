"""Registers the ``prefect`` target with meta (entry point ``meta.plugins``: ``prefect = ...``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from meta import (
    BackendOption,
    CompileError,
    Pipeline,
    PlannedDeploy,
    ProgressCallback,
    RunRequest,
    RunResult,
    Target,
    hookimpl,
)


class PrefectTarget(Target):
    name = "prefect"
    description = "Prefect 3: flows built at run time, generated flow files, deployments on a Prefect server"

    def problems(self, pipeline: Pipeline) -> list[CompileError]:
        from meta_prefect.capabilities import problems

        managed = self.supervision is not None and self.supervision.watches(pipeline.id, self.name)
        return problems(pipeline, managed=managed)

    def run(self, pipeline: Pipeline, request: RunRequest, progress: ProgressCallback | None = None) -> RunResult:
        from meta_prefect.run import run_pipeline

        self.ensure_supported(pipeline)
        return run_pipeline(pipeline, request, progress=progress)

    def compile(self, pipelines: Sequence[Pipeline], out_dir: Path, sources: Sequence[Path] = ()) -> list[Path]:
        from meta_prefect.codegen import write_flows

        for pipeline in pipelines:
            self.ensure_supported(pipeline)
        return write_flows(pipelines, out_dir, sources)

    def deploy(self, pipelines: Sequence[Pipeline], **options: Any) -> list[str]:
        from meta_prefect.deploy import deploy

        for pipeline in pipelines:
            self.ensure_supported(pipeline)
        return deploy(pipelines, **options)

    def compare_deployed(self, pipelines: Sequence[Pipeline], **options: Any) -> list[PlannedDeploy]:
        from meta_prefect.deploy import compare_deployed

        return compare_deployed(pipelines, **options)


@hookimpl
def register_targets(register: Callable[[Target], None]) -> None:
    register(PrefectTarget())


@hookimpl
def register_commands(add_option: Callable[[BackendOption], None]) -> None:
    """``meta deploy --target prefect --pool NAME [--api-url URL]``: reach ``deploy(pool=..., api_url=...)``."""
    import click

    add_option(BackendOption("deploy", "prefect", click.Option(["--pool"], help="prefect: the work pool to deploy to")))
    add_option(
        BackendOption(
            "deploy",
            "prefect",
            click.Option(["--api-url"], help="prefect: the server's API URL (default: PREFECT_API_URL)"),
        )
    )
