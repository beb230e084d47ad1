"""The dataset forwarder: finds dataset updates in the store and delivers each to every other backend that waits for
it, exactly once (docs/dataset-forwarding.md).

**Updates.** A dataset update is a successful task attempt (``task_attempts.state = 'success'``) of a meta-built
pipeline's task that lists the dataset in ``outputs``, on any backend the control plane observes. Its targets are the
backends, other than the one it happened on (which already handles it natively), where a placed meta-built pipeline
has a dataset schedule including it and that can take an event: Airflow and Prefect (the local runner has no
dataset scheduler). Each (update, target) becomes one ``dataset_forwards`` row whose key is a hash of the attempt's
identity (backend, pipeline, run, task, map index, try), the dataset and the target: re-reading an attempt never
makes a second row.

**What is new.** ``tick`` first reads the store's change counter (one row): unchanged, nothing happened and the tick
costs that one read plus the deliveries due. Otherwise it reads the successful attempts of producer tasks whose
``change_seq`` is past its watermark. The watermark survives restarts in ``cursors`` (backend ``*``, stream
``dataset_forwards``), moved in the transaction that writes the rows it covers; a first start begins at the current
counter. Only updates that ended after the target began waiting for the dataset are forwarded:
``dependency_tracking`` holds that instant per (target backend, ``datasets:<uri>``), set once, so a first start (or
an observer's first poll of a month of history) replays nothing, while updates that happened during a restart are
still forwarded.

**Exactly once.** A row is ``due``; a conditional UPDATE (``... WHERE status = 'due' AND attempts = n``) claims it
(``sending``), so of two replicas on one database only one ever sends it; then it is sent and marked ``sent`` with
the target's event id (``remote_id``). A failed send is ``failed`` with the error, retried with exponential backoff
(a row is given up after ``give_up_after``, left ``failed``). A row whose earlier send has no known outcome (found
``sending`` after a restart, or failed after being sent) is first looked up on the target (``Sender.find``: the
Airflow asset's events by the key in their ``extra``; the Prefect event by its deterministic id) and only sent if
absent. A ``sending`` row this process did not claim is left alone for ``stale_after`` seconds, since another
replica may still be sending it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from meta.service.datasets.base import Forward, Sender
from meta.service.store.db import Store
from meta.service.store.orm import AttemptRow, DatasetForwardRow, DependencyTrackingRow
from meta.service.store.queries import _insert, current_change_seq, get_cursor, set_cursor
from meta.spec.model import DatasetSchedule, Pipeline
from meta.spec.workspace import Workspace

if TYPE_CHECKING:
    from meta.service.runtime import BackendWatch

log = logging.getLogger("meta.service.datasets")

DUE, SENDING, SENT, FAILED = "due", "sending", "sent", "failed"
SUCCESS = "success"  # UnifiedState.SUCCESS as stored
TRACKING_PREFIX = "datasets:"
CURSOR_BACKEND, CURSOR_STREAM = "*", "dataset_forwards"
KEY_LIMIT = 250  # the width of dependency_tracking.pipeline_id
SAVE_EVERY = 30.0  # seconds: the watermark is also saved this often when nothing was forwarded
Checkpoint = Callable[[str, Forward], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


def forward_key(
    backend: str, pipeline: str, run: str, task: str, map_index: int, try_number: int, dataset: str, target: str
) -> str:
    """The row's key: one per (attempt, dataset, target), whatever reads the attempt, however often."""
    identity = json.dumps([backend, pipeline, run, task, map_index, try_number, dataset, target])
    return "dsf-" + hashlib.sha256(identity.encode()).hexdigest()[:48]


def tracking_subject(uri: str) -> str:
    """``dependency_tracking.pipeline_id`` of a dataset (hashed when the URI is too long for the column)."""
    subject = TRACKING_PREFIX + uri
    if len(subject) <= KEY_LIMIT:
        return subject
    return TRACKING_PREFIX + "sha256:" + hashlib.sha256(uri.encode()).hexdigest()


@dataclass
class _Pending:
    forward: Forward
    status: str
    attempts: int
    next_at: datetime


def senders_of(watches: Iterable[BackendWatch], backends: Iterable[str]) -> dict[str, Sender]:
    """A sender for each of ``backends`` (names) that has a watch whose observer can send: Airflow (the observer's
    authenticated trigger client) and Prefect (a client of its own with the observer's credentials)."""
    wanted = set(backends)
    out: dict[str, Sender] = {}
    for watch in watches:
        connection, observer = watch.connection, watch.observer
        if connection.name not in wanted:
            continue
        if connection.kind == "airflow" and getattr(observer, "trigger_http", None) is not None:
            from meta.service.datasets.airflow import AirflowAssetSender

            out[connection.name] = AirflowAssetSender(connection.name, observer.trigger_http)  # type: ignore[attr-defined]
        elif connection.kind == "prefect" and callable(getattr(observer, "_client", None)):
            from meta.service.datasets.prefect import PrefectEventSender

            # its own client: the observer's is held under a lock for a whole poll
            out[connection.name] = PrefectEventSender(connection.name, observer._client())  # type: ignore[attr-defined]
    return out


