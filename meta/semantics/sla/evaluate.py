"""SLA states from run facts: one pure function, ``evaluate``, used by the control plane's engine on every backend.

Each SLA kind is judged per *slot*: a schedule tick (``finish_by``, ``start_by``), a run (``max_duration``,
``deadline:*``), one try of a task (``tasks.<id>.max_duration``) or a stretch of staleness (``fresh_within``).
A slot is in one of five states:

* ``pending``: the deadline is ahead and nothing says it will be missed;
* ``at_risk``: the deadline is ahead (or has just passed and the backend's facts from after it are not in yet), and
  the run at its usual pace ends after it, or it already runs slower than its recent history, or (no history yet)
  80% of the time to the deadline is gone;
* ``met``: satisfied by the deadline;
* ``missed``: the deadline passed, the backend's facts from after the deadline are in, and it was not satisfied
  (``resolved_at`` is set once the late run succeeds: that is when the recovery notice goes out);
* ``unknown``: the deadline passed but the backend has said nothing since (it is unreachable): a miss is declared
  only from facts, never from silence of the observer.

The engine calls ``evaluate`` on a timer, so a run that hangs is caught at its deadline, not when it ends.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from meta.semantics.sla.slots import local_deadline, next_tick, slot_of, ticks
from meta.spec.model import SLA, Deadline, Schedule

PENDING, AT_RISK, MET, MISSED, UNKNOWN = "pending", "at_risk", "met", "missed", "unknown"
STATES = (PENDING, AT_RISK, MET, MISSED, UNKNOWN)
TERMINAL_RUN_STATES = frozenset({"success", "failed", "skipped", "upstream_failed"})
RISK_FRACTION = 0.8  # with no history: at risk once this share of the time to the deadline is gone
MIN_HISTORY = 3  # runs needed before "slower than its history" is judged
MAX_RECHECK = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class RunFact:
    run_id: str
    state: str
    logical_date: datetime | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL_RUN_STATES and self.ended_at is not None


@dataclass(frozen=True, slots=True)
class AttemptFact:
    run_id: str
    task_id: str
    try_number: int
    state: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    map_index: int = -1


@dataclass(frozen=True)
class SlaSpec:
    """What one watched pipeline (on one backend) must meet."""

    sla: SLA | None = None
    task_limits: dict[str, timedelta] = field(default_factory=dict)
    schedule: Schedule | None = None
    timezone: str = "UTC"
    start_date: datetime | None = None

    def kinds(self) -> tuple[str, ...]:
        own = self.sla.kinds() if self.sla is not None else ()
        return (*own, *(f"tasks.{task}.max_duration" for task in sorted(self.task_limits)))


@dataclass(frozen=True)
class Facts:
    """What the control plane knows about one pipeline on one backend.

    ``runs``: recent runs (any order). ``attempts``: recent task tries (only needed for task limits).
    ``success_ends``: when recent successes ended, oldest first, plus the last one before them (freshness).
    ``durations``: seconds of recent successful runs, newest first; ``finished_durations``: of every finished run
    (what Airflow's average-runtime deadline averages). ``task_durations``: per task, successful tries, newest first.
    ``as_of``: the backend's facts are complete up to this instant (its last successful poll); None: never read.
    ``tracking_since``: when the control plane began watching this SLA: nothing before it is judged.
    """

    runs: Sequence[RunFact] = ()
    attempts: Sequence[AttemptFact] = ()
    success_ends: Sequence[datetime] = ()
    durations: Sequence[float] = ()
    finished_durations: Sequence[float] = ()
    task_durations: dict[str, Sequence[float]] = field(default_factory=dict)
    as_of: datetime | None = None
    tracking_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class SlotStatus:
    kind: str
    slot: str
    state: str
    deadline: datetime | None
    detail: str
    run_id: str | None = None
    task_id: str | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class Evaluation:
    statuses: list[SlotStatus]
    next_check: datetime  # nothing can change before this unless new facts arrive
    waiting_for_facts: bool  # a deadline passed and the backend's facts from after it are not in yet


def evaluate(
    spec: SlaSpec,
    facts: Facts,
    now: datetime,
    *,
    horizon: timedelta = timedelta(days=2),
    stale_after: timedelta = timedelta(seconds=60),
) -> Evaluation:
    """Every slot of every SLA kind in ``spec`` whose deadline is within ``horizon`` before ``now`` or ahead."""
    judge = _Judge(facts, now, stale_after)
    since = max(facts.tracking_since or now - horizon, now - horizon)
    sla = spec.sla
    if sla is not None:
        if sla.finish_by is not None or sla.start_by is not None:
            _slots(judge, spec, since)
        if sla.max_duration is not None:
            for run in facts.runs:
                reference = run.queued_at or run.started_at
                if reference is not None:
                    judge.run_limit("max_duration", run, reference, reference + sla.max_duration, facts.durations)
        for deadline in sla.deadlines:
            for run in facts.runs:
                _deadline(judge, deadline, run, facts)
        if sla.fresh_within is not None:
            _freshness(judge, sla.fresh_within, facts, since)
    for attempt in facts.attempts:
        limit = spec.task_limits.get(attempt.task_id)
        if limit is not None and attempt.started_at is not None:
            judge.attempt_limit(attempt, limit, facts.task_durations.get(attempt.task_id, ()))
    upcoming = next_tick(spec.schedule, spec.timezone, now, spec.start_date)
    if upcoming is not None and (sla is not None and (sla.finish_by or sla.start_by)):
        judge.wake_at(upcoming)
    # Nothing from before watching began is judged, except a run (or task try) still open past its limit: that
    # miss is happening now, and a control plane started late must still catch it.
    still_open = {r.run_id for r in facts.runs if not r.ended}
    statuses = [
        s
        for s in judge.statuses
        if s.deadline is None
        or s.deadline >= since
        or (s.run_id in still_open and s.kind not in ("finish_by", "start_by") and s.state != MET)
    ]
    return Evaluation(statuses, judge.next_check(), judge.waiting)


class _Judge:
    """Shared rules: when a deadline counts as passed, how risk is projected, when to look again."""

    def __init__(self, facts: Facts, now: datetime, stale_after: timedelta):
        self.facts = facts
        self.now = now
        self.stale_after = stale_after
        self.statuses: list[SlotStatus] = []
        self.wakes: list[datetime] = []
        self.waiting = False

    def wake_at(self, instant: datetime) -> None:
        if instant > self.now:
            self.wakes.append(instant)

    def next_check(self) -> datetime:
        if self.waiting:
            return self.now + timedelta(seconds=1)
        return min([*self.wakes, self.now + MAX_RECHECK])

    def passed(self, deadline: datetime) -> str | None:
        """None while the deadline is ahead; else MISSED when the facts cover it, AT_RISK while they should
        arrive any moment, UNKNOWN when the backend has been silent too long."""
        if self.now < deadline:
            return None
        as_of = self.facts.as_of
        if as_of is not None and as_of >= deadline:
            return MISSED
        self.waiting = True
        if as_of is None or self.now - max(as_of, deadline) > self.stale_after:
            return UNKNOWN
        return AT_RISK

    def add(self, status: SlotStatus) -> None:
        self.statuses.append(status)
        if status.deadline is not None and status.state in (PENDING, AT_RISK):
            self.wake_at(status.deadline)

    def risk(
        self, begin: datetime, deadline: datetime, started: datetime | None, history: Sequence[float]
    ) -> tuple[bool, str]:
        """Whether a slot still open before ``deadline`` is at risk, and why (see the module docstring)."""
        typical = statistics.median(history) if history else None
        slow = _p90(history) if len(history) >= MIN_HISTORY else None
        if typical is not None:
            projected = (started or max(self.now, begin)) + timedelta(seconds=typical)
            if projected > deadline:
                return True, f"at its usual pace ({_secs(typical)}) it ends at {_iso(projected)}, after the deadline"
            self.wake_at(deadline - timedelta(seconds=typical))
        if started is not None and slow is not None:
            elapsed = (self.now - started).total_seconds()
            if elapsed > slow:
                return (
                    True,
                    f"running {_secs(elapsed)}, longer than 90% of its last {len(history)} runs ({_secs(slow)})",
                )
            self.wake_at(started + timedelta(seconds=slow))
        if typical is None:
            threshold = begin + (deadline - begin) * RISK_FRACTION
            if self.now >= threshold:
                return True, f"{int(RISK_FRACTION * 100)}% of the time to the deadline is gone (no run history yet)"
            self.wake_at(threshold)
        return False, ""

    def run_limit(
        self,
        kind: str,
        run: RunFact,
        begin: datetime,
        deadline: datetime,
        history: Sequence[float],
        task: str | None = None,
        slot: str | None = None,
        ended: bool | None = None,
    ) -> None:
        """A run (or task try) must have ended by ``deadline``. ``ended`` overrides ``run.ended`` for a task try,
        which also ends in states a run never has (up_for_retry)."""
        ended = run.ended if ended is None else ended
        ended_at = run.ended_at
        slot = slot or run.run_id
        if ended and ended_at is not None and ended_at <= deadline:
            self.add(SlotStatus(kind, slot, MET, deadline, f"ended {_iso(ended_at)}", run.run_id, task))
            return
        if ended and ended_at is not None:
            resolved = ended_at if run.state == "success" else None
            self.add(
                SlotStatus(
                    kind,
                    slot,
                    MISSED,
                    deadline,
                    f"ended {_iso(ended_at)}, after the deadline",
                    run.run_id,
                    task,
                    resolved,
                )
            )
            return
        verdict = self.passed(deadline)
        if verdict is None:
            at_risk, why = self.risk(begin, deadline, run.started_at, history)
            self.add(
                SlotStatus(
                    kind,
                    slot,
                    AT_RISK if at_risk else PENDING,
                    deadline,
                    why or f"running since {_iso(begin)}",
                    run.run_id,
                    task,
                )
            )
            return
        self.add(
            SlotStatus(kind, slot, verdict, deadline, _passed_detail(verdict, "still not ended"), run.run_id, task)
        )

    def attempt_limit(self, attempt: AttemptFact, limit: timedelta, history: Sequence[float]) -> None:
        assert attempt.started_at is not None
        slot = f"{attempt.run_id}:{attempt.try_number}" + (f":{attempt.map_index}" if attempt.map_index >= 0 else "")
        run = RunFact(attempt.run_id, attempt.state, started_at=attempt.started_at, ended_at=attempt.ended_at)
        ended = attempt.ended_at is not None and attempt.state not in ("running", "queued", "scheduled")
        self.run_limit(
            f"tasks.{attempt.task_id}.max_duration",
            run,
            attempt.started_at,
            attempt.started_at + limit,
            history,
            task=attempt.task_id,
            slot=slot,
            ended=ended,
        )


def _slots(judge: _Judge, spec: SlaSpec, since: datetime) -> None:
    sla = spec.sla
    assert sla is not None
    # A slot's deadline is at most two days after its tick: look that far back for ticks.
    found = ticks(spec.schedule, spec.timezone, since - timedelta(days=2), judge.now, start_date=spec.start_date)
    if not found:
        return
    following = next_tick(spec.schedule, spec.timezone, found[-1], spec.start_date)
    by_slot: dict[datetime, list[RunFact]] = {}
    for run in judge.facts.runs:
        if run.logical_date is not None:
            tick = slot_of(run.logical_date, found, following)
            if tick is not None:
                by_slot.setdefault(tick, []).append(run)
    for tick in found:
        runs = by_slot.get(tick, [])
        successes = [r.ended_at for r in runs if r.state == "success" and r.ended_at is not None]
        first_success = min(successes) if successes else None
        if sla.finish_by is not None:
            deadline = local_deadline(tick, sla.finish_by, spec.timezone)
            if deadline >= since:
                _finish_by(judge, tick, deadline, runs, first_success)
        if sla.start_by is not None:
            deadline = local_deadline(tick, sla.start_by, spec.timezone)
            if deadline >= since:
                _start_by(judge, tick, deadline, runs, first_success)


def _finish_by(
    judge: _Judge, tick: datetime, deadline: datetime, runs: list[RunFact], success: datetime | None
) -> None:
    slot, run_id = tick.isoformat(), _latest_id(runs)
    if success is not None and success <= deadline:
        judge.add(SlotStatus("finish_by", slot, MET, deadline, f"succeeded {_iso(success)}", run_id))
        return
    verdict = judge.passed(deadline)
    if verdict is None:
        running = [r.started_at for r in runs if not r.ended and r.started_at is not None]
        at_risk, why = judge.risk(tick, deadline, min(running) if running else None, judge.facts.durations)
        detail = why or ("running" if running else "no run yet" if not runs else "not succeeded yet")
        judge.add(SlotStatus("finish_by", slot, AT_RISK if at_risk else PENDING, deadline, detail, run_id))
        return
    what = "no run at all" if not runs else "not succeeded"
    if verdict == MISSED and success is not None:
        judge.add(
            SlotStatus("finish_by", slot, MISSED, deadline, f"succeeded late, {_iso(success)}", run_id, None, success)
        )
        return
    judge.add(SlotStatus("finish_by", slot, verdict, deadline, _passed_detail(verdict, what), run_id))


def _start_by(judge: _Judge, tick: datetime, deadline: datetime, runs: list[RunFact], success: datetime | None) -> None:
    slot, run_id = tick.isoformat(), _latest_id(runs)
    starts = [r.started_at for r in runs if r.started_at is not None]
    started = min(starts) if starts else None
    if started is not None and started <= deadline:
        judge.add(SlotStatus("start_by", slot, MET, deadline, f"started {_iso(started)}", run_id))
        return
    verdict = judge.passed(deadline)
    if verdict is None:
        threshold = tick + (deadline - tick) * RISK_FRACTION
        at_risk = judge.now >= threshold
        judge.wake_at(threshold)
        detail = (
            f"not started, {int(RISK_FRACTION * 100)}% of the time to the deadline is gone"
            if at_risk
            else "not started yet"
        )
        judge.add(SlotStatus("start_by", slot, AT_RISK if at_risk else PENDING, deadline, detail, run_id))
        return
    if verdict == MISSED and started is not None:
        judge.add(
            SlotStatus("start_by", slot, MISSED, deadline, f"started late, {_iso(started)}", run_id, None, success)
        )
        return
    judge.add(
        SlotStatus(
            "start_by",
            slot,
            verdict,
            deadline,
            _passed_detail(verdict, "no run started" if not runs else "not started"),
            run_id,
        )
    )


def _deadline(judge: _Judge, deadline: Deadline, run: RunFact, facts: Facts) -> None:
    reference: datetime | None
    if deadline.reference == "logical_date":
        reference = run.logical_date
    elif deadline.reference == "queued_at":
        reference = run.queued_at or run.started_at
    elif deadline.reference == "fixed":
        reference = deadline.at
    else:  # average_runtime: like Airflow, no deadline until min_runs finished runs exist
        history = list(facts.finished_durations)[: deadline.max_runs]
        queued = run.queued_at or run.started_at
        if queued is None or len(history) < (deadline.min_runs or deadline.max_runs):
            return
        reference = queued + timedelta(seconds=sum(history) / len(history))
    if reference is None:
        return
    begin = run.queued_at or run.started_at or reference
    judge.run_limit(deadline.name, run, begin, reference + deadline.interval, facts.durations)


def _freshness(judge: _Judge, window: timedelta, facts: Facts, since: datetime) -> None:
    """Stale stretches between successes are missed slots (resolved by the next success); the current one is open."""
    ends = sorted(facts.success_ends)
    reference = ends[-1] if ends else facts.tracking_since or since
    for earlier, later in itertools.pairwise(ends):
        if later - earlier > window:
            stale_from = earlier + window
            judge.add(
                SlotStatus(
                    "fresh_within",
                    stale_from.isoformat(),
                    MISSED,
                    stale_from,
                    f"no success from {_iso(earlier)} until {_iso(later)}",
                    None,
                    None,
                    later,
                )
            )
    deadline = reference + window
    slot = deadline.isoformat()
    running = [r.started_at for r in facts.runs if not r.ended and r.started_at is not None]
    verdict = judge.passed(deadline)
    if verdict is None:
        at_risk, why = judge.risk(reference, deadline, min(running) if running else None, facts.durations)
        detail = why or (f"last success {_iso(reference)}" if ends else f"no success seen since {_iso(reference)}")
        judge.add(SlotStatus("fresh_within", slot, AT_RISK if at_risk else MET if ends else PENDING, deadline, detail))
        return
    last = f"last success {_iso(reference)}" if ends else f"no success since watching began, {_iso(reference)}"
    judge.add(SlotStatus("fresh_within", slot, verdict, deadline, _passed_detail(verdict, last)))


def _passed_detail(verdict: str, what: str) -> str:
    if verdict == MISSED:
        return f"deadline passed: {what}"
    if verdict == AT_RISK:
        return f"deadline passed: {what} as far as known; reading the backend's latest facts"
    return f"deadline passed, but the backend has not answered since: {what} as far as known"


def _latest_id(runs: list[RunFact]) -> str | None:
    return runs[-1].run_id if runs else None


def _p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def _secs(seconds: float) -> str:
    return (
        f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.1f}h"
    )


def _iso(instant: datetime) -> str:
    return instant.isoformat(timespec="seconds")
