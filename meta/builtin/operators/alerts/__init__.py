"""Alerts: the ``alert`` op and the function backends call for pipeline alert routes.

For runners and adapters::

    from meta.builtin.operators.alerts import AlertEvent, send_alert

    outcomes = send_alert(
        pipeline.alerts.on_failure,            # route channels, e.g. ("slack:data-team", "email:oncall")
        AlertEvent(pipeline_id="sales", run_id="manual__2024-01-01", event="failure",   # failure|retry|success|
                   task_id="load", state="failed", backend="airflow", duration=12.5,    # sla_miss|message
                   logical_date=ld, try_number=2),
    )
    # -> [AlertOutcome(channel="slack:data-team", status="sent"|"duplicate"|"rate_limited"|"failed", error=None)]

``send_alert(route_channels, event, *, raise_on_failure=False, store=None)`` never raises for a delivery problem
unless ``raise_on_failure`` (the ``alert`` op sets it so the task fails and retries); each failure is logged with
secrets redacted. Each (channel, pipeline, run, event key) is sent at most once, across retries and processes: see
``AlertEvent.key`` and ``store.AlertStore``. A channel's ``rate_limit`` drops alerts beyond N per window.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from meta.builtin.operators.alerts.config import ChannelConfigError, channel_config
from meta.builtin.operators.alerts.event import AlertEvent
from meta.builtin.operators.alerts.http import AlertDeliveryError
from meta.builtin.operators.alerts.store import AlertStore
from meta.execution import secrets
from meta.plugins.ops import OpContext
from meta.semantics.context import render_value
from meta.spec.model import CHANNEL_PATTERN, ChannelRef

__all__ = ["AlertDeliveryError", "AlertEvent", "AlertOptions", "AlertOutcome", "run_alert_op", "send_alert"]

log = logging.getLogger("meta.builtin.operators.alerts")


@dataclass(frozen=True)
class AlertOutcome:
    channel: str
    status: str  # sent | duplicate | rate_limited | failed
    error: str | None = None


def send_alert(
    route_channels: Iterable[str],
    event: AlertEvent,
    *,
    raise_on_failure: bool = False,
    store: AlertStore | None = None,
) -> list[AlertOutcome]:
    """Send ``event`` to every channel in ``route_channels``; see the module docstring."""
    store = store or AlertStore()
    outcomes: list[AlertOutcome] = []
    key = event.key()
    for ref in route_channels:
        try:
            channel, config = channel_config(ref)
        except (ChannelConfigError, LookupError) as exc:
            outcomes.append(_failed(ref, exc))
            continue
        decision = store.claim(ref, event.pipeline_id, event.run_id, key, config.limit())
        if decision != "claimed":
            log.info("alert %s for %s/%s to %s not sent: %s", key, event.pipeline_id, event.run_id, ref, decision)
            outcomes.append(AlertOutcome(ref, decision))
            continue
        try:
            with secrets.redacting():
                channel.send(ref.partition(":")[2], config, event)
        except Exception as exc:
            store.release(ref, event.pipeline_id, event.run_id, key)
            outcomes.append(_failed(ref, exc))
            continue
        store.mark_sent(ref, event.pipeline_id, event.run_id, key)
        log.info("alert %s for %s/%s sent to %s", key, event.pipeline_id, event.run_id, ref)
        outcomes.append(AlertOutcome(ref, "sent"))
    failures = [o for o in outcomes if o.status == "failed"]
    if failures and raise_on_failure:
        raise AlertDeliveryError("; ".join(f"{o.channel}: {o.error}" for o in failures))
    return outcomes


def _failed(ref: str, exc: BaseException) -> AlertOutcome:
    text = secrets.redact(str(exc))
    log.error("alert to %s failed: %s", ref, text)
    return AlertOutcome(ref, "failed", text)


class AlertOptions(BaseModel):
    """``op: alert`` ``with: {channel: slack:data-team, message: "..."}`` (or ``channels: [...]``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    channel: str | None = Field(default=None, pattern=CHANNEL_PATTERN)
    channels: list[ChannelRef] = Field(default_factory=list)
    message: str = Field(min_length=1)
    dedup_key: str | None = Field(default=None, description="default: 'message:<task id>'")

    @model_validator(mode="after")
    def _some_channel(self) -> AlertOptions:
        if not self.channel and not self.channels:
            raise ValueError("op 'alert' needs 'channel' (e.g. slack:data-team) or 'channels'")
        return self

    def targets(self) -> list[str]:
        return ([self.channel] if self.channel else []) + list(self.channels)


def run_alert_op(ctx: OpContext, **with_args: Any) -> dict[str, Any]:
    """The ``alert`` op: render the message with the run context, send once per run (retries do not resend)."""
    variables = ctx.run.template_vars(ctx.task_id, ctx.try_number)
    options = AlertOptions.model_validate(render_value(with_args, variables))
    event = AlertEvent(
        pipeline_id=ctx.run.pipeline_id,
        run_id=ctx.run.run_id,
        event="message",
        task_id=ctx.task_id,
        backend=ctx.run.backend,
        logical_date=ctx.run.logical_date,
        try_number=ctx.try_number,
        message=options.message,
        dedup_key=options.dedup_key,
    )
    outcomes = send_alert(options.targets(), event, raise_on_failure=True)
    return {"alerts": {o.channel: o.status for o in outcomes}}
