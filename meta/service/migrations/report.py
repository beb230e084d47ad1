"""``meta migrate report P``: every live/shadow pair of a migration, its stored comparison, and whether the two sides
have agreed often enough in a row to switch (docs/migrate.md#report).

The report only reads the store: the comparisons are taken by the migration engine (``compare.compare_pair``) when
both runs of a pair have ended; a pair not compared yet is shown as pending with both runs' observed states.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from meta.plugins.observers import UnifiedState
from meta.service.migrations.compare import Comparison, find_run
from meta.service.store.orm import MigrationRow, MigrationRunRow
from meta.spec.errors import MetaError
from meta.spec.workspace import Migration

# Exit codes of ``meta migrate report`` (docs/migrate.md#report).
READY, DISAGREES, NOT_READY = 0, 1, 3
ENDED = frozenset(s.value for s in UnifiedState if s.is_terminal)


class MigrationNotFound(MetaError, LookupError):
    """No migration of that pipeline in the store."""


@dataclass(frozen=True)
class PairReport:
    logical_date: datetime
    live_backend: str
    live_run_id: str
    live_state: str | None
    shadow_backend: str
    shadow_run_id: str | None
    shadow_state: str | None
    comparison: Comparison | None
    unreadable: str | None = None  # a stored comparison this meta cannot read

    @property
    def compared(self) -> bool:
        return self.comparison is not None or self.unreadable is not None

    @property
    def agrees(self) -> bool:
        return self.comparison is not None and self.comparison.agrees

    @property
    def verdict(self) -> str:
        if self.unreadable is not None:
            return "unreadable"
        return "pending" if self.comparison is None else self.comparison.verdict

    @property
    def pending(self) -> str | None:
        """Why the pair is not compared yet; None once it is."""
        if self.compared:
            return None
        shadow = self.shadow_state or ("not observed" if self.shadow_run_id else "not started")
        text = f"pending: live run state {self.live_state or 'not observed'}, shadow run state {shadow}"
        if self.live_state in ENDED and self.shadow_state in ENDED:
            text += " (both ended: `meta serve` compares them; it retries while a warehouse is down)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "logical_date": self.logical_date.isoformat(),
            "live": {"backend": self.live_backend, "run_id": self.live_run_id, "state": self.live_state},
            "shadow": {"backend": self.shadow_backend, "run_id": self.shadow_run_id, "state": self.shadow_state},
            "verdict": self.verdict,
            "agrees": self.agrees,
            "pending": self.pending,
            "unreadable": self.unreadable,
            "comparison": None if self.comparison is None else self.comparison.to_json(),
        }


@dataclass(frozen=True)
class MigrationReport:
    pipeline_id: str
    source_backend: str
    target_backend: str
    shadow_id: str
    phase: str
    agree_after: int
    pairs: tuple[PairReport, ...]  # logical-date order

    @property
    def agreeing_in_a_row(self) -> int:
        """Consecutive agreeing pairs ending at the newest compared one (pending pairs neither count nor break)."""
        count = 0
        for pair in reversed([p for p in self.pairs if p.compared]):
            if not pair.agrees:
                break
            count += 1
        return count

    @property
    def ready(self) -> bool:
        return self.agreeing_in_a_row >= self.agree_after

    @property
    def exit_code(self) -> int:
        """0 ready; 1 not ready and some compared pair does not agree; 3 not ready yet (too few agreeing pairs,
        or pending ones). Ready wins over older disagreements: the streak came after them."""
        if self.ready:
            return READY
        return DISAGREES if any(p.compared and not p.agrees for p in self.pairs) else NOT_READY

    @property
    def summary(self) -> str:
        streak, needed = self.agreeing_in_a_row, self.agree_after
        if self.ready:
            return f"ready: the last {streak} compared runs agree (agree_after: {needed})"
        compared = sum(1 for p in self.pairs if p.compared)
        pending = len(self.pairs) - compared
        tail = f"; {pending} pending" if pending else ""
        return f"not ready: {streak} of {needed} consecutive agreeing runs ({compared} compared{tail})"

    def to_json(self) -> dict[str, Any]:
        return {
            "pipeline_id": self.pipeline_id,
            "source_backend": self.source_backend,
            "target_backend": self.target_backend,
            "shadow_id": self.shadow_id,
            "phase": self.phase,
            "agree_after": self.agree_after,
            "agreeing_in_a_row": self.agreeing_in_a_row,
            "ready": self.ready,
            "exit_code": self.exit_code,
            "summary": self.summary,
            "pairs": [p.to_json() for p in self.pairs],
        }

    def render_text(self) -> str:
        lines = [
            f"migration of {self.pipeline_id}: {self.source_backend} -> {self.target_backend} "
            f"(shadow {self.shadow_id}), phase {self.phase}",
            "",
        ]
        header = (
            "logical date",
            f"live run ({self.source_backend})",
            f"shadow run ({self.target_backend})",
            "tasks agree?",
            "loads",
            "tables",
            "verdict",
        )
        rows = [header, *(_row(p) for p in self.pairs)]
        if not self.pairs:
            lines.append("no live run shadowed yet")
        else:
            widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
            for row in rows:
                lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        details = []
        for pair in self.pairs:
            when = _date(pair.logical_date)
            if pair.unreadable:
                details.append(f"  {when}: stored comparison unreadable: {pair.unreadable}")
            elif pair.comparison is None:
                details.append(f"  {when}: {pair.pending}")
            else:
                details += [f"  {when}: {text}" for text in pair.comparison.differences]
                details += [f"  {when}: not checked: {text}" for text in pair.comparison.errors]
        if details:
            lines += ["", "details:", *details]
        lines += ["", self.summary]
        return "\n".join(lines)


def migration_report(session: Session, pipeline_id: str, settings: Migration | None = None) -> MigrationReport:
    """The report of ``pipeline_id``'s migration; ``settings`` is the workspace's ``migrations.<P>`` (its
    ``agree_after``; the default when the workspace no longer declares it). MigrationNotFound names what exists."""
    migration = session.get(MigrationRow, pipeline_id)
    if migration is None:
        known = [f"{m.pipeline_id} ({m.phase})" for m in session.scalars(sa.select(MigrationRow))]
        where = f"migrations in the store: {', '.join(sorted(known))}" if known else "the store has no migration"
        raise MigrationNotFound(
            f"no migration of pipeline {pipeline_id!r}: {where}; start one with "
            f"`meta migrate shadow {pipeline_id} --to BACKEND`"
        )
    rows = session.scalars(
        sa.select(MigrationRunRow)
        .where(MigrationRunRow.pipeline_id == pipeline_id)
        .order_by(MigrationRunRow.logical_date, MigrationRunRow.id)
    ).all()
    return MigrationReport(
        pipeline_id=migration.pipeline_id,
        source_backend=migration.source_backend,
        target_backend=migration.target_backend,
        shadow_id=migration.shadow_id,
        phase=migration.phase,
        agree_after=(settings or Migration()).agree_after,
        pairs=tuple(_pair(session, migration, row) for row in rows),
    )


def _pair(session: Session, migration: MigrationRow, row: MigrationRunRow) -> PairReport:
    live = find_run(session, row.live_backend, row.live_run_id, [row.pipeline_id])
    shadow = find_run(session, row.shadow_backend, row.shadow_run_id, [row.shadow_pipeline, migration.shadow_id])
    comparison, unreadable = None, None
    if row.comparison is not None:
        try:
            comparison = Comparison.from_json(row.comparison)
        except (KeyError, TypeError, ValueError) as exc:
            unreadable = f"{type(exc).__name__}: {exc}"
    return PairReport(
        logical_date=row.logical_date,
        live_backend=row.live_backend,
        live_run_id=row.live_run_id,
        live_state=live.state if live else None,
        shadow_backend=row.shadow_backend,
        shadow_run_id=row.shadow_run_id,
        shadow_state=shadow.state if shadow else None,
        comparison=comparison,
        unreadable=unreadable,
    )


def _date(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _row(pair: PairReport) -> tuple[str, ...]:
    c = pair.comparison
    live = f"{pair.live_state or 'not observed'} {pair.live_run_id}"
    shadow = f"{pair.shadow_state or ('not observed' if pair.shadow_run_id else 'not started')}"
    shadow += f" {pair.shadow_run_id}" if pair.shadow_run_id else ""
    if c is None:
        return (_date(pair.logical_date), live, shadow, "-", "-", "-", pair.verdict)
    return (
        _date(pair.logical_date),
        live,
        shadow,
        _count([t.agrees for t in c.tasks]),
        _count([x.agrees for x in c.loads]),
        _count([t.agrees for t in c.tables]),
        pair.verdict,
    )


def _count(agreeing: list[bool]) -> str:
    """``yes 3/3`` / ``no 2/3`` (agreeing of compared); ``-`` when there was nothing to compare."""
    if not agreeing:
        return "-"
    return f"{'yes' if all(agreeing) else 'no'} {sum(agreeing)}/{len(agreeing)}"
