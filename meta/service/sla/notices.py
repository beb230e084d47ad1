"""Delivering owed notices through the alert operators (their per-channel dedup and rate limits).

A notice is marked in flight before ``send_alert`` is called and settled after it returns. A control plane killed
in between finds it still due and sends it again: the alert store answers ``duplicate`` for every channel that
already got it (its claim marked sent), so each channel hears of each miss once. A channel whose claim the killed
process had taken but not marked sent (killed while connecting, or mid-SMTP) may never have received it: that
claim is released and the channel sent to again, so a crash never loses an alert; it repeats one only if the
kill fell between the channel accepting it and the claim being marked (milliseconds). A channel that fails is
retried with backoff (the others are not resent: their claims are marked sent), up to ``MAX_ATTEMPTS``.

Among replicas only the leader delivers (``meta.service.lease``); should two lead for a moment, each notice is
claimed with a conditional UPDATE first, which only one of them wins (it holds the notice for ``CLAIM_WINDOW``, which
is also how long an interrupted delivery waits before it is completed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import update

from meta.builtin.operators.alerts import AlertEvent, AlertOutcome, send_alert
from meta.builtin.operators.alerts.store import AlertStore
from meta.service.sla import records
from meta.service.store.db import Store
from meta.service.store.orm import SlaNoticeRow, SlaSlotRow

log = logging.getLogger("meta.service.sla")

MAX_ATTEMPTS = 8
CLAIM_WINDOW = timedelta(seconds=10)  # how long a claimed delivery is held before another attempt may take it
# The local runner announces a run's max_duration miss itself when the run ends (meta.builtin.local.alerts), with
# this dedup key in the same alert store: the control plane's own miss of that run uses it too, so a channel hears
# of the miss once, whichever of the two sends first.
LOCAL_RUNNER_MISS_KEY = "sla_miss:max_duration"
Sender = Callable[[list[str], AlertEvent], list[AlertOutcome]]


IN_FLIGHT = "in_flight"  # a notice's outcome while its delivery runs; still there after a restart: interrupted


class AlertSender:
    """``send_alert`` over one alert store, and ``reclaim``: release the claims a killed delivery left unsent."""

    def __init__(self, alert_store: AlertStore | None = None):
        self.alert_store = alert_store

    def __call__(self, channels: list[str], event: AlertEvent) -> list[AlertOutcome]:
        return send_alert(channels, event, store=self.alert_store)

    def reclaim(self, channels: list[str], event: AlertEvent) -> list[str]:
        """Channels whose claim on ``event`` was taken but never marked sent (the claimer died): released, so the
        next send reaches them. Returns them."""
        store = self.alert_store or AlertStore()
        key, released = event.key(), []
        for channel in channels:
            if store.status(channel, event.pipeline_id, event.run_id, key) == "sending":
                store.release(channel, event.pipeline_id, event.run_id, key)
                released.append(channel)
        return released


def default_sender(alert_store: AlertStore | None = None) -> Sender:
    return AlertSender(alert_store)


def event_of(notice: SlaNoticeRow, slot: SlaSlotRow | None, backend_kind: str) -> AlertEvent:
    """The alert for ``notice``. Its dedup key names the backend, kind, slot and stage, so two backends missing
    the same slot are two alerts, and the same notice delivered twice is one. A run's ``max_duration`` miss on the
    local backend takes the local runner's key instead (``LOCAL_RUNNER_MISS_KEY``: same pipeline, run and store)."""
    pipeline = notice.subject.removeprefix("dataset:")
    deadline = slot.deadline.isoformat(timespec="seconds") if slot and slot.deadline else "-"
    detail = slot.detail if slot else ""
    if notice.stage == records.RECOVERY:
        event, message = "sla_recovered", f"SLA {notice.kind} recovered on {notice.backend}: {detail}"
    elif notice.stage == records.ESCALATION:
        event = "sla_miss"
        message = f"ESCALATED: SLA {notice.kind} still missed on {notice.backend} (deadline {deadline}): {detail}"
    else:
        event = "sla_miss"
        message = f"SLA {notice.kind} missed on {notice.backend} (deadline {deadline}): {detail}"
    dedup_key = f"sla_{notice.stage}:{notice.backend}:{notice.kind}:{notice.slot}"
    if backend_kind == "local" and notice.kind == "max_duration" and notice.stage == records.MISS:
        dedup_key = LOCAL_RUNNER_MISS_KEY
    return AlertEvent(
        pipeline_id=pipeline,
        run_id=(slot.run_id if slot and slot.run_id else notice.slot),
        event=event,
        task_id=slot.task_id if slot else None,
        backend=backend_kind,
        message=message,
        dedup_key=dedup_key,
        extra={"sla_kind": notice.kind, "slot": notice.slot, "deadline": deadline, "backend_name": notice.backend},
    )


