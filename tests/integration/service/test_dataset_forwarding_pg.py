"""Two dataset forwarders (two ``meta serve`` replicas, each with its own connection pool) ticking at the same time on
one real PostgreSQL: every forward is sent exactly once (the conditional-UPDATE claims), none is lost."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from meta.service.datasets import DatasetForwarder, Forward
from meta.service.store.db import Store, open_store
from meta.service.store.orm import DatasetForwardRow
from tests.integration.service.pg_support import pg_store_fixture, pg_url  # noqa: F401 - pytest fixtures
from tests.unit.service.test_dataset_forwarding import PIPELINES, WORKSPACE, Target, succeed

pytestmark = pytest.mark.postgres


class SlowTarget(Target):
    """A send takes a little while (a real HTTP call does), so the replicas' ticks overlap."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def send(self, forward: Forward) -> str:
        time.sleep(0.01)
        with self.lock:
            return super().send(forward)


def test_two_replicas_on_one_postgresql_send_every_forward_exactly_once(
    pg_store: Store,
    pg_url: str,  # noqa: F811
) -> None:
    target = SlowTarget()
    start = datetime.now(UTC)
    stores = [pg_store, open_store(pg_url)]
    replicas = [DatasetForwarder(s, WORKSPACE, PIPELINES, senders={"af": target}) for s in stores]
    for replica in replicas:
        replica.tick(start)
    runs = [f"r{i:03d}" for i in range(60)]
    done = threading.Event()
    errors: list[BaseException] = []
    sent = [0, 0]

    def loop(i: int) -> None:
        try:
            while not done.is_set():
                sent[i] += replicas[i].tick(datetime.now(UTC))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    try:
        for run in runs:  # the observers writing while both replicas tick
            succeed(pg_store, "pf", run, datetime.now(UTC) + timedelta(seconds=1))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(sent) < len(runs):
            time.sleep(0.1)
    finally:
        done.set()
        for thread in threads:
            thread.join(30)
        stores[1].close()
    assert errors == []
    keys = target.keys()
    assert len(keys) == len(set(keys)) == len(runs), "each forward once"
    assert sum(sent) == len(runs)
    assert sent[0] > 0 and sent[1] > 0, f"both replicas took part: {sent}"
    with pg_store.reading() as session:
        states = session.execute(select(DatasetForwardRow.source_run, DatasetForwardRow.status)).all()
    assert sorted(states) == [(run, "sent") for run in runs]