class DatasetForwarder:
    """Forwards dataset updates across backends; call ``tick`` from one loop (see the module docstring).

    ``watches``: the control plane's ``BackendWatch`` list (senders are built from their observers); ``senders``:
    backend name -> a sender, replacing the one built for that backend (tests). ``checkpoint(stage, forward)`` is
    called after a claim (``"claimed"``) and after the target accepted a send (``"sent"``): a seam for crash tests.
    """

    def __init__(
        self,
        store: Store,
        workspace: Workspace,
        pipelines: Sequence[Pipeline],
        watches: Iterable[BackendWatch] = (),
        *,
        senders: Mapping[str, Sender] | None = None,
        clock: Callable[[], datetime] = utc_now,
        stale_after: float = 120.0,
        reload_every: float = 30.0,
        backoff: float = 5.0,
        backoff_cap: float = 600.0,
        give_up_after: timedelta = timedelta(days=7),
        checkpoint: Checkpoint | None = None,
    ):
        self.store = store
        self.workspace = workspace
        self.clock = clock
        self.stale_after = timedelta(seconds=stale_after)
        self.reload_every = reload_every
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.give_up_after = give_up_after
        self.checkpoint = checkpoint
        kinds = {name: backend.kind for name, backend in workspace.backends.items()}
        # (pipeline, task) -> the datasets it writes; dataset -> backends whose placed pipelines wait for it
        self.producers: dict[tuple[str, str], tuple[str, ...]] = {
            (p.id, t.id): tuple(t.outputs) for p in pipelines for t in p.tasks if t.outputs
        }
        consumers: dict[str, set[str]] = {}
        for pipeline in pipelines:
            if isinstance(pipeline.schedule, DatasetSchedule):
                for backend in workspace.backends_of(pipeline.id):
                    for uri in pipeline.schedule.datasets:
                        consumers.setdefault(uri, set()).add(backend)
        wanted = {b for backends in consumers.values() for b in backends if kinds.get(b) in ("airflow", "prefect")}
        watches = list(watches)
        self.senders: dict[str, Sender] = senders_of(watches, wanted - set(senders or {}))
        self.senders.update(senders or {})
        self.targets: dict[str, tuple[str, ...]] = {}
        for uri, backends in sorted(consumers.items()):
            able = tuple(sorted(b for b in backends if b in self.senders))
            if able:
                self.targets[uri] = able
            for backend in sorted(backends - set(able)):
                log.info(
                    "dataset %s: pipelines on backend %s (%s) wait for it, but updates are not forwarded there "
                    "(only Airflow and Prefect backends the control plane watches take forwarded updates)",
                    uri,
                    backend,
                    kinds.get(backend, "unknown"),
                )
        self.producer_pipelines = sorted(
            {pid for (pid, _task), uris in self.producers.items() if any(u in self.targets for u in uris)}
        )
        self.last_seq: int | None = None
        self.since: dict[tuple[str, str], datetime] = {}
        self.pending: dict[str, _Pending] = {}
        self.reloaded_at = 0.0
        self.saved_at = 0.0

    @classmethod
    def of(cls, plane: Any, **options: Any) -> DatasetForwarder:
        """The forwarder of a control plane (``meta.service.server.ControlPlane``, which builds it: not imported
        here, or the two would import each other): its store, workspace, loaded pipelines and observers."""
        return cls(plane.store, plane.workspace, plane.pipelines, plane.watches, **options)

    def close(self) -> None:
        for sender in self.senders.values():
            try:
                sender.close()
            except Exception:
                log.exception("closing the dataset sender %r", sender)

    # ------------------------------------------------------------------------------------------ one tick

    def tick(self, now: datetime | None = None) -> int:
        """Find new dataset updates and deliver what is due; returns the number of forwards sent in this tick.
        When no target waits for any dataset, a tick does nothing at all."""
        if not self.targets:
            return 0
        now = now or self.clock()
        if self.last_seq is None:
            self._start(now)
        elif time.monotonic() - self.reloaded_at >= self.reload_every:
            self._reload(now)
        self._scan(now)
        return self._deliver(now)

    def _start(self, now: datetime) -> None:
        pairs = sorted({(target, uri) for uri, targets in self.targets.items() for target in targets})
        with self.store.transaction() as session:
            subjects = {(target, tracking_subject(uri)): (target, uri) for target, uri in pairs}
            statement = _insert(session)(DependencyTrackingRow).on_conflict_do_nothing(
                index_elements=["backend", "pipeline_id"]
            )
            session.execute(statement, [{"backend": b, "pipeline_id": s, "since": now} for b, s in sorted(subjects)])
            rows = session.execute(
                select(DependencyTrackingRow.backend, DependencyTrackingRow.pipeline_id, DependencyTrackingRow.since)
                .where(DependencyTrackingRow.backend.in_(sorted({t for t, _ in pairs})))
                .where(DependencyTrackingRow.pipeline_id.startswith(TRACKING_PREFIX))
            )
            self.since = {subjects[(b, s)]: since for b, s, since in rows if (b, s) in subjects}
            saved = get_cursor(session, CURSOR_BACKEND, CURSOR_STREAM)
            if saved is None:
                # a first start: history is not replayed (and ``since`` filters what observers import later)
                seq = current_change_seq(session)
                set_cursor(session, CURSOR_BACKEND, CURSOR_STREAM, str(seq))
            else:
                seq = int(saved)
        self.last_seq = seq
        self.saved_at = time.monotonic()
        self._reload(now)

    def _reload(self, now: datetime) -> None:
        """The unfinished rows from the store (another replica may have made or finished some)."""
        with self.store.reading() as session:
            rows = list(
                session.scalars(select(DatasetForwardRow).where(DatasetForwardRow.status.in_([DUE, SENDING, FAILED])))
            )
        found = {}
        for row in rows:
            if row.status == FAILED and row.created_at < now - self.give_up_after:
                continue
            held = self.pending.get(row.key)
            if held is not None and (held.status, held.attempts) == (row.status, row.attempts):
                found[row.key] = held
                continue
            # a row left ``sending`` by someone else may still be in flight there: wait before looking it up
            wait = self.stale_after if row.status == SENDING else timedelta(0)
            found[row.key] = _Pending(_forward_of(row), row.status, row.attempts, now + wait)
        self.pending = found
        self.reloaded_at = time.monotonic()

    def _scan(self, now: datetime) -> None:
        assert self.last_seq is not None
        with self.store.reading() as session:
            counter = current_change_seq(session)
        if counter <= self.last_seq:
            return
        with self.store.transaction() as session:
            made = self._record(session, self.last_seq, counter, now)
            if made or time.monotonic() - self.saved_at >= SAVE_EVERY:
                set_cursor(session, CURSOR_BACKEND, CURSOR_STREAM, str(counter))
                self.saved_at = time.monotonic()
        self.last_seq = counter
        for forward, status, attempts in made:
            # a row left ``sending`` by someone else may still be in flight there: wait before looking it up
            wait = self.stale_after if status == SENDING else timedelta(0)
            self.pending[forward.key] = _Pending(forward, status, attempts, now + wait)

    def _record(self, session: Session, after: int, upto: int, now: datetime) -> list[tuple[Forward, str, int]]:
        """Rows for the producer attempts that succeeded in (after, upto]; returns each unfinished one found, with
        its (status, attempts)."""
        if not self.producer_pipelines:
            return []
        attempts = session.execute(
            select(
                AttemptRow.backend,
                AttemptRow.pipeline_id,
                AttemptRow.run_id,
                AttemptRow.task_id,
                AttemptRow.map_index,
                AttemptRow.try_number,
                AttemptRow.ended_at,
                AttemptRow.as_of,
            )
            .where(AttemptRow.change_seq > after, AttemptRow.change_seq <= upto)
            .where(AttemptRow.state == SUCCESS)
            .where(AttemptRow.pipeline_id.in_(self.producer_pipelines))
        )
        wanted: dict[str, Forward] = {}
        for backend, pipeline, run, task, map_index, try_number, ended_at, as_of in attempts:
            at = ended_at or as_of
            for uri in self.producers.get((pipeline, task), ()):
                for target in self.targets.get(uri, ()):
                    since = self.since.get((target, uri))
                    if target == backend or since is None or at < since:
                        continue
                    key = forward_key(backend, pipeline, run, task, map_index, try_number, uri, target)
                    wanted[key] = Forward(key, uri, backend, pipeline, run, task, target, now)
        if not wanted:
            return []
        known = {
            row.key: row
            for row in session.scalars(select(DatasetForwardRow).where(DatasetForwardRow.key.in_(sorted(wanted))))
        }
        new = [f for k, f in sorted(wanted.items()) if k not in known]
        if new:
            statement = _insert(session)(DatasetForwardRow).on_conflict_do_nothing(index_elements=["key"])
            session.execute(statement, [_values(f) for f in new])
            for f in new:
                log.info(
                    "dataset %s updated on %s (%s.%s, run %s): forwarding to %s",
                    f.dataset,
                    f.source_backend,
                    f.source_pipeline,
                    f.source_task,
                    f.source_run,
                    f.target_backend,
                )
        found = [(f, DUE, 0) for f in new]
        # rows another replica made from the same attempts: pending here too (the claims keep them single)
        for key, row in sorted(known.items()):
            if row.status != SENT and key not in self.pending:
                found.append((_forward_of(row), row.status, row.attempts))
        return found

    # ------------------------------------------------------------------------------------------ delivery

    def _deliver(self, now: datetime) -> int:
        done = 0
        due = sorted((p for p in self.pending.values() if p.next_at <= now), key=lambda p: p.forward.created_at)
        for pending in due:
            done += self._attempt(pending, now)
        return done

    def _attempt(self, pending: _Pending, now: datetime) -> int:
        forward = pending.forward
        if pending.status == FAILED and forward.created_at < now - self.give_up_after:
            log.warning(
                "dataset forward %s to %s given up after %s", forward.key, forward.target_backend, self.give_up_after
            )
            del self.pending[forward.key]
            return 0
        sender = self.senders.get(forward.target_backend)
        if sender is None:  # the workspace no longer sends there: leave the row for a configuration that does
            del self.pending[forward.key]
            return 0
        claimed = pending.attempts + 1
        with self.store.transaction() as session:
            won = _move(
                session, forward.key, (pending.status, pending.attempts), {"status": SENDING, "attempts": claimed}
            )
        if not won:  # another replica claimed or finished it
            del self.pending[forward.key]
            return 0
        pending.status, pending.attempts = SENDING, claimed
        # the outcome of an earlier send is unknown (killed while sending, or the answer was lost): look first
        check_first = claimed > 1
        self._checkpoint("claimed", forward)
        try:
            remote = sender.find(forward) if check_first else None
            if remote is None:
                remote = sender.send(forward)
                self._checkpoint("sent", forward)
            else:
                log.info("dataset forward %s was already on %s (event %s)", forward.key, forward.target_backend, remote)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            delay = min(self.backoff_cap, self.backoff * 2 ** (claimed - 1))
            log.warning(
                "dataset %s not forwarded to %s (try %d, next in %.0fs): %s",
                forward.dataset,
                forward.target_backend,
                claimed,
                delay,
                error,
            )
            with self.store.transaction() as session:
                _move(session, forward.key, (SENDING, claimed), {"status": FAILED, "error": error})
            pending.status, pending.next_at = FAILED, now + timedelta(seconds=delay)
            return 0
        try:
            with self.store.transaction() as session:
                _move(
                    session,
                    forward.key,
                    (SENDING, claimed),
                    {"status": SENT, "sent_at": self.clock(), "remote_id": remote[:100], "error": None},
                )
        except BaseException:
            pending.next_at = now  # sent but not recorded: the next try looks it up on the target first
            raise
        del self.pending[forward.key]
        log.info(
            "dataset %s forwarded from %s to %s (event %s)",
            forward.dataset,
            forward.source_backend,
            forward.target_backend,
            remote,
        )
        return 1

    def _checkpoint(self, stage: str, forward: Forward) -> None:
        if self.checkpoint is not None:
            self.checkpoint(stage, forward)


def _move(session: Session, key: str, expected: tuple[str, int], values: dict[str, Any]) -> bool:
    """The conditional UPDATE behind every claim: only from the (status, attempts) the caller saw."""
    status, attempts = expected
    result = session.execute(
        update(DatasetForwardRow)
        .where(DatasetForwardRow.key == key)
        .where(DatasetForwardRow.status == status)
        .where(DatasetForwardRow.attempts == attempts)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _values(forward: Forward) -> dict[str, Any]:
    return {
        "key": forward.key,
        "dataset": forward.dataset,
        "source_backend": forward.source_backend,
        "source_pipeline": forward.source_pipeline,
        "source_run": forward.source_run,
        "source_task": forward.source_task,
        "target_backend": forward.target_backend,
        "status": DUE,
        "attempts": 0,
        "created_at": forward.created_at,
    }


def _forward_of(row: DatasetForwardRow) -> Forward:
    return Forward(
        row.key,
        row.dataset,
        row.source_backend,
        row.source_pipeline,
        row.source_run,
        row.source_task,
        row.target_backend,
        row.created_at,
    )
