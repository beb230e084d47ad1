"""Slot deadlines on daylight-saving days, and the SLA states of ``meta.semantics.sla.evaluate``."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from meta.semantics.sla import AT_RISK, MET, MISSED, PENDING, UNKNOWN, Facts, RunFact, SlaSpec, evaluate
from meta.semantics.sla.slots import local_deadline, next_tick, ticks
from meta.spec.model import SLA, CronSchedule

ZURICH = "Europe/Zurich"
DAILY_01 = CronSchedule(cron="0 1 * * *")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "tick", "deadline"),
    [
        # the day before summer time: CET, 09:00 local = 08:00 UTC
        ((2026, 3, 28), utc(2026, 3, 28, 0), utc(2026, 3, 28, 8)),
        # clocks jump 02:00 -> 03:00: the 01:00 tick is still CET, the 09:00 deadline is CEST (7 h later, not 8)
        ((2026, 3, 29), utc(2026, 3, 29, 0), utc(2026, 3, 29, 7)),
        ((2026, 3, 30), utc(2026, 3, 29, 23), utc(2026, 3, 30, 7)),
        # clocks fall back 03:00 -> 02:00: the 01:00 tick is CEST, the deadline CET (9 h later)
        ((2026, 10, 25), utc(2026, 10, 24, 23), utc(2026, 10, 25, 8)),
        ((2026, 10, 26), utc(2026, 10, 26, 0), utc(2026, 10, 26, 8)),
    ],
)
def test_a_0900_zurich_deadline_follows_the_wall_clock_on_dst_days(day, tick, deadline) -> None:
    start = datetime(*day, tzinfo=UTC) - timedelta(hours=3)
    found = ticks(DAILY_01, ZURICH, start, start + timedelta(hours=24))
    assert found[0] == tick
    assert local_deadline(tick, time(9), ZURICH) == deadline


def test_a_local_time_in_the_spring_gap_moves_forward_and_a_repeated_one_is_the_first() -> None:
    # 02:30 does not exist on 2026-03-29 in Zurich: it is read as 03:30 CEST (01:30 UTC)
    assert local_deadline(utc(2026, 3, 28, 23), time(2, 30), ZURICH) == utc(2026, 3, 29, 1, 30)
    # 02:30 happens twice on 2026-10-25: the first, CEST (00:30 UTC), is the deadline
    assert local_deadline(utc(2026, 10, 24, 23), time(2, 30), ZURICH) == utc(2026, 10, 25, 0, 30)


def test_a_deadline_equal_to_the_tick_is_the_next_day() -> None:
    assert local_deadline(utc(2026, 6, 1, 7), time(9), ZURICH) == utc(2026, 6, 2, 7)


def _finish_by(**sla: object) -> SlaSpec:
    return SlaSpec(sla=SLA.model_validate(sla), schedule=DAILY_01, timezone=ZURICH)


TICK = utc(2026, 6, 1, 23)  # 01:00 CEST on 2 June
DEADLINE = utc(2026, 6, 2, 7)  # 09:00 CEST


def _state(spec: SlaSpec, facts: Facts, now: datetime, kind: str) -> tuple[str, str]:
    found = [s for s in evaluate(spec, facts, now).statuses if s.kind == kind]
    assert found, f"no {kind} slot"
    return found[-1].state, found[-1].detail


def test_a_slot_with_no_run_is_a_miss_once_the_facts_cover_the_deadline() -> None:
    spec = _finish_by(start_by="02:00")
    since = TICK - timedelta(hours=1)
    before = Facts(as_of=utc(2026, 6, 1, 23, 10), tracking_since=since)  # 02:00 CEST = 00:00 UTC is the deadline
    assert _state(spec, before, utc(2026, 6, 1, 23, 10), "start_by")[0] == PENDING
    assert _state(spec, before, utc(2026, 6, 1, 23, 50), "start_by")[0] == AT_RISK  # 80% of the wait is gone
    after = Facts(as_of=utc(2026, 6, 2, 0, 0, 5), tracking_since=since)
    state, detail = _state(spec, after, utc(2026, 6, 2, 0, 0, 6), "start_by")
    assert (state, detail) == (MISSED, "deadline passed: no run started")


def test_no_miss_is_declared_from_silence() -> None:
    spec = _finish_by(finish_by="09:00")
    stale = Facts(as_of=DEADLINE - timedelta(minutes=5), tracking_since=TICK)
    assert _state(spec, stale, DEADLINE + timedelta(seconds=10), "finish_by")[0] == AT_RISK  # facts are on the way
    assert _state(spec, stale, DEADLINE + timedelta(minutes=5), "finish_by")[0] == UNKNOWN  # the backend is silent


def test_a_late_success_is_a_resolved_miss_and_an_early_one_is_met() -> None:
    spec = _finish_by(finish_by="09:00")
    late = RunFact("r1", "success", logical_date=TICK, started_at=TICK, ended_at=DEADLINE + timedelta(minutes=3))
    evaluation = evaluate(
        spec,
        Facts(runs=[late], as_of=DEADLINE + timedelta(hours=1), tracking_since=TICK),
        DEADLINE + timedelta(hours=1),
    )
    [slot] = [s for s in evaluation.statuses if s.kind == "finish_by" and s.slot == TICK.isoformat()]
    assert slot.state == MISSED and slot.resolved_at == late.ended_at
    early = RunFact("r1", "success", logical_date=TICK, started_at=TICK, ended_at=TICK + timedelta(hours=1))
    facts = Facts(runs=[early], as_of=DEADLINE, tracking_since=TICK)
    assert _state(spec, facts, DEADLINE, "finish_by")[0] == MET


def test_a_run_slower_than_its_history_is_at_risk_before_it_misses_max_duration() -> None:
    spec = SlaSpec(sla=SLA(max_duration=timedelta(seconds=6)))
    start = utc(2026, 6, 1, 12)
    running = RunFact("slow", "running", queued_at=start, started_at=start)
    facts = Facts(runs=[running], durations=[1.0, 1.1, 0.9, 1.0], as_of=start, tracking_since=start)
    assert _state(spec, facts, start + timedelta(seconds=0.5), "max_duration")[0] == PENDING
    assert _state(spec, facts, start + timedelta(seconds=2), "max_duration")[0] == AT_RISK
    covered = Facts(runs=[running], durations=[1.0] * 4, as_of=start + timedelta(seconds=7), tracking_since=start)
    state, detail = _state(spec, covered, start + timedelta(seconds=7), "max_duration")
    assert (state, detail) == (MISSED, "deadline passed: still not ended")


def test_freshness_gaps_are_resolved_misses_and_the_current_window_is_met() -> None:
    spec = SlaSpec(sla=SLA(fresh_within=timedelta(hours=26)))
    ends = [utc(2026, 6, 1, 8), utc(2026, 6, 3, 8), utc(2026, 6, 4, 8)]  # 48 h gap, then 24 h
    facts = Facts(success_ends=ends, as_of=utc(2026, 6, 4, 9), tracking_since=utc(2026, 6, 1))
    statuses = evaluate(spec, facts, utc(2026, 6, 4, 9), horizon=timedelta(days=7)).statuses
    assert [(s.state, s.resolved_at) for s in statuses] == [(MISSED, ends[1]), (MET, None)]
    assert statuses[0].deadline == ends[0] + timedelta(hours=26)


def test_average_runtime_deadline_waits_for_min_runs_like_airflow() -> None:
    sla = SLA.model_validate({"deadlines": [{"reference": "average_runtime", "interval": "1m", "max_runs": 3}]})
    start = utc(2026, 6, 1, 12)
    run = RunFact("r", "running", queued_at=start, started_at=start)
    few = Facts(runs=[run], finished_durations=[60, 60], as_of=start, tracking_since=start)
    assert evaluate(SlaSpec(sla=sla), few, start).statuses == []
    enough = Facts(runs=[run], finished_durations=[60, 120, 180], as_of=start, tracking_since=start)
    [status] = evaluate(SlaSpec(sla=sla), enough, start).statuses
    assert status.kind == "deadline:average_runtime+1m" and status.deadline == start + timedelta(minutes=3)


@pytest.mark.parametrize("expression", ["0 9 * * *", "30 2 * * *", "*/7 * * * *", "0 */3 * * 1-5", "15 1 1 * *"])
@pytest.mark.parametrize("zone", ["UTC", "Europe/Zurich", "America/New_York"])
def test_cached_ticks_are_croniters_walk_across_dst(expression: str, zone: str) -> None:
    from zoneinfo import ZoneInfo

    from croniter import croniter

    for start in (datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 10, 23, 7, tzinfo=UTC)):
        until = start + timedelta(days=4, hours=5)
        walker, expected = croniter(expression, start.astimezone(ZoneInfo(zone))), []
        while (tick := walker.get_next(datetime).astimezone(UTC)) <= until:
            expected.append(tick)
        schedule = CronSchedule(cron=expression)
        assert ticks(schedule, zone, start, until, limit=10_000) == expected
        # the first tick after the window start, also when it lies beyond the cached week (monthly schedules)
        assert next_tick(schedule, zone, start) == croniter(expression, start.astimezone(ZoneInfo(zone))).get_next(
            datetime
        ).astimezone(UTC)