def deliver_due(
    store: Store, now: datetime, sender: Sender, kind_of: Callable[[str], str], limit: int = 100
) -> list[tuple[SlaNoticeRow, str]]:
    """Send every notice due at ``now``; returns (notice, status) for each one settled or retried."""
    with store.reading() as session:
        due = records.due_notices(session, now, limit)
        slots = {n.id: records.slot_of(session, n) for n in due}
    done = []
    for notice in due:
        event = event_of(notice, slots[notice.id], kind_of(notice.backend))
        channels = list(notice.channels)
        # Claimed first, with a conditional UPDATE: of two replicas that both lead for a moment (a paused leader
        # waking after another took its lease), one delivers. The claim holds the notice for CLAIM_WINDOW; a
        # delivery a crash interrupted is due again after it, and completed (reclaim) then.
        with store.transaction() as session:
            flight = [{"channel": c, "status": IN_FLIGHT, "error": None} for c in channels]
            won = session.execute(
                update(SlaNoticeRow)
                .where(
                    SlaNoticeRow.id == notice.id,
                    SlaNoticeRow.status == records.DUE,
                    SlaNoticeRow.due_at == notice.due_at,
                )
                .values(outcome=flight, due_at=now + CLAIM_WINDOW)
                .returning(SlaNoticeRow.id)
                .execution_options(synchronize_session=False)
            ).first()
        if won is None:
            continue
        reclaim = getattr(sender, "reclaim", None)
        if reclaim is not None and any(o.get("status") == IN_FLIGHT for o in notice.outcome or ()):
            released = reclaim(channels, event)
            if released:
                log.warning(
                    "SLA notice %s %s/%s %s: its delivery was interrupted; sending again to %s",
                    notice.stage,
                    notice.backend,
                    notice.subject,
                    notice.kind,
                    ", ".join(released),
                )
        try:
            outcomes = sender(channels, event)
        except Exception as exc:  # a bug in a channel must not stop the engine; retried like a failure
            log.exception("SLA notice %s could not be sent", notice.id)
            outcomes = [AlertOutcome(c, "failed", type(exc).__name__) for c in notice.channels]
        summary = [{"channel": o.channel, "status": o.status, "error": o.error} for o in outcomes]
        failed = [o for o in outcomes if o.status == "failed"]
        status, retry_in = records.SENT, None
        if failed and notice.attempts + 1 < MAX_ATTEMPTS:
            retry_in = timedelta(seconds=min(300, 2 ** (notice.attempts + 1)))
            status = records.DUE
        elif failed:
            status = records.FAILED
        elif outcomes and all(o.status == "rate_limited" for o in outcomes):
            status = records.RATE_LIMITED
        with store.transaction() as session:
            records.settle(session, notice.id, status, summary, now, retry_in)
        if failed:
            log.warning(
                "SLA notice %s %s/%s %s: %s",
                notice.stage,
                notice.backend,
                notice.subject,
                notice.kind,
                "; ".join(f"{o.channel}: {o.error}" for o in failed),
            )
        done.append((notice, status))
    return done
