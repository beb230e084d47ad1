"""``meta deploy`` without ``--target``: every pipeline the workspace file places, deployed to its backend(s), and
``--dry-run``'s plan (per backend: created / changed / unchanged / refused, reading only).

Each workspace backend maps to its target and the options ``meta deploy --target`` would take: Airflow's
``specs_dir``, Prefect's ``api_url``, ``pool``, ``auth`` (resolved from ``${secret:NAME}``) and ``deploy_dir``.
A local backend has nothing to deploy (the local runner reads the specs directly): the plan says so.

Nothing is half-applied because of a spec: when any pipeline is refused, or a backend cannot be planned, the plan
is printed and nothing is deployed anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from meta.authoring.workspace import LoadedWorkspace
from meta.plugins.targets import DeployAction, PlannedDeploy, Target
from meta.spec.errors import MetaError, Problem
from meta.spec.model import Pipeline
from meta.spec.workspace import AirflowBackend, PluginBackend, PrefectBackend

Echo = Callable[[str], None]


@dataclass
class BackendPlan:
    """One backend's part of the plan: what deploy would do to each pipeline placed there, or why it cannot say."""

    backend: str
    kind: str
    pipelines: list[Pipeline]
    planned: list[PlannedDeploy] = field(default_factory=list)
    error: str | None = None  # the backend could not be planned (no work pool, server unreachable, ...)
    note: str | None = None  # nothing to deploy (local)

    @property
    def deployable(self) -> bool:
        return self.note is None and self.error is None and bool(self.pipelines)


@dataclass
class WorkspacePlan:
    backends: list[BackendPlan]
    unplaced: list[str]
    warnings: list[Problem]

    def count(self, action: DeployAction) -> int:
        return sum(1 for b in self.backends for p in b.planned if p.action is action)

    @property
    def blocked(self) -> bool:
        """Something is refused or a backend cannot be planned: deploy nothing."""
        return self.count(DeployAction.REFUSED) > 0 or any(b.error for b in self.backends)


def target_options(loaded: LoadedWorkspace, backend_name: str) -> tuple[str, dict[str, Any]]:
    """The target a workspace backend deploys through and its ``deploy`` options (secrets resolved)."""
    backend = loaded.workspace.backends[backend_name]
    folder = loaded.backend_dir(backend_name)
    if isinstance(backend, AirflowBackend):
        return "airflow", {"specs_dir": str(folder)} if folder else {}
    if isinstance(backend, PrefectBackend):
        if not backend.work_pool:
            raise MetaError(f"backend {backend_name!r} (prefect) has no work_pool in {loaded.path}; deploys need one")
        options: dict[str, Any] = {"api_url": backend.url, "pool": backend.work_pool}
        if folder:
            options["deploy_dir"] = str(folder)
        if backend.auth:
            from meta.service.connections import backend_credentials

            options["auth"] = backend_credentials(loaded, backend_name)["auth"]
        return "prefect", options
    if isinstance(backend, PluginBackend):  # a plugin's kind deploys through its target of the same name, if any
        from meta.plugins.manager import targets

        if backend.kind in targets():
            return backend.kind, dict(backend.options)
        raise MetaError(f"backend {backend_name!r} ({backend.kind}): no installed plugin deploys to it (observed only)")
    raise MetaError(f"backend {backend_name!r} ({backend.kind}) has nothing to deploy")


def plan(loaded: LoadedWorkspace, pipelines: Sequence[Pipeline], all_ids: Sequence[str] = ()) -> WorkspacePlan:
    """The plan for ``pipelines`` (placed by the workspace), reading only. ``all_ids``: every pipeline of the
    workspace's specs, for the unmatched-placement warnings (default: ``pipelines``)."""
    ws = loaded.workspace
    ids = [p.id for p in pipelines]
    out = []
    for name, backend in ws.backends.items():
        placed = [p for p in pipelines if name in ws.backends_of(p.id)]
        entry = BackendPlan(name, backend.kind, placed)
        out.append(entry)
        if not placed:
            continue
        if backend.kind == "local":
            entry.note = "nothing to deploy: the local runner reads the specs directly"
            continue
        try:
            target_name, options = target_options(loaded, name)
            entry.planned = _target(loaded, target_name).plan_deploy(placed, **options)
        except MetaError as exc:
            entry.error = str(exc)
    return WorkspacePlan(out, ws.unplaced(ids), loaded.placement_problems(pipelines, all_ids or ids))


def _target(loaded: LoadedWorkspace, target_name: str) -> Target:
    """The target, supervised by the workspace's control plane: SLAs it watches on pipelines placed there pass."""
    from meta.cli.common import supervision_of
    from meta.plugins.manager import get_target

    return get_target(target_name).supervised(supervision_of(loaded))


def deploy(loaded: LoadedWorkspace, planned: WorkspacePlan) -> list[BackendPlan]:
    """Deploy every backend of an unblocked plan; each backend's entries get the target's own output as detail."""
    if planned.blocked:
        raise MetaError("the plan refuses pipelines or cannot reach a backend; nothing was deployed")
    done = []
    for entry in planned.backends:
        if not entry.deployable:
            continue
        target_name, options = target_options(loaded, entry.backend)
        lines = _target(loaded, target_name).deploy(entry.pipelines, **options)
        if len(lines) == len(entry.planned):
            entry.planned = [
                PlannedDeploy(p.pipeline, p.action, line) for p, line in zip(entry.planned, lines, strict=True)
            ]
        done.append(entry)
    return done


def print_plan(planned: WorkspacePlan, echo: Echo, *, dry_run: bool) -> None:
    for entry in planned.backends:
        n = len(entry.pipelines)
        count = f"{n} pipeline{'s' if n != 1 else ''}" if n else "no pipeline placed here"
        echo(f"backend {entry.backend} ({entry.kind}): {count}")
        if entry.note:
            echo(f"  {entry.note}: {', '.join(p.id for p in entry.pipelines)}")
        if entry.error:
            echo(f"  error: {entry.error}")
        print_entries(entry.planned, echo, indent="  ")
    if planned.unplaced:
        echo(f"not placed on any backend: {', '.join(planned.unplaced)}")
    for warning in planned.warnings:
        echo(f"warning: {warning}")
    counts = ", ".join(f"{planned.count(a)} {a.value}" for a in DeployAction)
    errors = sum(1 for b in planned.backends if b.error)
    tail = f", {errors} backend{'s' if errors != 1 else ''} not planned" if errors else ""
    if dry_run:
        echo(f"plan: {counts}{tail} (dry run: nothing was changed)")
    elif planned.blocked:
        echo(f"plan: {counts}{tail}; nothing was deployed (fix the refusals and errors above first)")
    else:
        echo(f"deployed: {counts}")


def print_entries(planned: Sequence[PlannedDeploy], echo: Echo, indent: str = "") -> None:
    width = max((len(p.pipeline) for p in planned), default=0)
    for p in planned:
        echo(f"{indent}{p.action.value:<9}  {p.pipeline:<{width}}  {p.detail}".rstrip())
