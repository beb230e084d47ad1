"""Schedule slots and the wall-clock deadlines of ``finish_by`` / ``start_by``: pure functions over UTC instants.

A slot is one tick of the pipeline's cron or interval schedule. Its deadline for ``finish_by: 09:00`` is the first
09:00 in the pipeline's timezone after the tick (the next day's when the tick is 09:00 itself, as the Airflow
target's Deadline Alert measures it). On daylight-saving days the wall clock decides, not a fixed offset: a 09:00
Europe/Zurich deadline is 07:00 UTC in summer and 08:00 UTC in winter, also on the days the clocks change. A local
time that does not exist (02:30 when clocks jump from 02:00 to 03:00) moves forward by the gap (03:30), and one that
happens twice (02:30 when clocks fall back) means the first of the two: the earlier, stricter deadline.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from meta.spec.model import CronSchedule, IntervalSchedule, Schedule

# An interval schedule without a start_date ticks from here (any fixed anchor would do; slots only need to be stable).
INTERVAL_ANCHOR = datetime(2020, 1, 1, tzinfo=UTC)


def ticks(
    schedule: Schedule | None,
    timezone: str,
    after: datetime,
    until: datetime,
    *,
    start_date: datetime | None = None,
    limit: int = 500,
) -> list[datetime]:
    """The schedule's ticks in ``(after, until]``, oldest first, as UTC instants; at most ``limit`` (the newest)."""
    if isinstance(schedule, CronSchedule):
        out = _cron_ticks(schedule.expression, ZoneInfo(timezone), after, until, limit)
    elif isinstance(schedule, IntervalSchedule):
        out = _interval_ticks(schedule.every, _aware(start_date) or INTERVAL_ANCHOR, after, until, limit)
    else:
        return []
    begin = _aware(start_date)
    if begin is not None:
        out = [t for t in out if t >= begin]
    return out


def _cron_ticks(expression: str, zone: ZoneInfo, after: datetime, until: datetime, limit: int) -> list[datetime]:
    out: list[datetime] = []
    day = after.astimezone(UTC).date()
    while day <= until.astimezone(UTC).date():
        out.extend(t for t in _cron_day(expression, zone.key, day) if after < t <= until)
        day += timedelta(days=1)
    return out[-limit:] if len(out) > limit else out


@functools.lru_cache(maxsize=8192)
def _cron_day(expression: str, timezone: str, day: date) -> tuple[datetime, ...]:
    """Every tick of ``expression`` within one UTC day. Cached: the engine asks for the same few days of the same
    few schedules for every pipeline on every tick, and walking cron expressions is the costly part."""
    from croniter import croniter

    start = datetime.combine(day, time(), UTC)
    end = start + timedelta(days=1)
    # croniter walks wall-clock time in the zone it is given, so "0 1 * * *" stays 01:00 local across DST.
    walker = croniter(expression, (start - timedelta(seconds=1)).astimezone(ZoneInfo(timezone)))
    out = []
    while (tick := walker.get_next(datetime).astimezone(UTC)) < end:
        out.append(tick)
    return tuple(out)


def _interval_ticks(every: timedelta, anchor: datetime, after: datetime, until: datetime, limit: int) -> list[datetime]:
    step = every.total_seconds()
    first = int((after - anchor).total_seconds() // step) + 1
    last = int((until - anchor).total_seconds() // step)
    first = max(first, last - limit + 1, 0)
    return [anchor + timedelta(seconds=step * k) for k in range(first, last + 1)]


def slot_of(instant: datetime, slots: list[datetime], following: datetime | None) -> datetime | None:
    """The slot a run with logical date ``instant`` belongs to: the last tick at or before it, if the run is before
    the tick after the last one (``following``). Runs between ticks (a manual run) count for the slot they fall in."""
    chosen = None
    for tick in slots:
        if tick <= instant:
            chosen = tick
        else:
            break
    if chosen is None:
        return None
    if chosen == slots[-1] and following is not None and instant >= following:
        return None
    return chosen


def next_tick(
    schedule: Schedule | None, timezone: str, after: datetime, start_date: datetime | None = None
) -> datetime | None:
    """The first tick strictly after ``after`` (None: no time-based schedule)."""
    if isinstance(schedule, CronSchedule):
        day = after.astimezone(UTC).date()
        for offset in range(8):  # from the cache when it fires within a week (nearly every schedule does)
            for tick in _cron_day(schedule.expression, timezone, day + timedelta(days=offset)):
                if tick > after:
                    return tick
        from croniter import croniter

        return croniter(schedule.expression, after.astimezone(ZoneInfo(timezone))).get_next(datetime).astimezone(UTC)
    if isinstance(schedule, IntervalSchedule):
        anchor = _aware(start_date) or INTERVAL_ANCHOR
        step = schedule.every.total_seconds()
        k = max(int((after - anchor).total_seconds() // step) + 1, 0)
        return anchor + timedelta(seconds=step * k)
    return None


def local_deadline(tick: datetime, at: time, timezone: str) -> datetime:
    """The first instant after ``tick`` whose wall time in ``timezone`` is ``at`` (see the module docstring for
    times that do not exist or happen twice), as UTC."""
    zone = ZoneInfo(timezone)
    local_tick = tick.astimezone(zone)
    day = local_tick.date()
    for offset in range(3):  # today, tomorrow; a third day only if a DST gap swallowed tomorrow's
        candidate = _wall(day + timedelta(days=offset), at, zone)
        if candidate > tick:
            return candidate
    raise AssertionError("unreachable: a wall time recurs within two days")


def _wall(day: object, at: time, zone: ZoneInfo) -> datetime:
    """``day`` at wall time ``at`` in ``zone`` as UTC: fold=0 picks the first of a repeated time, and for a skipped
    time applies the offset from before the gap, which lands the gap's length later (02:30 -> 03:30)."""
    naive = datetime.combine(day, at.replace(tzinfo=None))  # type: ignore[arg-type]
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
