"""The outcome of a pipeline run, identical in shape on every backend (``meta run --json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meta.spec.states import RunState, TaskState


@dataclass(frozen=True)
class TaskResult:
    state: TaskState
    attempts: int = 0


@dataclass(frozen=True)
class RunResult:
    pipeline: str
    state: RunState
    tasks: dict[str, TaskResult] = field(default_factory=dict)
    run_id: str | None = None
    backend: str = "local"

    def to_json(self) -> dict[str, Any]:
        """``{"pipeline", "state", "tasks": {id: {"state", "attempts"}}}`` with Airflow's state names."""
        return {
            "pipeline": self.pipeline,
            "state": str(self.state),
            "tasks": {tid: {"state": str(r.state), "attempts": r.attempts} for tid, r in sorted(self.tasks.items())},
            "run_id": self.run_id,
            "backend": self.backend,
        }

    def states(self) -> dict[str, str]:
        """Task id -> state name; what conformance tests compare across backends."""
        return {tid: str(r.state) for tid, r in self.tasks.items()}
