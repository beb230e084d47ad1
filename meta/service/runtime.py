"""The observer runtime: one thread per backend polls (and one more keeps a push stream open, where the observer has
one), each batch stored with its cursor in one transaction. One slow or dead backend never delays another.

Failures back off exponentially with full jitter (so many control planes do not hammer a recovering backend in
step) and mark the backend degraded (first failures) then unreachable; the first success marks it ok again.
Because each cursor is committed with the rows it covers, a SIGKILL at any instant resumes from a cursor whose
events are stored: the overlap a poll re-reads is absorbed by the idempotent upserts.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from meta.plugins.observers import BackendConnection, BackendUnreachable, Batch, Observer, PushSource, public_url
from meta.service.store import queries
from meta.service.store.db import Store

log = logging.getLogger("meta.service")

UNREACHABLE_AFTER = 3  # consecutive failures before a degraded backend is called unreachable


@dataclass(frozen=True)
class Backoff:
    base: float = 1.0
    cap: float = 30.0

    def delay(self, failures: int, rng: Callable[[], float] = random.random) -> float:
        """Full jitter: uniform in [0.5, 1] x min(cap, base x 2^(failures-1)); never zero, never above cap."""
        ceiling = min(self.cap, self.base * 2 ** max(0, failures - 1))
        return ceiling * (0.5 + 0.5 * rng())


@dataclass
class BackendStats:
    """What /metrics and the health line show for one backend (read by other threads: plain values only)."""

    health: str = "unknown"
    failures: int = 0
    events: int = 0
    requests: int = 0
    bytes_received: int = 0
    cycles: int = 0
    lag_seconds: float | None = None
    last_success: datetime | None = None
    last_error: str | None = None


@dataclass
class BackendWatch:
    connection: BackendConnection
    observer: Observer
    stats: BackendStats = field(default_factory=BackendStats)
    threads: list[threading.Thread] = field(default_factory=list)


class ObserverRuntime:
    def __init__(
        self,
        store: Store,
        watches: list[BackendWatch],
        *,
        poll_interval: float,
        team_of: Callable[[str], str | None] = lambda _pipeline: None,
        backoff: Backoff | None = None,
        on_change: Callable[[str, queries.IngestResult], None] | None = None,
        live_stats: dict[str, dict[str, float]] | None = None,
    ):
        self.store = store
        self.watches = {w.connection.name: w for w in watches}
        self.poll_interval = poll_interval
        self.team_of = team_of
        self.backoff = backoff or Backoff(base=min(1.0, poll_interval), cap=max(30.0, poll_interval * 3))
        self.on_change = on_change
        self.live_stats = live_stats if live_stats is not None else {}
        self.stop_event = threading.Event()
        self.wake = {name: threading.Event() for name in self.watches}  # poll now (a push said something changed)

    # -- lifecycle ----------------------------------------------------------------------------------

    def register_backends(self) -> None:
        """The workspace's backends and teams into the store (they may have changed since the last start)."""
        with self.store.transaction() as session:
            for watch in self.watches.values():
                c = watch.connection
                queries.upsert_backend(session, c.name, c.kind, public_url(c.url))
            queries.set_teams(session, self.team_of)

    def start(self) -> None:
        self.register_backends()
        for name, watch in self.watches.items():
            poller = threading.Thread(target=self._poll_loop, args=(watch,), name=f"poll:{name}", daemon=True)
            watch.threads.append(poller)
            pushes = watch.connection.options.get("push", True) is not False
            if pushes and callable(getattr(watch.observer, "stream", None)):  # a PushSource too
                pusher = threading.Thread(target=self._push_loop, args=(watch,), name=f"push:{name}", daemon=True)
                watch.threads.append(pusher)
            for thread in watch.threads:
                thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for event in self.wake.values():
            event.set()
        deadline = time.monotonic() + timeout
        for watch in self.watches.values():
            for thread in watch.threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            try:
                watch.observer.close()
            except Exception:  # closing must not hide the other backends' shutdown
                log.exception("closing the observer of %s", watch.connection.name)

    def poll_once(self, timeout: float = 20.0) -> dict[str, str]:
        """One complete poll cycle of every backend, in parallel, without starting the loops (``meta status``
        without a server refreshes the store this way). Returns backend -> health afterwards."""

        def cycle(watch: BackendWatch) -> None:
            started, began_at = time.monotonic(), datetime.now(UTC)
            try:
                cursor = self._cursor(watch, "poll")
                while time.monotonic() - started < timeout:
                    batch = watch.observer.poll(cursor)
                    self._store(watch, batch, "poll")
                    cursor = batch.cursor or cursor
                    if not batch.more:
                        self._succeeded(watch, lag=time.monotonic() - started, complete_as_of=began_at)
                        return
            except Exception as exc:  # reported as the backend's health
                self._failed(watch, exc)

        threads = [threading.Thread(target=cycle, args=(w,), daemon=True) for w in self.watches.values()]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return {name: watch.stats.health for name, watch in self.watches.items()}

    def poll_now(self, backend: str) -> None:
        if backend in self.wake:
            self.wake[backend].set()

    # -- loops --------------------------------------------------------------------------------------

    def _cursor(self, watch: BackendWatch, stream: str) -> str | None:
        with self.store.reading() as session:
            return queries.get_cursor(session, watch.connection.name, stream)

    def _poll_loop(self, watch: BackendWatch) -> None:
        name = watch.connection.name
        cursor: str | None = None
        loaded = False  # the stored cursor is read inside the loop: a store that is down is retried, not fatal
        cycle_started, cycle_began_at = time.monotonic(), datetime.now(UTC)
        while not self.stop_event.is_set():
            try:
                if not loaded:
                    cursor, loaded = self._cursor(watch, "poll"), True
                batch = watch.observer.poll(cursor)
                self._store(watch, batch, "poll")
                cursor = batch.cursor or cursor
                if batch.more:
                    continue
                self._succeeded(watch, lag=time.monotonic() - cycle_started, complete_as_of=cycle_began_at)
                wait = self.poll_interval
            except Exception as exc:  # any failure of one backend is that backend's health
                wait = self._failed(watch, exc)
            self.wake[name].wait(wait)
            self.wake[name].clear()
            cycle_started, cycle_began_at = time.monotonic(), datetime.now(UTC)

    def _push_loop(self, watch: BackendWatch) -> None:
        name = watch.connection.name
        source: PushSource = watch.observer  # type: ignore[assignment]
        failures = 0

        def deliver(batch: Batch) -> None:
            nonlocal failures
            failures = 0
            self._store(watch, batch, "push")

        while not self.stop_event.is_set():
            try:
                source.stream(self._cursor(watch, "push"), deliver, self.stop_event)
                failures = 0
                # A stream should return only when asked to stop; one that ends early is reopened, not spun on.
                self.stop_event.wait(self.backoff.base)
            except Exception as exc:  # the stream reopens; polling keeps the history whole
                failures += 1
                log.warning("%s: push stream broke (%s); reopening", name, _one_line(exc))
                self.stop_event.wait(self.backoff.delay(failures))

    def _store(self, watch: BackendWatch, batch: Batch, stream: str) -> None:
        name = watch.connection.name
        cursor = (name, stream, batch.cursor) if batch.cursor is not None else None
        with self.store.transaction() as session:
            result = queries.ingest(session, batch.events, cursor=cursor, team_of=self.team_of)
        stats = watch.stats
        stats.events += len(batch.events)
        stats.requests += batch.requests
        stats.bytes_received += batch.bytes_received
        if batch.events and self.on_change is not None:
            try:
                self.on_change(name, result)
            except Exception:  # the facts are stored; a listener's failure is not the backend's
                log.exception("%s: a change listener failed", name)

    def _succeeded(self, watch: BackendWatch, lag: float, complete_as_of: datetime | None = None) -> None:
        stats = watch.stats
        was = stats.health
        stats.health, stats.failures, stats.lag_seconds = "ok", 0, lag
        self.live_stats[watch.connection.name] = {"lag_seconds": lag}
        stats.last_success = datetime.now(UTC)
        stats.cycles += 1
        with self.store.transaction() as session:
            queries.record_health(
                session,
                watch.connection.name,
                health="ok",
                lag_seconds=lag,
                events=stats.events,
                requests=stats.requests,
                complete_as_of=complete_as_of,
            )
        stats.events = stats.requests = 0  # flushed into the totals
        if was != "ok":
            log.info("%s: ok (%s)", watch.connection.name, "recovered" if was != "unknown" else "first poll done")

    def _failed(self, watch: BackendWatch, exc: BaseException) -> float:
        stats = watch.stats
        stats.failures += 1
        stats.health = "unreachable" if stats.failures >= UNREACHABLE_AFTER else "degraded"
        stats.last_error = _one_line(exc)
        if not isinstance(exc, BackendUnreachable):
            log.exception("%s: poll failed", watch.connection.name)
        else:
            log.warning("%s: %s (%s; retrying)", watch.connection.name, stats.health, stats.last_error)
        try:
            with self.store.transaction() as session:
                queries.record_health(session, watch.connection.name, health=stats.health, error=stats.last_error)
        except Exception:  # the store may be the thing that failed; the loop goes on
            log.exception("recording the health of %s", watch.connection.name)
        return self.backoff.delay(stats.failures)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
