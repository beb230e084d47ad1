"""The embedded local backend: runs a pipeline on this machine with Airflow's semantics, no server needed.

Names are imported lazily, so importing the package costs nothing until a runner is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meta.builtin.local.engine import AttemptRecord, RunOutcome
    from meta.builtin.local.runner import LocalRunner

__all__ = ["AttemptRecord", "LocalRunner", "RunOutcome"]


def __getattr__(name: str) -> Any:
    if name in ("AttemptRecord", "RunOutcome"):
        from meta.builtin.local import engine

        return getattr(engine, name)
    if name == "LocalRunner":
        from meta.builtin.local.runner import LocalRunner

        return LocalRunner
    raise AttributeError(f"module 'meta.builtin.local' has no attribute {name!r}")
