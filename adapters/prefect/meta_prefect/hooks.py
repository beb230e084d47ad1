"""Alert routes as Prefect state hooks: run failed/succeeded -> flow hooks, task retried -> task on_running hook.

The hooks call ``meta.operators.alerts.send_alert`` (shared with every backend), imported only when a hook fires so a
pipeline without alert routes never needs the alert channels. An alert that cannot be sent is logged, never raised:
a broken channel must not change the run's outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from meta.model import Pipeline

log = logging.getLogger("meta.prefect.alerts")
Hook = Callable[..., None]


def _send(
    channels: tuple[str, ...], event: str, pipeline: Pipeline, run_id: str, task_id: str | None, state: Any
) -> None:
    try:
        from meta.operators.alerts import send_alert

        for channel in channels:
            send_alert(
                channel,
                event=event,
                pipeline=pipeline.id,
                run_id=run_id,
                task=task_id,
                state=getattr(state, "name", str(state)),
                backend="prefect",
            )
    except Exception as exc:  # the run's outcome must not depend on the alert channel
        log.error("alert %s for pipeline %r could not be sent: %s: %s", event, pipeline.id, type(exc).__name__, exc)


def flow_hooks(pipeline: Pipeline) -> dict[str, list[Hook]]:
    """``on_failure`` / ``on_completion`` keyword arguments for the flow (empty lists when no routes)."""
    routes = pipeline.alerts

    def on_failure(flow: Any, flow_run: Any, state: Any) -> None:
        _send(routes.on_failure, "failure", pipeline, f"prefect__{flow_run.id}", None, state)

    def on_completion(flow: Any, flow_run: Any, state: Any) -> None:
        _send(routes.on_success, "success", pipeline, f"prefect__{flow_run.id}", None, state)

    return {
        "on_failure": [on_failure] if routes.on_failure else [],
        "on_completion": [on_completion] if routes.on_success else [],
    }


def task_retry_hooks(pipeline: Pipeline) -> list[Hook]:
    """Airflow's on_retry_callback: fires when a task starts a retry (its run count is past the first attempt)."""
    routes = pipeline.alerts
    if not routes.on_retry:
        return []

    def on_running(task: Any, task_run: Any, state: Any) -> None:
        if task_run.run_count > 1:
            _send(routes.on_retry, "retry", pipeline, f"prefect__{task_run.flow_run_id}", task_run.name, state)

    return [on_running]
