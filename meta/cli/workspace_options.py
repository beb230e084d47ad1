"""``--workspace PATH``, shared by every command that reads the workspace file (``meta deploy``, ``meta serve``,
``meta status``, ...).

The option only carries a path; a command calls :func:`workspace_from` when it actually needs the workspace, so a
broken ``meta.yaml`` somewhere above the working directory never breaks a command that does not use it (``meta
deploy --target X``). Without the option the file is found by walking up from the working directory
(``meta.authoring.workspace.find_workspace``), as Prefect finds ``prefect.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from meta.authoring.workspace import WORKSPACE_FILE, LoadedWorkspace, find_workspace, load_workspace

F = TypeVar("F", bound=Callable[..., object])


def workspace_option(command: F) -> F:
    """Add ``--workspace PATH`` (keyword ``workspace_path: Path | None``) to a click command."""
    option = click.option(
        "--workspace",
        "workspace_path",
        type=click.Path(exists=True, dir_okay=True, path_type=Path),
        default=None,
        help=f"the workspace file, or its folder (default: the first {WORKSPACE_FILE} in the working directory or "
        "a folder above it)",
    )
    return option(command)


def workspace_path(given: Path | None) -> Path | None:
    """The workspace file the command uses: ``--workspace`` (a folder means its ``meta.yaml``), else found by
    walking up from the working directory; None when there is none."""
    if given is None:
        return find_workspace()
    if given.is_dir():
        candidate = given / WORKSPACE_FILE
        if not candidate.is_file():
            raise click.BadParameter(f"{given} holds no {WORKSPACE_FILE}", param_hint="--workspace")
        return candidate
    return given


def require_workspace(given: Path | None) -> LoadedWorkspace:
    """The loaded workspace of ``--workspace`` (or found); a usage error saying how to get one when there is none.
    Its problems raise ValidationFailed (file:line:col), which the ``meta`` group prints with exit code 2."""
    path = workspace_path(given)
    if path is None:
        raise click.UsageError(
            f"no workspace file: no {WORKSPACE_FILE} in {Path.cwd()} or a folder above it; write one "
            "(docs/workspace.md) or pass --workspace PATH"
        )
    return load_workspace(path)
