"""Who enforces a pipeline's SLAs: the backend itself (``Target.native_sla``) or meta's control plane.

A :class:`Supervision` says which pipelines the control plane (``meta serve``) of one workspace watches on which kind
of backend: a pipeline counts as watched on backend kind K when one of the workspace's placements puts it on a backend
of kind K. Every workspace has a control plane (``control_plane`` is optional, with defaults), so every placement
counts. The CLI builds one from the workspace file it finds (``meta compile/run/deploy``) and hands it to the target
with ``Target.supervised``; the shared checks (``meta.plugins.support.sla_problems``) refuse every SLA feature that is
neither native to the backend nor watched, so nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from meta.spec.model import Pipeline
from meta.spec.workspace import Workspace, matches


@dataclass(frozen=True)
class Supervision:
    """The placements of workspace ``workspace`` as (backend name, backend kind, pipeline patterns)."""

    workspace: str
    placements: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    source: str | None = None  # the workspace file, for messages

    @classmethod
    def of(cls, workspace: Workspace, source: str | None = None) -> Supervision:
        placed = []
        for placement in workspace.placements:
            backend = workspace.backends.get(placement.backend)
            if backend is None:  # the model refuses this; be safe anyway
                continue
            placed.append((placement.backend, backend.kind, placement.pipelines))
        return cls(workspace.name, tuple(placed), source)

    def backends(self, pipeline_id: str, kind: str) -> list[str]:
        """The names of the backends of ``kind`` the workspace places ``pipeline_id`` on (each once)."""
        out: list[str] = []
        for name, backend_kind, patterns in self.placements:
            if backend_kind == kind and name not in out and matches(pipeline_id, patterns):
                out.append(name)
        return out

    def watches(self, pipeline_id: str, kind: str) -> bool:
        """Whether the control plane watches ``pipeline_id`` when it runs on a backend of ``kind``."""
        return bool(self.backends(pipeline_id, kind))

    def where(self) -> str:
        return f"workspace {self.workspace!r}" + (f" ({self.source})" if self.source else "")


def sla_features(pipeline: Pipeline) -> Iterator[tuple[str, str | None]]:
    """Every SLA feature of ``pipeline`` as (feature name, task id or None): ``sla.<kind>`` for each of
    ``sla.kinds()`` (deadlines as ``sla.deadline:<reference>+<interval>``), ``tasks.<id>.max_duration``,
    ``alerts.on_sla_miss`` and ``alerts.sla_escalation``."""
    if pipeline.sla is not None:
        for kind in pipeline.sla.kinds():
            yield f"sla.{kind}", None
    for task in pipeline.tasks:
        if task.max_duration is not None:
            yield f"tasks.{task.id}.max_duration", task.id
    if pipeline.alerts.on_sla_miss:
        yield "alerts.on_sla_miss", None
    if pipeline.alerts.sla_escalation is not None:
        yield "alerts.sla_escalation", None
