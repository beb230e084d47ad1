"""What the Prefect target cannot express: each is a CompileError naming the feature (docs/capabilities-prefect.md).

The checks every backend shares (op types, airflow_operator tasks, SLAs) run in the base ``Target.check``. Prefect
server (open source) enforces no SLA kind itself (SLAs are Prefect Cloud only), so ``sla``, per-task
``max_duration``, ``alerts.on_sla_miss`` and ``alerts.sla_escalation`` pass exactly when a workspace places the
pipeline on a prefect backend, whose control plane (``meta serve``) watches them; otherwise the shared check refuses
each with that reason."""

from __future__ import annotations

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
    if pipeline.start_date is not None and isinstance(pipeline.backend_schedule, CronSchedule) and not driven:
        out.append(
            CompileError(
                TARGET,
                pid,
                "start_date with a cron schedule",
                "Prefect cron schedules have no start date (interval schedules use it as their anchor)",
            )
        )
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
