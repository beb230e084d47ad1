"""Which schedule slots each side of a switch owns (``meta migrate cutover``/``rollback``).

The side handing over stops creating runs (paused); the newest logical date among its runs is the **hand-off
slot**: it and every slot before belong to that side, a run of it still in flight finishes there. The side taking
over owes the slots after it, from ``owed_from``: with ``catchup`` every slot after the hand-off; without, as
Airflow does when a DAG is unpaused, only the newest slot at the switch (if the other side had not created it yet)
and the later ones.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from meta.semantics.sla.slots import ticks
from meta.spec.model import Pipeline

LOOKBACK = timedelta(days=400)  # how far back "the newest slot at the switch" is looked for without a hand-off


def owed_from(pipeline: Pipeline, handoff: datetime | None, switched_at: datetime) -> datetime:
    """The first slot the side taking over owes (an instant: slots at or after it, after the hand-off)."""
    if pipeline.catchup and handoff is not None:
        return handoff + timedelta(microseconds=1)
    newest = ticks(
        pipeline.schedule,
        pipeline.timezone,
        handoff or (switched_at - LOOKBACK),
        switched_at,
        start_date=pipeline.start_date,
        limit=1,
    )
    return newest[-1] if newest else switched_at


def owed(pipeline: Pipeline, after: datetime | None, first: datetime, now: datetime) -> list[datetime]:
    """The slots owed by ``now``: at or after ``first``, after ``after`` (the newest already handled), oldest first."""
    begin = first - timedelta(microseconds=1)
    if after is not None:
        begin = max(begin, after)
    return ticks(pipeline.schedule, pipeline.timezone, begin, now, start_date=pipeline.start_date, limit=10_000)
