"""What an alert is about, how it reads (templates) and where its link points (the backend's UI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from meta import settings
from meta.semantics.context import render
from meta.spec.durations import format_duration

EVENTS = ("failure", "retry", "success", "sla_miss", "sla_recovered", "message")
TITLES = {
    "failure": "failed",
    "retry": "is retrying",
    "success": "succeeded",
    "sla_miss": "missed its SLA",
    "sla_recovered": "recovered from an SLA miss",
}

DEFAULT_TEMPLATE = (
    "{% if message %}{{ message }}\n{% endif %}"
    "{% if event != 'message' %}[{{ backend }}] pipeline {{ pipeline }} {{ title }}"
    "{% if task %}: task {{ task }}{% if state %} is {{ state }}{% endif %}"
    "{% if try_number %} (try {{ try_number }}){% endif %}{% endif %}\n{% endif %}"
    "run {{ run_id }}{% if logical_date %} ({{ logical_date }}){% endif %}"
    "{% if duration %}, took {{ duration }}{% endif %}"
    "{% if link %}\n{{ link }}{% endif %}"
)
DEFAULT_SUBJECT = "[meta] {{ pipeline }} {{ title }}{% if task %}: {{ task }}{% endif %}"


@dataclass(frozen=True)
class AlertEvent:
    """One thing to tell people about. ``event`` is failure, retry, success, sla_miss, sla_recovered or message
    (the ``alert`` op). ``duration`` is in seconds. ``url`` overrides the computed link to the backend's UI."""

    pipeline_id: str
    run_id: str
    event: str
    task_id: str | None = None
    state: str | None = None
    backend: str = "local"
    duration: float | None = None
    logical_date: datetime | None = None
    try_number: int | None = None
    message: str | None = None
    url: str | None = None
    dedup_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"unknown alert event {self.event!r}; expected one of {', '.join(EVENTS)}")

    def key(self) -> str:
        """The dedup key within (pipeline, run): the event, plus the task and try for task-level events, so a retried
        callback or a restarted process does not send the same alert twice but each new retry is announced."""
        if self.dedup_key:
            return self.dedup_key
        parts = [self.event]
        if self.task_id:
            parts.append(self.task_id)
        if self.event == "retry" and self.try_number is not None:
            parts.append(str(self.try_number))
        return ":".join(parts)

    def variables(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline_id,
            "run_id": self.run_id,
            "event": self.event,
            "title": TITLES.get(self.event, ""),
            "task": self.task_id,
            "state": self.state,
            "backend": self.backend,
            "duration": format_duration_seconds(self.duration),
            "logical_date": self.logical_date.isoformat() if self.logical_date else None,
            "try_number": self.try_number,
            "message": self.message,
            "link": ui_link(self),
            **self.extra,
        }


def format_duration_seconds(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    from datetime import timedelta

    return format_duration(timedelta(seconds=round(seconds)))


def ui_link(event: AlertEvent) -> str | None:
    """A link to the run (or task) in the backend's UI. Bases come from ``META_AIRFLOW_UI_URL`` /
    ``META_PREFECT_UI_URL`` (e.g. http://airflow.internal:8080); the local backend has no UI."""
    if event.url:
        return event.url
    if event.backend == "airflow":
        base = settings.airflow_ui_url()
        if not base:
            return None
        link = f"{base.rstrip('/')}/dags/{quote(event.pipeline_id, safe='')}/runs/{quote(event.run_id, safe='')}"
        return link + (f"/tasks/{quote(event.task_id, safe='')}" if event.task_id else "")
    if event.backend == "prefect":
        base = settings.prefect_ui_url()
        # meta-prefect names runs "prefect__<flow run id>"; the UI wants the bare id.
        flow_run_id = event.run_id.removeprefix("prefect__")
        return f"{base.rstrip('/')}/runs/flow-run/{quote(flow_run_id, safe='')}" if base else None
    return None


def render_text(event: AlertEvent, template: str | None) -> str:
    return render(template or DEFAULT_TEMPLATE, event.variables()).strip()


def render_subject(event: AlertEvent, template: str | None) -> str:
    return render(template or DEFAULT_SUBJECT, event.variables()).strip()
