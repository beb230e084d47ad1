"""The ``local`` target: the embedded runner behind meta's common Target interface (``meta run --backend local``)."""

from __future__ import annotations

import copy
from typing import Any

from meta.builtin.local.engine import RunOutcome
from meta.builtin.local.runner import LocalRunner
from meta.plugins.targets import ProgressCallback, RunReport, Target
from meta.semantics.request import RunRequest
from meta.spec.model import Pipeline
from meta.spec.results import RunResult


class LocalTarget(Target):
    name = "local"
    description = "embedded runner: threads and subprocesses on this machine, history in SQLite (no server)"

    def __init__(self, parallelism: int | None = None):
        self.parallelism = parallelism

    def configure(self, *, parallelism: int | None = None, **options: Any) -> LocalTarget:
        super().configure(**options)  # refuses options this backend does not know
        configured = copy.copy(self)  # keeps what the plugin manager bound (op_lookup)
        if parallelism is not None:
            configured.parallelism = parallelism
        return configured

    def run(self, pipeline: Pipeline, request: RunRequest, progress: ProgressCallback | None = None) -> RunResult:
        return self.run_outcome(pipeline, request, progress).result

    def run_report(
        self, pipeline: Pipeline, request: RunRequest, progress: ProgressCallback | None = None
    ) -> RunReport:
        from meta.builtin.local.report import run_table

        outcome = self.run_outcome(pipeline, request, progress)
        notes = (f"logs: {outcome.log_dir}",) if outcome.log_dir is not None else ()
        return RunReport(outcome.result, run_table(outcome), notes)

    def run_outcome(self, pipeline: Pipeline, request: RunRequest, progress: ProgressCallback | None) -> RunOutcome:
        """The run with everything the local runner knows (timings, log folder), after the shared checks."""
        self.ensure_supported(pipeline)
        return LocalRunner(parallelism=self.parallelism).run(pipeline, request, progress=progress)
