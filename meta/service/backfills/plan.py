"""Backfills as pure functions: which logical dates a range holds, which of them to run, and the deterministic keys.

Dates are the pipeline's schedule ticks in ``[start, end]`` (both inclusive, like Airflow's backfill), the range read
in the pipeline's timezone when it has no offset. What to re-run follows Airflow's ``reprocess_behavior``: ``none``
runs only dates with no run yet, ``failed`` also re-runs dates whose latest run failed, ``completed`` re-runs every
date. Keys are deterministic in (backfill, backend, pipeline, date): a resumed or repeated backfill names the same
runs, and the backend starts each once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from meta.semantics.sla.slots import ticks
from meta.spec.errors import MetaError
from meta.spec.model import CronSchedule, IntervalSchedule, Pipeline

Reprocess = Literal["none", "failed", "completed"]
REPROCESS: tuple[Reprocess, ...] = ("none", "failed", "completed")
MAX_DATES = 10_000


def aware(value: datetime, timezone: str) -> datetime:
    """``value`` as UTC; a naive one is read in ``timezone`` (the pipeline's, as its schedule is)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(timezone))
    return value.astimezone(UTC)


def dates(pipeline: Pipeline, start: datetime, end: datetime) -> list[datetime]:
    """The schedule ticks of ``pipeline`` in ``[start, end]`` (UTC), oldest first."""
    if not isinstance(pipeline.schedule, CronSchedule | IntervalSchedule):
        what = f"a {pipeline.schedule.kind} schedule" if pipeline.schedule else "no schedule"
        hint = (
            "; it runs when its upstreams do: backfill them with --with-downstream"
            if pipeline.depends_on
            else "; a backfill runs one run per schedule slot (cron or interval)"
        )
        raise MetaError(f"pipeline {pipeline.id!r} has {what}, so it has no dates to backfill{hint}")
    if end < start:
        raise MetaError(f"--to {end.isoformat()} is before --from {start.isoformat()}")
    found = ticks(
        pipeline.schedule,
        pipeline.timezone,
        start - timedelta(microseconds=1),
        end,
        start_date=pipeline.start_date,
        limit=MAX_DATES + 1,
    )
    if len(found) > MAX_DATES:
        raise MetaError(f"the range holds more than {MAX_DATES} dates of {pipeline.id!r}; backfill it in parts")
    return found


def to_run(logical_date: datetime, latest_state: str | None, reprocess: Reprocess) -> bool:
    """Whether a date whose latest run is in ``latest_state`` (None: no run) is run by this backfill."""
    if latest_state is None or reprocess == "completed":
        return True
    return reprocess == "failed" and latest_state in ("failed", "upstream_failed")


def backfill_id(
    pipeline_id: str, backends: Sequence[str], start: datetime, end: datetime, reprocess: str, with_downstream: bool
) -> str:
    """The same request always names the same backfill (so running it again resumes it)."""
    text = "\x00".join([pipeline_id, ",".join(sorted(backends)), start.isoformat(), end.isoformat(), reprocess])
    return "bf-" + hashlib.sha256(f"{text}\x00{with_downstream}".encode()).hexdigest()[:20]


def run_key(backfill: str, backend: str, pipeline_id: str, logical_date: datetime, attempt: int = 0) -> str:
    """A run's id / idempotency key, within Airflow's run-id alphabet: ``meta-bf-20261203T010000Z-<hash>``, and
    ``-r<n>`` for the n-th re-run of a failed date (``--reprocess failed``)."""
    stamp = logical_date.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.sha256(f"{backfill}\x00{backend}\x00{pipeline_id}\x00{stamp}".encode()).hexdigest()[:16]
    return f"meta-bf-{stamp}-{digest}" + (f"-r{attempt}" if attempt else "")


def next_attempt(key: str) -> str:
    """The key of the next re-run after the run ``key`` named."""
    base, _, suffix = key.rpartition("-r")
    if base.startswith("meta-bf-") and suffix.isdigit():
        return f"{base}-r{int(suffix) + 1}"
    return f"{key}-r1"


def downstreams(pipeline_id: str, pipelines: Mapping[str, Pipeline]) -> list[tuple[Pipeline, list[str]]]:
    """The pipelines that wait for ``pipeline_id`` by logical date (``align: same``), transitively, in dependency
    order, each with the upstreams of the backfill it waits for."""
    out: list[tuple[Pipeline, list[str]]] = []
    reached = {pipeline_id}
    changed = True
    while changed:
        changed = False
        for pipeline in pipelines.values():
            if pipeline.id in reached or not pipeline.depends_on or pipeline.depends_on[0].align != "same":
                continue
            ups = [d.pipeline for d in pipeline.depends_on if d.pipeline in reached]
            if ups:
                reached.add(pipeline.id)
                out.append((pipeline, ups))
                changed = True
    return out
