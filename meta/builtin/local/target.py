"""The ``local`` target: the embedded runner behind meta's common Target interface."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from meta.builtin.local.runner import LocalRunner
from meta.plugins.targets import ProgressCallback, Target
from meta.spec.errors import CompileError, PluginError
from meta.spec.model import AirflowOperatorAction, OpAction, Pipeline
from meta.spec.results import RunResult


class LocalTarget(Target):
    name = "local"
    description = "embedded runner: threads and subprocesses on this machine, history in SQLite (no server)"

    def __init__(self, parallelism: int | None = None):
        self.parallelism = parallelism

    def check(self, pipeline: Pipeline) -> list[CompileError]:
        errors = []
        for task in pipeline.tasks:
            action = task.action
            if isinstance(action, AirflowOperatorAction):
                errors.append(
                    CompileError(
                        self.name,
                        pipeline.id,
                        f"the Airflow operator {action.operator}",
                        "only the airflow backend runs airflow_operator tasks",
                        task=task.id,
                    )
                )
            elif isinstance(action, OpAction):
                from meta.plugins.manager import get_op

                try:
                    op = get_op(action.op)
                except PluginError as exc:
                    errors.append(
                        CompileError(self.name, pipeline.id, f"op type {action.op!r}", str(exc), task=task.id)
                    )
                    continue
                if op.backends is not None and self.name not in op.backends:
                    errors.append(
                        CompileError(
                            self.name,
                            pipeline.id,
                            f"op type {action.op!r}",
                            f"it supports only {sorted(op.backends)}",
                            task=task.id,
                        )
                    )
        return errors

    def run(
        self,
        pipeline: Pipeline,
        *,
        params: dict[str, Any] | None = None,
        logical_date: datetime | None = None,
        run_id: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> RunResult:
        self.ensure_supported(pipeline)
        runner = LocalRunner(parallelism=self.parallelism)
        return runner.run(pipeline, params=params, logical_date=logical_date, run_id=run_id, progress=progress).result
