"""What the Prefect target cannot express: each is a CompileError naming the feature (docs/capabilities-prefect.md).

The checks every backend shares (op types, airflow_operator tasks, SLAs) run in the base ``Target.check``. Prefect
server (open source) enforces no SLA kind itself (SLAs are Prefect Cloud only), so ``sla``, per-task
``max_duration``, ``alerts.on_sla_miss`` and ``alerts.sla_escalation`` pass exactly when a workspace places the
pipeline on a prefect backend, whose control plane (``meta serve``) watches them; otherwise the shared check refuses
each with that reason."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from meta import CompileError, CronSchedule, Pipeline, schedule_driven_by_control_plane
from meta_prefect.flow import check_param_names

TARGET = "prefect"


def problems(pipeline: Pipeline, managed: bool = False) -> list[CompileError]:
    """``managed``: a workspace places the pipeline on a prefect backend, so its control plane (``meta serve``) can
    run the schedule slots Prefect cannot (catchup from ``start_date``, nothing after ``end_date``)."""
    pid = pipeline.id
    out = check_param_names(pipeline)
    driven = managed and schedule_driven_by_control_plane(pipeline, TARGET)
    hint = "; place the pipeline on a prefect backend in a workspace (meta.yaml): `meta serve` then runs its slots"
    if pipeline.catchup and not driven:
        out.append(
            CompileError(
                TARGET, pid, "catchup: true", "Prefect schedules only create future runs; there is no catchup" + hint
            )
        )
    if pipeline.end_date is not None and not driven:
        out.append(CompileError(TARGET, pid, "end_date", "Prefect cron and interval schedules have no end date" + hint))
    start_problem = cron_start_problem(pipeline) if not driven else None
    if start_problem:
        out.append(CompileError(TARGET, pid, "start_date with a cron schedule", start_problem))
    required = [name for name, param in pipeline.params.items() if param.required]
    if required and pipeline.schedule is not None:
        out.append(
            CompileError(
                TARGET,
                pid,
                "required params on a scheduled pipeline",
                f"scheduled runs cannot supply {required}; give them defaults (Airflow refuses this too)",
            )
        )
    return out


def cron_start_problem(pipeline: Pipeline, now: datetime | None = None) -> str | None:
    """Why a cron schedule's ``start_date`` cannot be kept on Prefect, or None when dropping it changes no run.

    A Prefect cron schedule has no start: its deployment creates runs from now on. A start in the past without
    catchup asks for exactly that (every imported Airflow DAG has one), so it passes; a start in the future would
    run slots too early, and with catchup the start decides which past slots run (``catchup: true`` is refused
    on its own as well). ``now``: for tests."""
    given = pipeline.start_date
    if given is None or not isinstance(pipeline.backend_schedule, CronSchedule):
        return None
    reason = "Prefect cron schedules have no start date (interval schedules use it as their anchor)"
    if pipeline.catchup:
        return f"{reason}; with catchup: true the start decides which past slots run"
    # the model's naive datetimes are local to the pipeline's timezone
    start = given if given.tzinfo is not None else given.replace(tzinfo=ZoneInfo(pipeline.timezone))
    current = now or datetime.now(UTC)
    if start > current:
        return (
            f"{reason}; start_date {given.isoformat()} is in the future, so the deployment would "
            "run slots before it (a start in the past without catchup passes: Prefect starts from now)"
        )
    return None
