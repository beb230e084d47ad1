"""What a backend provides. The local runner, Airflow and Prefect adapters all implement ``Target``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from meta.spec.errors import CompileError, PluginError
from meta.spec.model import Pipeline
from meta.spec.results import RunResult

ProgressCallback = Callable[[str], None]


class Target:
    """A backend. Subclasses override what they support; the rest raises a clear PluginError."""

    name: str = ""
    description: str = ""

    def check(self, pipeline: Pipeline) -> list[CompileError]:
        """Every feature of ``pipeline`` this backend cannot express (empty: all good)."""
        return []

    def ensure_supported(self, pipeline: Pipeline) -> None:
        errors = self.check(pipeline)
        if errors:
            raise (
                errors[0]
                if len(errors) == 1
                else CompileError(self.name, pipeline.id, "several features", "; ".join(str(e) for e in errors))
            )

    def run(
        self,
        pipeline: Pipeline,
        *,
        params: dict[str, Any] | None = None,
        logical_date: datetime | None = None,
        run_id: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> RunResult:
        raise PluginError(f"backend {self.name!r} cannot run pipelines")

    def compile(self, pipelines: Sequence[Pipeline], out_dir: Path, sources: Sequence[Path] = ()) -> list[Path]:
        raise PluginError(f"target {self.name!r} does not generate code")

    def deploy(self, pipelines: Sequence[Pipeline], **options: Any) -> list[str]:
        raise PluginError(f"target {self.name!r} does not deploy")


class Importer:
    """Turns another tool's definitions into neutral pipelines (``meta import <name>``)."""

    name: str = ""
    description: str = ""

    def import_pipelines(self, source: Path, **options: Any) -> list[Pipeline]:
        raise NotImplementedError
