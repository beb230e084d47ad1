"""Where a migrated pipeline is live, for the engines that act on it (dependencies; docs/migrate.md).

While shadowing, a pipeline is live where the workspace places it (or outside meta: an Airflow DAG meta did not
build); once cut over, it is live on the target only, for the slots after the hand-off; during a switch, nowhere
(nothing new starts until the switch is recorded). The dependency engine asks ``routes`` which backends to drive a
downstream on, and ``still_routed`` inside each claim's transaction (an UPDATE of the migration row: a switch that
flips the phase waits for the claim, or the claim sees the new phase), so no upstream success starts a pipeline on
the side that just handed over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from meta.service.migrations import records
from meta.service.store.orm import MigrationRow


@dataclass(frozen=True)
class Route:
    only: tuple[str, ...] | None = None  # None: where the workspace places it; (): nowhere (mid-switch)
    never: tuple[str, ...] = ()  # the target while shadowing: it holds only the shadow copy there
    after_slot: datetime | None = None  # slots up to this one belong to the side that handed over

    def backends(self, placed: list[str]) -> list[str]:
        """The backends to drive the pipeline on, given where the workspace places it."""
        chosen = list(self.only) if self.only is not None else placed
        return [b for b in chosen if b not in self.never]


def route_of(row: MigrationRow) -> Route:
    """Where the migration's phase makes its pipeline live."""
    if row.phase == records.TARGET_LIVE:
        return Route(only=(row.target_backend,), after_slot=row.handoff_slot)
    if row.phase in (records.CUTTING_OVER, records.ROLLING_BACK):
        return Route(only=())
    return Route(never=(row.target_backend,))


def routes(session: Session) -> dict[str, Route]:
    """pipeline id -> its route, for every pipeline being migrated."""
    return {row.pipeline_id: route_of(row) for row in records.every(session)}


def still_routed(session: Session, pipeline_id: str, backend: str, now: datetime) -> bool:
    """In a claim's transaction: may ``pipeline_id`` be started on ``backend`` now? Locks the migration row."""
    row = session.get(MigrationRow, pipeline_id)
    if row is None:
        return True
    wanted = backend in route_of(row).backends([backend])
    if wanted:  # the UPDATE takes the row lock (PostgreSQL) / the write lock (SQLite) a switch's flip also needs
        session.execute(
            update(MigrationRow)
            .where(MigrationRow.pipeline_id == pipeline_id, MigrationRow.phase == row.phase)
            .values(updated_at=now)
        )
    return wanted
