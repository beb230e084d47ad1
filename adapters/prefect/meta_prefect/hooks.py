"""Alert routes as Prefect state hooks, like the Airflow adapter's callbacks:

* ``on_failure`` -> flow ``on_failure`` hook (the run failed: meta sets the flow's final state from the leaf rule)
* ``on_success`` -> flow ``on_completion`` hook
* ``on_retry``   -> task ``on_running`` hook, when a task run starts an attempt after the first

The hooks call ``meta.send_alert`` (shared by every backend; it dedups per pipeline, run and event),
imported only when a hook fires. An alert that cannot be sent is logged, never raised: a broken channel must not
change the run's outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from meta import Pipeline

log = logging.getLogger("meta.prefect.alerts")
Hook = Callable[..., None]


def _send(channels: tuple[str, ...], pipeline: Pipeline, run_id: str, event: str, **fields: Any) -> None:
    try:
        from meta import AlertEvent, send_alert

        send_alert(
            list(channels), AlertEvent(pipeline_id=pipeline.id, run_id=run_id, event=event, backend="prefect", **fields)
        )
    except Exception:  # the run's outcome must not depend on the alert channel
        log.exception("meta: could not send the %s alert of pipeline %r to %s", event, pipeline.id, list(channels))


def _run_id(flow_run: Any, run_id: str | None) -> str:
    return run_id or f"prefect__{flow_run.id}"


def flow_hooks(pipeline: Pipeline, run_id: str | None = None) -> dict[str, Any]:
    """``on_failure`` / ``on_completion`` keyword arguments of the flow (empty lists when there are no routes)."""
    routes = pipeline.alerts

    def on_failure(flow: Any, flow_run: Any, state: Any) -> None:
        _send(
            routes.on_failure,
            pipeline,
            _run_id(flow_run, run_id),
            "failure",
            state="failed",
            message=state.message,
            duration=_seconds(flow_run),
        )

    def on_completion(flow: Any, flow_run: Any, state: Any) -> None:
        _send(
            routes.on_success,
            pipeline,
            _run_id(flow_run, run_id),
            "success",
            state="success",
            duration=_seconds(flow_run),
        )

    return {
        "on_failure": [on_failure] if routes.on_failure else [],
        "on_completion": [on_completion] if routes.on_success else [],
    }


def task_retry_hooks(pipeline: Pipeline, run_id: str) -> list[Any]:
    """Airflow's on_retry_callback: fires when a task run starts attempt 2, 3, ..."""
    routes = pipeline.alerts
    if not routes.on_retry:
        return []

    def on_running(task: Any, task_run: Any, state: Any) -> None:
        if task_run.run_count > 1:
            _send(
                routes.on_retry,
                pipeline,
                run_id,
                "retry",
                task_id=task_run.name,
                state="up_for_retry",
                try_number=task_run.run_count - 1,
            )

    return [on_running]


def _seconds(flow_run: Any) -> float | None:
    total = getattr(flow_run, "total_run_time", None)
    return total.total_seconds() if total is not None else None
