"""The outcome of a pipeline run, identical in shape on every backend (``meta run --json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meta.spec.states import RunState, TaskState


@dataclass(frozen=True)
class TaskResult:
    """One task of a run. A mapped task also has ``instances`` by map index (empty when it never expanded: skipped
    for an empty list, or decided before it could expand); its ``state`` then sums them up (``mapped_state``) and
    ``attempts`` counts the attempts of all its instances."""

    state: TaskState
    attempts: int = 0
    instances: dict[int, TaskResult] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": str(self.state), "attempts": self.attempts}
        if self.instances is not None:
            out["instances"] = {str(i): r.to_json() for i, r in sorted(self.instances.items())}
        return out

    @classmethod
    def mapped(cls, instances: dict[int, TaskResult], decided: TaskState | None = None) -> TaskResult:
        """A mapped task from its instances (or, with none, the state it was decided in)."""
        state = mapped_state([r.state for r in instances.values()]) if instances else decided or TaskState.SCHEDULED
        return cls(state, sum(r.attempts for r in instances.values()), dict(sorted(instances.items())))


# Which instance state a mapped task shows, most telling first: a failure anywhere is what an on-call engineer needs.
_SUMMARY_ORDER = (
    TaskState.FAILED,
    TaskState.UPSTREAM_FAILED,
    TaskState.RUNNING,
    TaskState.UP_FOR_RETRY,
    TaskState.QUEUED,
    TaskState.SCHEDULED,
    TaskState.SUCCESS,
    TaskState.SKIPPED,
)


def mapped_state(states: list[TaskState]) -> TaskState:
    """The state a mapped task shows for its instances' states: the first of failed, upstream_failed, the unfinished
    states, success, skipped that any instance is in."""
    present = set(states)
    for state in _SUMMARY_ORDER:
        if state in present:
            return state
    return states[0]


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
            "tasks": {tid: r.to_json() for tid, r in sorted(self.tasks.items())},
            "run_id": self.run_id,
            "backend": self.backend,
        }

    def states(self) -> dict[str, str]:
        """Task id -> state name; what conformance tests compare across backends."""
        return {tid: str(r.state) for tid, r in self.tasks.items()}

    def instance_states(self) -> dict[str, dict[int, str]]:
        """Mapped task id -> {map index: state name}; compared across backends like ``states``."""
        return {
            tid: {i: str(inst.state) for i, inst in sorted(r.instances.items())}
            for tid, r in self.tasks.items()
            if r.instances is not None
        }
