"""Driving one backfill across backends, resumably, from the process that asked for it (``meta backfill``).

- Airflow runs the pipeline's own dates itself (``POST /api/v2/backfills``; its dry run says which dates it will run
  for the chosen ``reprocess``); Prefect and the local runner get one run per schedule slot, started with a
  deterministic key, at most ``max_active_runs`` at once (default 10, Airflow's backfill default).
- ``with_downstream``: every pipeline that waits for it by logical date (transitively) is started on its own backends
  for each date, once that date succeeded upstream (on any backend of the backfill), with a deterministic key too; a
  date that failed upstream leaves its downstream ``upstream_failed``.
- Every date is a ``backfill_dates`` row and the request a ``backfills`` row, keyed by the request: running the same
  command again (after Ctrl-C, a crash, a backend outage) continues where it stopped and starts nothing twice. The
  dependency engine leaves the runs recorded here to the backfill.

States come from the control plane's store, refreshed by polling every backend (``ControlPlane.refresh``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from meta.plugins.observers import BackendUnreachable
from meta.service.backfills import plan
from meta.service.store.orm import BackfillDateRow, BackfillRow, RunRow
from meta.service.store.queries import _insert
from meta.spec.errors import MetaError
from meta.spec.model import Pipeline

TERMINAL = frozenset({"success", "failed", "skipped", "upstream_failed"})
PENDING, STARTING, STARTED, SKIPPED, UPSTREAM_FAILED = "pending", "starting", "started", "skipped", "upstream_failed"
DEFAULT_PARALLEL = 10


@dataclass
class Item:
    """One pipeline on one backend for one logical date."""

    backend: str
    pipeline_id: str
    logical_date: datetime
    upstream_of: str | None = None  # set for a downstream date: the upstream(s) it waits for
    waits_for: tuple[str, ...] = ()
    state: str = PENDING
    run_id: str | None = None
    key: str | None = None
    native: bool = False  # Airflow runs it in its own backfill

    @property
    def label(self) -> str:
        return (
            f"{self.logical_date.astimezone(UTC).isoformat(timespec='minutes')}  {self.pipeline_id} on {self.backend}"
        )

    @property
    def done(self) -> bool:
        return self.state in TERMINAL


class Backfill:
    def __init__(
        self,
        plane: Any,  # meta.service.server.ControlPlane (not imported: the CLI builds it)
        pipeline_id: str,
        start: datetime,
        end: datetime,
        *,
        backends: Iterable[str] = (),
        reprocess: plan.Reprocess = "none",
        with_downstream: bool = False,
        requested_by: str = "meta backfill",
        echo: Callable[[str], None] = print,
    ):
        self.plane = plane
        self.pipelines: dict[str, Pipeline] = {p.id: p for p in plane.pipelines}
        if pipeline_id not in self.pipelines:
            known = ", ".join(sorted(self.pipelines)) or "none"
            raise MetaError(f"no pipeline {pipeline_id!r} in the workspace's specs (known: {known})")
        self.pipeline = self.pipelines[pipeline_id]
        self.start = plan.aware(start, self.pipeline.timezone)
        self.end = plan.aware(end, self.pipeline.timezone)
        placed = plane.workspace.backends_of(pipeline_id)
        self.backends = list(backends) or placed
        for backend in self.backends:
            if backend not in placed:
                raise MetaError(
                    f"pipeline {pipeline_id!r} is not placed on backend {backend!r} (placed on: "
                    f"{', '.join(placed) or 'none'})"
                )
        if not self.backends:
            raise MetaError(f"pipeline {pipeline_id!r} is placed on no backend of the workspace: nothing to backfill")
        self.reprocess = reprocess
        self.with_downstream = with_downstream
        self.requested_by = requested_by
        self.echo = echo
        self.id = plan.backfill_id(pipeline_id, self.backends, self.start, self.end, reprocess, with_downstream)
        self.observers = {w.connection.name: w.observer for w in plane.watches}
        self.kinds = {name: b.kind for name, b in plane.workspace.backends.items()}
        self.items: list[Item] = []

    # ------------------------------------------------------------------------------------------ planning

    def plan(self) -> list[Item]:
        """Every date this backfill covers, upstream and (with_downstream) downstream, with what it will do."""
        dates = plan.dates(self.pipeline, self.start, self.end)
        items: list[Item] = []
        for backend in self.backends:
            native = self.kinds.get(backend) == "airflow"
            runs_natively = set(self._airflow_dates(backend)) if native else None
            for date in dates:
                item = Item(backend, self.pipeline.id, date, native=native)
                if runs_natively is not None and date not in runs_natively:
                    item.state = SKIPPED  # Airflow's dry run: it already has a run this reprocess keeps
                items.append(item)
        if self.with_downstream:
            for downstream, ups in plan.downstreams(self.pipeline.id, self.pipelines):
                for backend in self.plane.workspace.backends_of(downstream.id):
                    for date in dates:
                        items.append(Item(backend, downstream.id, date, upstream_of=ups[0], waits_for=tuple(ups)))
        return items

    def _airflow_dates(self, backend: str) -> list[datetime]:
        observer = self.observers[backend]
        return list(observer.backfill_dates(self.pipeline.id, self.start, self.end, self.reprocess, self._defaults()))

    def _defaults(self) -> dict[str, Any]:
        return self.pipeline.default_params()

    # ------------------------------------------------------------------------------------------ running

    def run(self, poll_every: float = 1.0) -> list[Item]:
        """Start and follow every date until all have ended; returns them. Raises KeyboardInterrupt through (the
        rows are stored: running the same request again resumes)."""
        self.items = self.plan()
        resumed = self._resume()
        self.echo(
            f"backfill {self.id}: {self.pipeline.id} {self.start.isoformat()} .. {self.end.isoformat()} on "
            f"{', '.join(self.backends)} ({len(self.items)} dates{', resumed' if resumed else ''})"
        )
        self._refresh()
        self._decide_upstream()
        self._start_native()
        while True:
            changed = self._follow()
            for item in changed:
                self.echo(f"  {item.label}: {item.state}" + (f" ({item.run_id})" if item.run_id else ""))
            if all(i.done for i in self.items):
                self.echo(self.progress())
                self._finish()
                return self.items
            if self._start_due() or changed:
                self.echo(self.progress())
            time.sleep(poll_every)
            self._refresh()

    def progress(self) -> str:
        total = len(self.items)
        done = sum(i.done for i in self.items)
        width = 30
        filled = round(width * done / total) if total else width
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.state] = counts.get(item.state, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        return f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total} ended: {summary}"

    # -- store -----------------------------------------------------------------------------------------

    def _resume(self) -> bool:
        now = datetime.now(UTC)
        with self.plane.store.transaction() as session:
            existing = session.get(BackfillRow, self.id)
            if existing is None:
                session.add(
                    BackfillRow(
                        id=self.id,
                        pipeline_id=self.pipeline.id,
                        backend=",".join(self.backends),
                        date_from=self.start,
                        date_to=self.end,
                        reprocess=self.reprocess,
                        with_downstream=self.with_downstream,
                        state="running",
                        requested_by=self.requested_by[:100],
                        created_at=now,
                        updated_at=now,
                    )
                )
            rows = {
                (r.backend, r.pipeline_id, r.logical_date): r
                for r in session.scalars(select(BackfillDateRow).where(BackfillDateRow.backfill_id == self.id))
            }
        for item in self.items:
            row = rows.get((item.backend, item.pipeline_id, item.logical_date))
            # what this backfill already did wins over a dry run's "already has a run" (that run is ours)
            if row is not None and (item.state != SKIPPED or row.state in TERMINAL):
                item.state, item.run_id, item.key = row.state, row.run_id, row.trigger_key
            if self.reprocess == "failed" and item.state in ("failed", UPSTREAM_FAILED) and not item.native:
                # asked to re-run failures: this date gets a new run (the next attempt's key)
                item.state = PENDING
                item.key = plan.next_attempt(item.key) if item.key else None
        self._save(self.items)
        return existing is not None

    def _save(self, items: Iterable[Item]) -> None:
        values = [
            {
                "backfill_id": self.id,
                "backend": i.backend,
                "pipeline_id": i.pipeline_id,
                "logical_date": i.logical_date,
                "state": i.state,
                "run_id": i.run_id,
                "trigger_key": i.key,
                "upstream_of": i.upstream_of,
                "updated_at": datetime.now(UTC),
            }
            for i in items
        ]
        if not values:
            return
        with self.plane.store.transaction() as session:
            statement = _insert(session)(BackfillDateRow)
            statement = statement.on_conflict_do_update(
                index_elements=["backfill_id", "backend", "pipeline_id", "logical_date"],
                set_={
                    "state": statement.excluded.state,
                    "run_id": statement.excluded.run_id,
                    "trigger_key": statement.excluded.trigger_key,
                    "updated_at": statement.excluded.updated_at,
                },
            )
            session.execute(statement, values)

    def _finish(self) -> None:
        failed = any(i.state in ("failed", UPSTREAM_FAILED) for i in self.items)
        with self.plane.store.transaction() as session:
            row = session.get(BackfillRow, self.id)
            if row is not None:
                row.state, row.updated_at = ("failed" if failed else "done"), datetime.now(UTC)

    def _refresh(self) -> None:
        health = self.plane.refresh()
        for backend in {i.backend for i in self.items if not i.done}:
            if health.get(backend) not in (None, "ok"):
                self.echo(f"  backend {backend} is {health[backend]}; waiting (the backfill resumes when it answers)")

    # -- deciding and starting -------------------------------------------------------------------------

    def _runs_by_date(self, backend: str, pipeline_id: str) -> dict[datetime, list[RunRow]]:
        with self.plane.store.reading() as session:
            rows = list(
                session.scalars(
                    select(RunRow)
                    .where(RunRow.backend == backend, RunRow.pipeline_id == pipeline_id)
                    .where(RunRow.logical_date >= self.start, RunRow.logical_date <= self.end)
                )
            )
        out: dict[datetime, list[RunRow]] = {}
        for row in rows:
            if row.logical_date is not None:
                out.setdefault(row.logical_date, []).append(row)
        return out

    def _decide_upstream(self) -> None:
        """Prefect and local dates that already ran are skipped per ``reprocess`` (Airflow decides its own)."""
        decided = []
        cache: dict[tuple[str, str], dict[datetime, list[RunRow]]] = {}
        for item in self.items:
            if item.native or item.state != PENDING:
                continue
            runs = cache.setdefault(
                (item.backend, item.pipeline_id), self._runs_by_date(item.backend, item.pipeline_id)
            ).get(item.logical_date, [])
            latest = max(runs, key=lambda r: r.started_at or r.as_of, default=None)
            if latest is not None and not plan.to_run(item.logical_date, latest.state, self.reprocess):
                item.state, item.run_id = SKIPPED, latest.run_id
                decided.append(item)
        self._save(decided)

    def _start_native(self) -> None:
        for backend in sorted({i.backend for i in self.items if i.native and i.upstream_of is None}):
            if all(i.state == SKIPPED for i in self.items if i.native and i.backend == backend):
                continue
            found = self.observers[backend].start_backfill(
                self.pipeline.id, self.start, self.end, self.reprocess, self._defaults(), self._parallel(self.pipeline)
            )
            with self.plane.store.transaction() as session:
                row = session.get(BackfillRow, self.id)
                if row is not None:
                    row.native_id = str(found.get("id"))
            self.echo(f"  {backend}: Airflow backfill {found.get('id')} runs {self.pipeline.id}'s dates")

    def _parallel(self, pipeline: Pipeline) -> int:
        return pipeline.max_active_runs or DEFAULT_PARALLEL

    def _start_due(self) -> int:
        """Start what may start now: upstream dates within the parallel budget; downstream dates whose upstream
        date succeeded (and mark those whose upstream failed)."""
        started: list[Item] = []
        for (_backend, pipeline_id), group in self._groups().items():
            pipeline = self.pipelines[pipeline_id]
            budget = self._parallel(pipeline) - sum(1 for i in group if i.state not in TERMINAL | {PENDING, STARTING})
            for item in sorted(group, key=lambda i: i.logical_date):
                if item.state not in (PENDING, STARTING) or item.native or budget <= 0:
                    continue
                if item.upstream_of is not None and item.state == PENDING:
                    verdict = self._upstream_verdict(item)
                    if verdict == "wait":
                        continue
                    if verdict == UPSTREAM_FAILED:
                        item.state = UPSTREAM_FAILED
                        started.append(item)
                        continue
                try:
                    self._trigger(item)
                except BackendUnreachable as exc:  # kept "starting" with its key: asked again next round
                    self.echo(f"  {item.label}: {item.backend} did not answer ({exc}); retrying")
                    break
                budget -= 1
                started.append(item)
        self._save(started)
        for item in started:
            self.echo(f"  {item.label}: {item.state}" + (f" ({item.run_id})" if item.run_id else ""))
        return len(started)

    def _groups(self) -> dict[tuple[str, str], list[Item]]:
        groups: dict[tuple[str, str], list[Item]] = {}
        for item in self.items:
            groups.setdefault((item.backend, item.pipeline_id), []).append(item)
        return groups

    def _upstream_verdict(self, item: Item) -> str:
        """success (start it), upstream_failed, or wait: over every upstream of the backfill it waits for, the
        date succeeded on some backend of that upstream, or ended without success on all of them."""
        verdicts = []
        for upstream in item.waits_for:
            mine = [i for i in self.items if i.pipeline_id == upstream and i.logical_date == item.logical_date]
            if any(i.state == "success" or (i.state == SKIPPED and self._succeeded(i)) for i in mine):
                verdicts.append("success")
            elif mine and all(i.done for i in mine):
                verdicts.append(UPSTREAM_FAILED)
            else:
                verdicts.append("wait")
        if UPSTREAM_FAILED in verdicts:
            return UPSTREAM_FAILED
        return "wait" if "wait" in verdicts else "success"

    def _succeeded(self, item: Item) -> bool:
        """A skipped date counts as succeeded when its existing run did (or Airflow kept one that did)."""
        runs = self._runs_by_date(item.backend, item.pipeline_id).get(item.logical_date, [])
        return any(r.state == "success" for r in runs)

    def _trigger(self, item: Item) -> None:
        triggerer = self.plane.triggerers().get(item.backend)
        if triggerer is None:
            raise MetaError(f"backend {item.backend!r} cannot start runs: nothing can backfill {item.pipeline_id}")
        if item.key is None:
            item.key = plan.run_key(self.id, item.backend, item.pipeline_id, item.logical_date)
        # The key is stored before the backend is asked: killed in between, the resumed backfill asks again with
        # the same key, which the backend answers with the run it already started.
        item.state = STARTING
        self._save([item])
        params = self.pipelines[item.pipeline_id].default_params()
        result = triggerer.trigger(item.pipeline_id, item.key, params, item.logical_date)
        item.run_id, item.state = result.run_id, STARTED

    # -- following ---------------------------------------------------------------------------------------

    def _follow(self) -> list[Item]:
        """Read each started date's run state from the store; returns the items whose state changed."""
        changed: list[Item] = []
        for (backend, pipeline_id), group in self._groups().items():
            if all(i.done for i in group):
                continue
            runs = self._runs_by_date(backend, pipeline_id)
            for item in group:
                if item.done or (item.state in (PENDING, STARTING) and not item.native):
                    continue
                run = self._run_of(item, runs.get(item.logical_date, []))
                if run is None:
                    continue
                state = run.state if run.state in TERMINAL | {"queued", "running"} else item.state
                if (state, run.run_id) != (item.state, item.run_id):
                    item.state, item.run_id = state, run.run_id
                    changed.append(item)
        self._save(changed)
        return changed

    def _run_of(self, item: Item, runs: list[RunRow]) -> RunRow | None:
        if item.native:  # Airflow's backfill names its runs itself
            mine = [r for r in runs if (r.extra or {}).get("run_type") == "backfill"]
            return max(mine, key=lambda r: r.started_at or r.as_of, default=None)
        return next((r for r in runs if r.run_id == item.run_id), None)
