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
    """``native_sla``: ``max_duration``, alerted to ``on_sla_miss`` when a run ends later (``alerts.RouteAlerts``)."""

    name = "local"
    description = "embedded runner: threads and subprocesses on this machine, history in SQLite (no server)"
    # Runs only on demand (no scheduler): an SLA nobody watches is run anyway, and the run report says so.
    scheduled = False

    def __init__(self, parallelism: int | None = None):
        self.parallelism = parallelism

    def configure(self, *, parallelism: int | None = None, **options: Any) -> LocalTarget:
        super().configure(**options)  # refuses options this backend does not know
        configured = copy.copy(self)  # keeps what the plugin manager bound (op_lookup)
        if parallelism is not None:
            configured.parallelism = parallelism
        return configured

    def native_sla(self, pipeline: Pipeline) -> set[str]:
        return {"max_duration"} if pipeline.sla is not None and pipeline.sla.max_duration is not None else set()

    def run(self, pipeline: Pipeline, request: RunRequest, progress: ProgressCallback | None = None) -> RunResult:
        return self.run_outcome(pipeline, request, progress).result

    def run_report(
        self, pipeline: Pipeline, request: RunRequest, progress: ProgressCallback | None = None
    ) -> RunReport:
        from meta.builtin.local.report import run_table

        outcome = self.run_outcome(pipeline, request, progress)
        notes: tuple[str, ...] = (f"logs: {outcome.log_dir}",) if outcome.log_dir is not None else ()
        unwatched = self.unwatched_sla(pipeline)
        if unwatched:
            notes += (
                f"not watched: {', '.join(unwatched)} (the local runner alerts only sla.max_duration, after the run; "
                "place the pipeline on a local backend in a workspace (meta.yaml) so `meta serve` watches the rest)",
            )
        return RunReport(outcome.result, run_table(outcome), notes)

    def run_outcome(self, pipeline: Pipeline, request: RunRequest, progress: ProgressCallback | None) -> RunOutcome:
        """The run with everything the local runner knows (timings, log folder), after the shared checks."""
        self.ensure_supported(pipeline)
        return LocalRunner(parallelism=self.parallelism).run(pipeline, request, progress=progress)
