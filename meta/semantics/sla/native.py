"""Which SLA kinds Airflow 3 enforces itself, as Deadline Alerts in the DAGs meta generates.

Both sides need the answer and neither may import the other: the Airflow target (``meta_airflow``) to generate the
alerts and to accept the pipeline without a workspace, and the control plane (``meta.service.sla``, which must
install without Airflow) to leave the first notice of those kinds to Airflow.
"""

from __future__ import annotations

from datetime import time

from meta.spec.model import CronSchedule, Pipeline


def daily_tick(pipeline: Pipeline) -> time | None:
    """The local time of day a cron schedule fires, when it fires at one fixed minute and hour (else None)."""
    schedule = pipeline.schedule
    if not isinstance(schedule, CronSchedule):
        return None
    minute, hour = schedule.expression.split()[:2]
    if not (minute.isdigit() and hour.isdigit()):
        return None
    return time(int(hour), int(minute))


def airflow_native_sla(pipeline: Pipeline) -> set[str]:
    """The SLA kinds of ``pipeline`` Airflow enforces itself: ``max_duration`` (from the queued time),
    ``finish_by`` on a cron schedule with a fixed daily time (from the logical date), and every ``deadlines`` entry.
    The rest (start_by, fresh_within, per-task max_duration, escalation) only meta's control plane can watch."""
    sla = pipeline.sla
    if sla is None:
        return set()
    native = {d.name for d in sla.deadlines}
    if sla.max_duration is not None:
        native.add("max_duration")
    if sla.finish_by is not None and daily_tick(pipeline) is not None:
        native.add("finish_by")
    return native
