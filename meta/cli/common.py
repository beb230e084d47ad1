"""What the command modules (inspect, graph, run, build) share: pipelines loaded the ``meta`` group's way, and
picking one of them. Command modules never import the package (meta/cli/__init__.py imports them to add their
commands), so the group reaches them through click's context instead."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import click

from meta.spec.model import Pipeline


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
