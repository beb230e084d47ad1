"""What the command modules (inspect, graph, run, build) share: pipelines loaded the ``meta`` group's way, picking
one of them, and a target told which pipelines the workspace's control plane watches (``supervised``). Command
modules never import the package (meta/cli/__init__.py imports them to add their commands), so the group reaches
them through click's context instead."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import click

from meta.spec.model import Pipeline

if TYPE_CHECKING:
    from meta.authoring.workspace import LoadedWorkspace
    from meta.plugins.supervision import Supervision
    from meta.plugins.targets import Target


@runtime_checkable
class LoadsPipelines(Protocol):
    """The root group of the ``meta`` command line (``MetaGroup``)."""

    def load_pipelines(self, paths: Sequence[str]) -> list[Pipeline]: ...


def load(paths: Sequence[str]) -> list[Pipeline]:
    """The pipelines in ``paths`` (files or folders), loaded by the root ``meta`` group of the running command."""
    root = click.get_current_context().find_root().command
    if not isinstance(root, LoadsPipelines):
        raise click.UsageError("meta's commands run under the `meta` group (meta.cli:cli)")
    return root.load_pipelines(paths)


def pick(pipelines: list[Pipeline], pipeline_id: str | None, source: str) -> Pipeline:
    if pipeline_id is not None:
        for p in pipelines:
            if p.id == pipeline_id:
                return p
        raise click.BadParameter(
            f"no pipeline {pipeline_id!r} in {source}; it defines: {', '.join(p.id for p in pipelines)}",
            param_hint="--pipeline",
        )
    if len(pipelines) != 1:
        raise click.BadParameter(
            f"{source} defines {len(pipelines)} pipelines ({', '.join(p.id for p in pipelines)}); choose one",
            param_hint="--pipeline",
        )
    return pipelines[0]


def supervision_of(loaded: LoadedWorkspace) -> Supervision:
    """Which pipelines the control plane of ``loaded`` watches on which kind of backend."""
    from meta.plugins.supervision import Supervision

    return Supervision.of(loaded.workspace, str(loaded.path))


def supervised(target: Target, pipelines: Sequence[Pipeline], specs: Sequence[str]) -> Target:
    """``target`` supervised by the workspace of the specs (the first ``meta.yaml`` in a spec's folder or above it,
    else in the working directory or above), so SLAs its control plane watches pass the shared checks. The file is
    read only when a pipeline has an SLA feature: a broken ``meta.yaml`` above does not break other commands. Its
    problems raise ValidationFailed (file:line:col), printed by the ``meta`` group."""
    from meta.authoring.workspace import find_workspace, load_workspace
    from meta.plugins.supervision import sla_features

    if not any(next(sla_features(p), None) for p in pipelines):
        return target
    found = next((path for spec in specs if (path := find_workspace(Path(spec))) is not None), None)
    found = found or find_workspace()
    if found is None:
        return target
    return target.supervised(supervision_of(load_workspace(found)))
