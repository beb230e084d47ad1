"""What the engine watches: one ``WatchedSubject`` per (backend, pipeline) with an SLA, and per dataset SLA.

Three sources: placed meta-built pipelines whose spec has ``sla`` or a task ``max_duration`` (on every backend they
are placed on); the workspace's ``slas:`` entries for pipelines meta did not build (a glob matched against the
pipelines the store has seen, or an exact id on a named backend, so a DAG that never ran still misses its slots);
and ``slas:`` entries on a dataset, fresh when any task listing it in ``outputs`` succeeded, on any backend.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from meta.semantics.sla import SlaSpec
from meta.semantics.sla.native import airflow_native_sla
from meta.spec.model import CronSchedule, Escalation, IntervalSchedule, Pipeline
from meta.spec.workspace import WatchedSla, Workspace

DATASET_BACKEND = "*"  # a dataset's SLA spans backends


@dataclass(frozen=True)
class WatchedSubject:
    backend: str  # a backend name, or DATASET_BACKEND
    backend_kind: str
    subject: str  # the pipeline id, or "dataset:<uri>"
    team: str | None
    spec: SlaSpec
    channels: tuple[str, ...] = ()
    escalation: Escalation | None = None
    # SLA kinds whose first notice the backend sends itself (Airflow's Deadline Alerts in DAGs meta generated)
    native: frozenset[str] = frozenset()
    # for a dataset: (backend, pipeline, task) that write it
    producers: tuple[tuple[str, str, str], ...] = field(default=())

    @property
    def key(self) -> tuple[str, str]:
        return (self.backend, self.subject)

    @property
    def is_dataset(self) -> bool:
        return self.backend == DATASET_BACKEND


def watched_subjects(
    workspace: Workspace,
    pipelines: Sequence[Pipeline],
    seen: Iterable[tuple[str, str]],
    team_of: Callable[[str], str | None],
    live_on: Callable[[str], list[str]] | None = None,
) -> list[WatchedSubject]:
    """Every subject to watch now. ``seen``: (backend, pipeline id) the store knows (observed DAGs and flows);
    ``live_on``: where a meta pipeline runs now (default: its placements; a migration moves it, ``routing``)."""
    live_on = live_on or workspace.backends_of
    kinds = {name: backend.kind for name, backend in workspace.backends.items()}
    out: dict[tuple[str, str], WatchedSubject] = {}
    for pipeline in pipelines:
        limits = {t.id: t.max_duration for t in pipeline.tasks if t.max_duration is not None}
        if pipeline.sla is None and not limits:
            continue
        spec = SlaSpec(
            sla=pipeline.sla,
            task_limits=limits,
            schedule=pipeline.schedule if isinstance(pipeline.schedule, CronSchedule | IntervalSchedule) else None,
            timezone=pipeline.timezone,
            start_date=pipeline.start_date,
        )
        for backend in live_on(pipeline.id):
            kind = kinds.get(backend, "")
            out[(backend, pipeline.id)] = WatchedSubject(
                backend,
                kind,
                pipeline.id,
                team_of(pipeline.id),
                spec,
                tuple(pipeline.alerts.on_sla_miss),
                pipeline.alerts.sla_escalation,
                # the first notice of what a generated DAG alerts itself is Airflow's
                frozenset(airflow_native_sla(pipeline)) if kind == "airflow" else frozenset(),
            )
    seen_by_backend: dict[str, set[str]] = {}
    for backend, pipeline_id in seen:
        seen_by_backend.setdefault(backend, set()).add(pipeline_id)
    for entry in workspace.slas:
        if entry.dataset is not None:
            subject = _dataset_subject(entry, pipelines, live_on)
            out[subject.key] = subject
            continue
        assert entry.pipeline is not None
        for backend in [entry.backend] if entry.backend else list(workspace.backends):
            ids = {p for p in seen_by_backend.get(backend, ()) if fnmatch.fnmatchcase(p, entry.pipeline)}
            if entry.backend and not _is_glob(entry.pipeline):
                ids.add(entry.pipeline)  # watched before its first run: a slot with no run is a miss
            for pipeline_id in sorted(ids):
                out[(backend, pipeline_id)] = WatchedSubject(
                    backend,
                    kinds.get(backend, ""),
                    pipeline_id,
                    entry.team or team_of(pipeline_id),
                    _entry_spec(entry),
                    tuple(entry.on_sla_miss),
                    entry.sla_escalation,
                )
    return list(out.values())


def _entry_spec(entry: WatchedSla) -> SlaSpec:
    return SlaSpec(sla=entry.sla, task_limits=dict(entry.tasks), schedule=entry.schedule, timezone=entry.timezone)


def _dataset_subject(
    entry: WatchedSla, pipelines: Sequence[Pipeline], live_on: Callable[[str], list[str]]
) -> WatchedSubject:
    assert entry.dataset is not None
    producers = tuple(
        (backend, pipeline.id, task.id)
        for pipeline in pipelines
        for task in pipeline.tasks
        if entry.dataset in task.outputs
        for backend in live_on(pipeline.id)
    )
    return WatchedSubject(
        DATASET_BACKEND,
        "dataset",
        f"dataset:{entry.dataset}",
        entry.team,
        _entry_spec(entry),
        tuple(entry.on_sla_miss),
        entry.sla_escalation,
        producers=producers,
    )


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")
