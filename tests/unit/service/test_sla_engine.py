"""The SLA engine over a real SQLite store, on a controlled clock: each miss recorded and announced once, across
ticks and restarts; a recovery once; an escalation after its delay (none when the run recovers first); a deadline
passed before the backend's facts cover it is not called yet, and the engine asks for a poll.

Delivery goes through ``sender`` (the seam ``send_alert`` sits behind); the real HTTP and SMTP channels are
proven in tests/integration/service/test_sla_real.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from meta.builtin.operators.alerts import AlertEvent, AlertOutcome
from meta.builtin.operators.alerts.store import AlertStore
from meta.plugins.observers import EventKind, RunEvent, Source, UnifiedState
from meta.service.sla import SlaEngine, notices
from meta.service.store import queries
from meta.service.store.db import Store, open_store
from meta.service.store.orm import BackendRow, SlaNoticeRow, SlaSlotRow
from meta.spec.model import Pipeline
from meta.spec.workspace import Workspace

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, AlertEvent]] = []

    def __call__(self, channels: list[str], event: AlertEvent) -> list[AlertOutcome]:
        self.sent.extend((c, event) for c in channels)
        return [AlertOutcome(c, "sent") for c in channels]

    def of(self, event: str) -> list[tuple[str, str]]:
        return [(c, e.extra["sla_kind"]) for c, e in self.sent if e.event == event]


def pipeline(on_sla_miss: tuple[str, ...] = ("webhook:oncall",), **sla: Any) -> Pipeline:
    return Pipeline.model_validate(
        {
            "id": "sales",
            "schedule": {"kind": "cron", "cron": "0 8 * * *"},
            "sla": sla,
            "alerts": {
                "on_sla_miss": list(on_sla_miss),
                "sla_escalation": {"after": "30s", "channels": ["email:boss"]},
            },
            "tasks": [{"id": "load", "action": {"kind": "shell", "command": "true"}}],
        }
    )


WORKSPACE = Workspace.model_validate(
    {
        "backends": {"loc": {"kind": "local"}, "af": {"kind": "airflow", "url": "http://127.0.0.1:1"}},
        "placements": [{"backend": "loc", "pipelines": ["sales"]}],
        "slas": [
            {
                "pipeline": "vendor_dag",
                "backend": "af",
                "schedule": "0 7 * * *",
                "sla": {"start_by": "07:10"},
                "on_sla_miss": ["webhook:vendor"],
            },
        ],
    }
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    with s.transaction() as session:
        queries.upsert_backend(session, "loc", "local", "file:///x")
        queries.upsert_backend(session, "af", "airflow", "http://127.0.0.1:1")
    yield s
    s.close()


def facts_until(store: Store, at: datetime) -> None:
    """The backends answered a poll at ``at``: everything up to then is in the store."""
    with store.transaction() as session:
        session.execute(update(BackendRow).values(last_success_at=at, health="ok"))


def observe(
    store: Store,
    state: UnifiedState,
    at: datetime,
    *,
    queued_at: datetime | None = None,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
) -> None:
    event = RunEvent(
        "loc",
        EventKind.RUN,
        "sales",
        "r1",
        state,
        str(state),
        at,
        Source.POLL,
        logical_date=T0 - timedelta(hours=1),
        queued_at=queued_at,
        started_at=started_at,
        ended_at=ended_at,
    )
    with store.transaction() as session:
        queries.ingest(session, [event])


def engine(store: Store, outbox: Outbox, pipelines: list[Pipeline], polls: list[str] | None = None) -> SlaEngine:
    return SlaEngine(store, WORKSPACE, pipelines, sender=outbox, poll_now=(polls.append if polls is not None else None))


def slot(store: Store, kind: str, at: str | None = None) -> SlaSlotRow:
    with store.reading() as session:
        statement = select(SlaSlotRow).where(SlaSlotRow.kind == kind)
        row = session.scalar(statement.where(SlaSlotRow.slot == at) if at else statement)
        assert row is not None, f"no {kind} slot recorded"
        return row


def test_a_run_still_running_past_max_duration_is_missed_at_its_deadline_and_announced_once(store: Store) -> None:
    outbox, spec = Outbox(), [pipeline(max_duration="10s")]
    observe(store, UnifiedState.RUNNING, T0, queued_at=T0, started_at=T0)
    facts_until(store, T0 + timedelta(seconds=5))
    first = engine(store, outbox, spec)
    first.tick(T0 + timedelta(seconds=5))
    assert slot(store, "max_duration").state == "pending"
    facts_until(store, T0 + timedelta(seconds=11))
    report = first.tick(T0 + timedelta(seconds=11))
    assert report.missed == 1 and slot(store, "max_duration").state == "missed"
    assert outbox.of("sla_miss") == [("webhook:oncall", "max_duration")]
    first.tick(T0 + timedelta(seconds=12))
    # a restarted engine judges the same slot again and neither re-sends nor forgets it
    again = engine(store, outbox, spec)
    again.tick(T0 + timedelta(seconds=13))
    assert outbox.of("sla_miss") == [("webhook:oncall", "max_duration")]
    assert slot(store, "max_duration").missed_at is not None

    # the late run succeeds: one recovery notice, and the escalation still due is cancelled
    observe(
        store,
        UnifiedState.SUCCESS,
        T0 + timedelta(seconds=20),
        queued_at=T0,
        started_at=T0,
        ended_at=T0 + timedelta(seconds=20),
    )
    facts_until(store, T0 + timedelta(seconds=21))
    again.tick(T0 + timedelta(seconds=21))
    engine(store, outbox, spec).tick(T0 + timedelta(seconds=60))
    assert outbox.of("sla_recovered") == [("webhook:oncall", "max_duration")]
    assert slot(store, "max_duration").state == "missed"  # history keeps the miss
    with store.reading() as session:
        stages = {n.stage: n.status for n in session.scalars(select(SlaNoticeRow))}
    assert stages == {"miss": "sent", "escalation": "cancelled", "recovery": "sent"}
    assert [c for c, _ in outbox.sent].count("email:boss") == 0


def test_an_unresolved_miss_escalates_after_its_delay_once(store: Store) -> None:
    outbox, spec = Outbox(), [pipeline(max_duration="10s")]
    observe(store, UnifiedState.RUNNING, T0, queued_at=T0, started_at=T0)
    facts_until(store, T0 + timedelta(seconds=11))
    e = engine(store, outbox, spec)
    e.tick(T0 + timedelta(seconds=11))
    e.tick(T0 + timedelta(seconds=30))
    assert outbox.of("sla_miss") == [("webhook:oncall", "max_duration")]
    e.tick(T0 + timedelta(seconds=42))
    engine(store, outbox, spec).tick(T0 + timedelta(seconds=50))
    assert outbox.of("sla_miss") == [("webhook:oncall", "max_duration"), ("email:boss", "max_duration")]
    escalation = next(e for c, e in outbox.sent if c == "email:boss")
    assert escalation.message is not None and escalation.message.startswith("ESCALATED")


def test_a_deadline_the_facts_do_not_cover_yet_is_at_risk_and_asks_for_a_poll(store: Store) -> None:
    outbox, polls, spec = Outbox(), list[str](), [pipeline(max_duration="10s")]
    observe(store, UnifiedState.RUNNING, T0, queued_at=T0, started_at=T0)
    facts_until(store, T0 + timedelta(seconds=5))  # the last good poll is from before the deadline
    e = engine(store, outbox, spec, polls)
    e.tick(T0 + timedelta(seconds=12))
    assert slot(store, "max_duration").state == "at_risk" and outbox.sent == []
    assert polls == ["loc"]
    # the backend stays silent long past the deadline: unknown, still no alert
    e.tick(T0 + timedelta(seconds=120))
    assert slot(store, "max_duration").state == "unknown" and outbox.sent == []
    facts_until(store, T0 + timedelta(seconds=121))
    e.tick(T0 + timedelta(seconds=121))
    assert slot(store, "max_duration").state == "missed" and len(outbox.sent) == 1


def test_an_external_dag_with_no_run_misses_its_start_by_slot(store: Store) -> None:
    outbox = Outbox()
    facts_until(store, datetime(2026, 12, 2, 7, 11, tzinfo=UTC))
    e = engine(store, outbox, [])
    e.refresh(datetime(2026, 12, 2, 6, 0, tzinfo=UTC))  # watching began before today's tick
    e.tick(datetime(2026, 12, 2, 7, 5, tzinfo=UTC))
    today = "2026-12-02T07:00:00+00:00"
    assert slot(store, "start_by", today).state in ("pending", "at_risk")
    # yesterday's slot, from before watching began, is on record as missed but announced to no one
    assert slot(store, "start_by", "2026-12-01T07:00:00+00:00").state == "missed"
    assert outbox.sent == []
    e.tick(datetime(2026, 12, 2, 7, 11, tzinfo=UTC))
    row = slot(store, "start_by", today)
    assert (row.subject, row.backend, row.state) == ("vendor_dag", "af", "missed")
    assert "no run" in row.detail
    assert outbox.of("sla_miss") == [("webhook:vendor", "start_by")]


def test_a_local_max_duration_miss_shares_the_local_runners_dedup_key(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local runner announces a run's max_duration miss itself when the run ends (``sla_miss:max_duration``
    for that pipeline and run, meta.builtin.local.alerts): the control plane's miss of the same run on the local
    backend carries the same key, so the alert store lets a channel hear of it once (seen twice on a real
    ``meta serve`` + ``meta run``: tests/integration/service/test_sla_real.py). Other backends keep keys naming
    the backend and slot."""
    from meta.builtin.local.alerts import RouteAlerts
    from meta.semantics.context import RunContext

    outbox, spec = Outbox(), [pipeline(max_duration="10s")]
    observe(store, UnifiedState.RUNNING, T0, queued_at=T0, started_at=T0)
    facts_until(store, T0 + timedelta(seconds=11))
    engine(store, outbox, spec).tick(T0 + timedelta(seconds=11))
    [(_, event)] = outbox.sent

    runner_events: list[AlertEvent] = []

    class Finished:  # the shape of meta.builtin.local.engine.RunOutcome that RouteAlerts reads
        started_at, ended_at = T0, T0 + timedelta(seconds=20)
        result = type("Result", (), {"state": "success", "tasks": {}})()

    import meta.builtin.operators.alerts as alerts

    def capture(channels: list[str], alert: AlertEvent, **_: object) -> list[AlertOutcome]:
        runner_events.append(alert)
        return [AlertOutcome(c, "sent") for c in channels]

    monkeypatch.setattr(alerts, "send_alert", capture)
    ctx = RunContext("sales", "r1", T0 - timedelta(hours=1), backend="local")
    RouteAlerts(spec[0], ctx).finished(Finished())  # type: ignore[arg-type]
    [runner] = [e for e in runner_events if e.event == "sla_miss"]
    assert (event.pipeline_id, event.run_id, event.key()) == (runner.pipeline_id, runner.run_id, runner.key())

    other = SlaNoticeRow(backend="af", subject="vendor_dag", kind="max_duration", slot="r1", stage="miss")
    assert notices.event_of(other, None, "airflow").key() == "sla_miss:af:max_duration:r1"


