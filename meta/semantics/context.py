"""The run context every backend gives a task: ids, logical date, data interval, params.

Templates (``{{ ds }}``, ``{{ params.country }}``) are rendered with Jinja like Airflow does, and shell tasks see the
same values as ``META_*`` environment variables on every backend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jinja2


@dataclass(frozen=True)
class RunContext:
    pipeline_id: str
    run_id: str
    logical_date: datetime
    params: dict[str, Any] = field(default_factory=dict)
    backend: str = "local"
    # Airflow 3's trigger timetables give a zero-length interval at the logical date; meta does the same everywhere.
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None

    def __post_init__(self) -> None:
        if self.logical_date.tzinfo is None:
            raise ValueError(f"logical_date must be timezone-aware, got {self.logical_date!r}")
        if self.data_interval_start is None:
            object.__setattr__(self, "data_interval_start", self.logical_date)
        if self.data_interval_end is None:
            object.__setattr__(self, "data_interval_end", self.logical_date)

    def template_vars(self, task_id: str, try_number: int = 1) -> dict[str, Any]:
        """Names available to templates and to python callables that ask for them (Airflow's context names)."""
        ld = self.logical_date.astimezone(UTC)
        return {
            "pipeline_id": self.pipeline_id,
            "dag_id": self.pipeline_id,
            "task_id": task_id,
            "run_id": self.run_id,
            "logical_date": ld,
            "ds": ld.strftime("%Y-%m-%d"),
            "ds_nodash": ld.strftime("%Y%m%d"),
            "ts": ld.isoformat(),
            "ts_nodash": ld.strftime("%Y%m%dT%H%M%S"),
            "data_interval_start": self.data_interval_start,
            "data_interval_end": self.data_interval_end,
            "params": dict(self.params),
            "try_number": try_number,
            "backend": self.backend,
        }

    def env(self, task_id: str, try_number: int = 1) -> dict[str, str]:
        """Environment variables given to shell tasks (the same names on every backend)."""
        v = self.template_vars(task_id, try_number)
        out = {
            "META_PIPELINE_ID": self.pipeline_id,
            "META_TASK_ID": task_id,
            "META_RUN_ID": self.run_id,
            "META_LOGICAL_DATE": v["ts"],
            "META_DS": v["ds"],
            "META_DATA_INTERVAL_START": self.data_interval_start.isoformat(),  # type: ignore[union-attr]
            "META_DATA_INTERVAL_END": self.data_interval_end.isoformat(),  # type: ignore[union-attr]
            "META_TRY_NUMBER": str(try_number),
            "META_BACKEND": self.backend,
            "META_PARAMS": json.dumps(self.params, sort_keys=True, default=str),
        }
        for name, value in self.params.items():
            out[f"META_PARAM_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value, default=str)
        return out


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    # As Airflow's DAG default (template_undefined=StrictUndefined): a name that is not in the context fails the
    # task instead of rendering as "". keep_trailing_newline matches Airflow's behaviour for scripts.
    return jinja2.Environment(keep_trailing_newline=True, autoescape=False, undefined=jinja2.StrictUndefined)


def render(template: str, variables: dict[str, Any]) -> str:
    """Render a Jinja template string with run-context variables; strings without ``{{``/``{%`` pass unchanged."""
    if "{{" not in template and "{%" not in template:
        return template
    return _environment().from_string(template).render(**variables)


def render_value(value: Any, variables: dict[str, Any]) -> Any:
    """Render every string inside a JSON-like value."""
    if isinstance(value, str):
        return render(value, variables)
    if isinstance(value, dict):
        return {k: render_value(v, variables) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(render_value(v, variables) for v in value)
    return value
