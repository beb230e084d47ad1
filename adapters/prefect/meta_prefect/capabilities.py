"""What the Prefect target cannot express: each is a CompileError naming the feature (docs/capabilities-prefect.md)."""

from __future__ import annotations

from meta import AirflowOperatorAction, CompileError, CronSchedule, OpAction, Pipeline
from meta_prefect.flow import check_param_names

TARGET = "prefect"


def problems(pipeline: Pipeline) -> list[CompileError]:
    pid = pipeline.id
    out = check_param_names(pipeline)
    if pipeline.sla is not None:
        out.append(
            CompileError(TARGET, pid, "sla", "Prefect server (open source) has no SLAs; only Prefect Cloud does")
        )
    if pipeline.alerts.on_sla_miss:
        out.append(CompileError(TARGET, pid, "alerts.on_sla_miss", "Prefect server has no SLAs to miss"))
    if pipeline.catchup:
        out.append(
            CompileError(TARGET, pid, "catchup: true", "Prefect schedules only create future runs; there is no catchup")
        )
    if pipeline.end_date is not None:
        out.append(CompileError(TARGET, pid, "end_date", "Prefect cron and interval schedules have no end date"))
    if pipeline.start_date is not None and isinstance(pipeline.schedule, CronSchedule):
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
    for task in pipeline.tasks:
        if isinstance(task.action, AirflowOperatorAction):
            out.append(
                CompileError(
                    TARGET, pid, f"the Airflow operator {task.action.operator}", "it runs only on airflow", task=task.id
                )
            )
        if isinstance(task.action, OpAction):
            out.extend(_op_problems(pid, task.id, task.action.op))
    return out


def _op_problems(pid: str, task_id: str, op_name: str) -> list[CompileError]:
    from meta import PluginError, get_op

    try:
        op = get_op(op_name)
    except PluginError as exc:
        return [CompileError(TARGET, pid, f"op {op_name!r}", str(exc), task=task_id)]
    if op.backends is not None and TARGET not in op.backends:
        return [CompileError(TARGET, pid, f"op {op_name!r}", f"it runs only on {sorted(op.backends)}", task=task_id)]
    return []