class ClaimingSender(notices.AlertSender):
    """``send_alert``'s protocol over a real alert store (claim, deliver, mark sent), without a network; it dies like
    a SIGKILLed process (a BaseException nothing in the engine catches) once it has claimed ``die_on``."""

    def __init__(self, path: Path, delivered: list[tuple[str, str]], die_on: str | None = None):
        super().__init__(AlertStore(path))
        self.delivered, self.die_on = delivered, die_on

    def __call__(self, channels: list[str], event: AlertEvent) -> list[AlertOutcome]:
        assert self.alert_store is not None
        out, key = [], event.key()
        for channel in channels:
            if self.alert_store.claim(channel, event.pipeline_id, event.run_id, key, None) != "claimed":
                out.append(AlertOutcome(channel, "duplicate"))
                continue
            if channel == self.die_on:
                raise KeyboardInterrupt("killed mid-delivery")
            self.delivered.append((channel, event.event))
            self.alert_store.mark_sent(channel, event.pipeline_id, event.run_id, key)
            out.append(AlertOutcome(channel, "sent"))
        return out


def test_a_delivery_killed_after_a_claim_is_completed_after_the_restart_once_per_channel(
    store: Store, tmp_path: Path
) -> None:
    """Killed after the webhook got the miss and while the email channel was claimed but not yet delivered (the
    SMTP conversation): the restarted engine sends the email (its claim released), and not the webhook again.
    Without the release the email was lost for good (seen on a real ``meta serve`` SIGKILLed: test_sla_real.py)."""
    spec = pipeline(("webhook:oncall", "email:oncall"), max_duration="10s")
    observe(store, UnifiedState.RUNNING, T0, queued_at=T0, started_at=T0)
    facts_until(store, T0 + timedelta(seconds=11))
    delivered: list[tuple[str, str]] = []
    alerts_db = tmp_path / "alerts.db"
    dying = SlaEngine(store, WORKSPACE, [spec], sender=ClaimingSender(alerts_db, delivered, die_on="email:oncall"))
    with pytest.raises(KeyboardInterrupt):
        dying.tick(T0 + timedelta(seconds=11))
    assert delivered == [("webhook:oncall", "sla_miss")]
    restarted = SlaEngine(store, WORKSPACE, [spec], sender=ClaimingSender(alerts_db, delivered))
    restarted.tick(T0 + timedelta(seconds=12))
    assert len(delivered) == 1  # the dead delivery's claim holds the notice for notices.CLAIM_WINDOW
    restarted.tick(T0 + timedelta(seconds=11) + notices.CLAIM_WINDOW)
    restarted.tick(T0 + timedelta(seconds=12) + notices.CLAIM_WINDOW)
    assert delivered == [("webhook:oncall", "sla_miss"), ("email:oncall", "sla_miss")]
    with store.reading() as session:
        [notice] = session.scalars(select(SlaNoticeRow).where(SlaNoticeRow.stage == "miss"))
    assert notice.status == "sent"
    assert {o["channel"]: o["status"] for o in notice.outcome} == {
        "webhook:oncall": "duplicate",
        "email:oncall": "sent",
    }


