"""A leader lease among replicas of ``meta serve`` on one database.

Every replica observes its backends and serves the API (both are idempotent and can run anywhere); the work that
acts on the world (starting downstream runs, forwarding datasets, judging SLAs and sending their alerts) runs on
the one replica holding the lease, renewed every tick and taken over ``ttl`` after its holder stopped renewing.

The lease is taken with one conditional UPDATE (holder is me, or the lease has expired), which both SQLite and
PostgreSQL execute atomically, and an INSERT for the very first holder that loses to a concurrent one on the primary
key. Leading is an optimisation, not the guarantee: two replicas that both believe they lead (a paused process
waking after its lease expired) still start each run once, because every action is claimed with a conditional
UPDATE of its own row and every trigger carries a deterministic key the backend deduplicates on.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from meta.service.store.db import Store
from meta.service.store.orm import LeaseRow

log = logging.getLogger("meta.service")

LEADER = "leader"


def replica_name() -> str:
    """host:pid:random, unique per process (stored as the lease holder and as claims' ``claimed_by``)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Lease:
    def __init__(
        self,
        store: Store,
        holder: str | None = None,
        *,
        name: str = LEADER,
        ttl: timedelta = timedelta(seconds=10),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.store = store
        self.holder = holder or replica_name()
        self.name = name
        self.ttl = ttl
        self.clock = clock
        self.held = False

    def acquire(self) -> bool:
        """Take or renew the lease; True while this replica holds it."""
        now = self.clock()
        try:
            with self.store.transaction() as session:
                renewed = session.execute(
                    update(LeaseRow)
                    .where(LeaseRow.name == self.name)
                    .where((LeaseRow.holder == self.holder) | (LeaseRow.expires_at < now))
                    .values(holder=self.holder, expires_at=now + self.ttl)
                    .returning(LeaseRow.name)
                    .execution_options(synchronize_session=False)
                ).first()
                taken = renewed is not None
                if not taken and session.get(LeaseRow, self.name) is None:
                    session.add(
                        LeaseRow(name=self.name, holder=self.holder, expires_at=now + self.ttl, acquired_at=now)
                    )
                    session.flush()
                    taken = True
        except IntegrityError:  # another replica inserted the first row at the same instant: it leads
            taken = False
        was, self.held = self.held, taken
        if self.held and not was:
            with self.store.transaction() as session:
                session.execute(update(LeaseRow).where(LeaseRow.name == self.name).values(acquired_at=now))
            log.info("this replica (%s) now leads: it drives dependencies, dataset forwards and SLAs", self.holder)
        elif was and not self.held:
            log.warning("this replica (%s) lost the lead to %s", self.holder, self.current())
        return self.held

    def current(self) -> str | None:
        with self.store.reading() as session:
            row = session.scalar(select(LeaseRow).where(LeaseRow.name == self.name))
            return row.holder if row is not None and row.expires_at >= self.clock() else None

    def release(self) -> None:
        """Give the lease up at once (a clean stop), so another replica takes over without waiting for ``ttl``."""
        if not self.held:
            return
        with self.store.transaction() as session:
            session.execute(
                update(LeaseRow)
                .where(LeaseRow.name == self.name, LeaseRow.holder == self.holder)
                .values(expires_at=self.clock() - timedelta(seconds=1))
            )
        self.held = False
