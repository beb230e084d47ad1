"""A pipeline's alert routes on the local runner, with the events the Airflow adapter's callbacks produce:
``on_failure`` / ``on_success`` once per run (Airflow's DAG-level callbacks), ``on_retry`` on every task retry
(a task-level callback), ``on_sla_miss`` when the run took longer than ``sla.max_duration``.

``finish_by`` / ``start_by`` are times of a *scheduled* run's day; a local run is manual, so they are watched where
runs are scheduled (Airflow Deadline Alerts, the control plane), not here. The control plane watches the local backend
too (when a workspace places the pipeline on it) and sends its own ``max_duration`` miss with the same dedup key
(``sla_miss:max_duration``, the control plane's ``sla_miss:<kind>``), so a channel hears of one miss once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from meta.semantics.context import RunContext
from meta.spec.model import Pipeline
from meta.spec.states import RunState, TaskState

if TYPE_CHECKING:
    from meta.builtin.local.engine import RunOutcome

log = logging.getLogger("meta.builtin.local.alerts")


class RouteAlerts:
    def __init__(self, pipeline: Pipeline, ctx: RunContext):
        self.pipeline = pipeline
        self.ctx = ctx
        self.routes = pipeline.alerts

    def retry(self, task_id: str, try_number: int) -> None:
        self._send(
            self.routes.on_retry, "retry", task_id=task_id, state=str(TaskState.UP_FOR_RETRY), try_number=try_number
        )

    def finished(self, outcome: RunOutcome) -> None:
        duration = (outcome.ended_at - outcome.started_at).total_seconds()
        if outcome.result.state == RunState.FAILED:
            failed = [t for t, r in outcome.result.tasks.items() if r.state == TaskState.FAILED]
            self._send(
                self.routes.on_failure,
                "failure",
                task_id=failed[0] if failed else None,
                state="failed",
                duration=duration,
            )
        elif outcome.result.state == RunState.SUCCESS:
            self._send(self.routes.on_success, "success", state="success", duration=duration)
        sla = self.pipeline.sla
        if sla is not None and sla.max_duration is not None and duration > sla.max_duration.total_seconds():
            self._send(self.routes.on_sla_miss, "sla_miss", duration=duration, dedup_key="sla_miss:max_duration")

    def _send(self, channels: Sequence[str], event: str, **fields: object) -> None:
        if not channels:
            return
        from meta.builtin.operators.alerts import AlertEvent, send_alert

        alert = AlertEvent(
            pipeline_id=self.pipeline.id,
            run_id=self.ctx.run_id,
            event=event,
            backend="local",
            logical_date=self.ctx.logical_date,
            **fields,  # type: ignore[arg-type]
        )
        for outcome in send_alert(channels, alert):
            if outcome.status != "sent":
                log.warning("alert %s to %s: %s %s", event, outcome.channel, outcome.status, outcome.error or "")
