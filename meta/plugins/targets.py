"""What a backend provides. The local runner, Airflow and Prefect adapters all implement ``Target``."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, final

from meta.plugins.importing import ImportOutcome
from meta.plugins.ops import OpType
from meta.plugins.supervision import Supervision
from meta.semantics.request import RunRequest
from meta.spec.errors import CompileError, PluginError
from meta.spec.model import Pipeline
from meta.spec.results import RunResult

ProgressCallback = Callable[[str], None]
OpLookup = Callable[[str], OpType]  # op type name -> OpType, raising PluginError for an unknown name


@dataclass(frozen=True)
class RunReport:
    """What ``meta run`` shows of a finished run: the result, the backend's own task table (None: the CLI's
    generic one of states and attempts) and extra lines such as where the logs are."""

    result: RunResult
    table: str | None = None
    notes: tuple[str, ...] = ()


class DeployAction(StrEnum):
    """What ``deploy`` would do to one pipeline (``meta deploy --dry-run``)."""

    CREATED = "created"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    REFUSED = "refused"  # the target's checks refuse it; ``detail`` says why


@dataclass(frozen=True)
class PlannedDeploy:
    pipeline: str
    action: DeployAction
    detail: str = ""


class Target:
    """A backend. Subclasses override what they support; the rest raises a clear PluginError.

    A backend refuses what it cannot express in ``problems``; ``check`` (final) adds the checks every backend shares
    (``meta.plugins.support.shared_problems``), so none can skip them. Those need the registered op types: the
    plugin manager hands them over as ``op_lookup`` when it registers the target (``meta.plugins.manager.targets``),
    so this interface never imports the registry.

    SLAs: a backend enforces the kinds ``native_sla`` lists itself; the control plane of a workspace watches the rest
    when the target is ``supervised`` by it and the workspace places the pipeline on a backend of this kind. The
    shared checks refuse any SLA feature neither covers (``meta.plugins.support.sla_problems``).
    """

    name: str = ""
    description: str = ""
    op_lookup: OpLookup | None = None
    supervision: Supervision | None = None
    # False for a backend that only runs pipelines on demand (the local runner): it schedules nothing, so an SLA it
    # does not watch is no broken promise; its run report says so instead (``unwatched_sla``).
    scheduled: bool = True

    @final
    def check(self, pipeline: Pipeline) -> list[CompileError]:
        """Every feature of ``pipeline`` this backend cannot express (empty: all good)."""
        from meta.plugins.support import shared_problems

        if self.op_lookup is None:
            raise PluginError(
                f"backend {self.name!r} was not registered through the plugin manager (meta.get_target), so the op "
                "types its pipelines use cannot be checked"
            )
        from meta.plugins.support import dependency_problems, sla_problems

        return [
            *shared_problems(self.name, pipeline, self.op_lookup),
            *sla_problems(self.name, pipeline, self.native_sla(pipeline), self.supervision, strict=self.scheduled),
            *dependency_problems(self.name, pipeline, self.supervision, strict=self.scheduled),
            *self.problems(pipeline),
        ]

    def supervised(self, supervision: Supervision | None) -> Target:
        """A copy of this backend that knows which pipelines the control plane of a workspace watches on it (None:
        none, the default). The copy keeps what the plugin manager bound (``op_lookup``) and ``configure`` options."""
        watched = copy.copy(self)
        watched.supervision = supervision
        return watched

    def native_sla(self, pipeline: Pipeline) -> set[str]:
        """The SLA kinds of ``pipeline`` (names from ``SLA.kinds()``, or feature names such as
        ``tasks.<id>.max_duration``) this backend enforces itself, with no control plane (default: none)."""
        return set()

    @final
    def unwatched_sla(self, pipeline: Pipeline) -> list[str]:
        """The SLA features of ``pipeline`` nobody enforces here (for a backend that is not ``scheduled``, which
        runs them anyway and says so; on the others ``check`` refuses them)."""
        from meta.plugins.support import sla_problems

        return [e.feature for e in sla_problems(self.name, pipeline, self.native_sla(pipeline), self.supervision)]

    def problems(self, pipeline: Pipeline) -> list[CompileError]:
        """What only this backend cannot express (override it; ``check`` adds the shared checks)."""
        return []

    @final
    def ensure_supported(self, pipeline: Pipeline) -> None:
        errors = self.check(pipeline)
        if errors:
            raise (
                errors[0]
                if len(errors) == 1
                else CompileError(self.name, pipeline.id, "several features", "; ".join(str(e) for e in errors))
            )

    def configure(self, **options: Any) -> Target:
        """This backend with the ``meta run`` options it registered (``register_commands``) applied."""
        if options:
            raise PluginError(f"backend {self.name!r} takes no run options, got {', '.join(sorted(options))}")
        return self

    def run(self, pipeline: Pipeline, request: RunRequest, progress: ProgressCallback | None = None) -> RunResult:
        """Run ``pipeline`` as ``request`` asks (built by ``RunRequest.build``) and wait for the result."""
        raise PluginError(f"backend {self.name!r} cannot run pipelines")

    def run_report(
        self, pipeline: Pipeline, request: RunRequest, progress: ProgressCallback | None = None
    ) -> RunReport:
        """``run``, plus what a person reads about it (``meta run``); backends with more detail override it."""
        return RunReport(self.run(pipeline, request, progress))

    def compile(self, pipelines: Sequence[Pipeline], out_dir: Path, sources: Sequence[Path] = ()) -> list[Path]:
        raise PluginError(f"target {self.name!r} does not generate code")

    def deploy(self, pipelines: Sequence[Pipeline], **options: Any) -> list[str]:
        raise PluginError(f"target {self.name!r} does not deploy")

    @final
    def plan_deploy(self, pipelines: Sequence[Pipeline], **options: Any) -> list[PlannedDeploy]:
        """What ``deploy(pipelines, **options)`` would do to each pipeline, in order, changing nothing: refused
        with the reasons of ``check``, else what ``compare_deployed`` finds on the backend."""
        refused = {}
        for pipeline in pipelines:
            errors = self.check(pipeline)
            if errors:
                refused[pipeline.id] = PlannedDeploy(pipeline.id, DeployAction.REFUSED, "; ".join(map(str, errors)))
        rest = [p for p in pipelines if p.id not in refused]
        compared = {c.pipeline: c for c in self.compare_deployed(rest, **options)} if rest else {}
        return [refused.get(p.id) or compared[p.id] for p in pipelines]

    def compare_deployed(self, pipelines: Sequence[Pipeline], **options: Any) -> list[PlannedDeploy]:
        """For ``plan_deploy``: whether ``deploy`` would create, change or leave each (checked) pipeline as it is on
        the backend, reading only. Backend-wide problems (no specs folder, server unreachable) raise MetaError."""
        raise PluginError(f"target {self.name!r} cannot plan a deploy (it cannot read what is deployed)")


class Importer:
    """Turns another tool's definitions into neutral pipelines (``meta import <name>``).

    Imports definition by definition: what maps comes back with its notes, what does not as a refusal with its
    reason (``meta.plugins.importing``); only a problem with ``source`` itself (missing, unreadable) raises."""

    name: str = ""
    description: str = ""

    def import_pipelines(self, source: Path, **options: Any) -> ImportOutcome:
        raise NotImplementedError