def test_a_tick_whose_store_write_fails_loses_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from meta.service.sla import records

    outbox, spec = Outbox(), [pipeline(max_duration="10s")]
    observe(store, UnifiedState.RUNNING, T0, queued_at=T0, started_at=T0)
    facts_until(store, T0 + timedelta(seconds=5))
    e = engine(store, outbox, spec)
    e.tick(T0 + timedelta(seconds=5))
    facts_until(store, T0 + timedelta(seconds=11))
    real = records.write_slots

    def down(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(records, "write_slots", down)
    with pytest.raises(RuntimeError):
        e.tick(T0 + timedelta(seconds=11))  # the deadline's tick: nothing stored
    monkeypatch.setattr(records, "write_slots", real)
    e.tick(T0 + timedelta(seconds=12))
    assert slot(store, "max_duration").state == "missed"
    assert outbox.of("sla_miss") == [("webhook:oncall", "max_duration")]


def test_two_leaders_for_a_moment_deliver_each_notice_once(store: Store) -> None:
    """A paused leader waking after another took its lease: both deliver from one store, each with its own alert
    store (two machines). The second looks while the first is still sending: the first's claim hides the notice."""
    from meta.service.sla import notices as notice_module

    spec = [pipeline(max_duration="10s")]
    observe(store, UnifiedState.RUNNING, T0, queued_at=T0, started_at=T0)
    facts_until(store, T0 + timedelta(seconds=11))
    now = T0 + timedelta(seconds=11)
    SlaEngine(store, WORKSPACE, spec, sender=Outbox(), deliver=False).tick(now)  # records the miss; sends nothing
    second = Outbox()
    kinds = {"loc": "local", "af": "airflow"}.__getitem__
    during: list[object] = []

    class SlowFirst(Outbox):
        def __call__(self, channels: list[str], event: AlertEvent) -> list[AlertOutcome]:
            during.extend(notice_module.deliver_due(store, now, second, kinds))  # the other leader, meanwhile
            return super().__call__(channels, event)

    first = SlowFirst()
    assert len(notice_module.deliver_due(store, now, first, kinds)) == 1
    assert during == [] and second.sent == []
    assert first.of("sla_miss") == [("webhook:oncall", "max_duration")]
