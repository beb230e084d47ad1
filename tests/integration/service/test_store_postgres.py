"""The store on SQLite and on the real PostgreSQL: the migrated schema is the ORM's, ingest converges whatever the
order and repetition of batches, a cursor commits only with its rows, and the API behaves the same on both."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from meta.plugins.observers import RunEvent, UnifiedState
from meta.service.store import queries
from meta.service.store.db import Store, open_store
from meta.service.store.orm import AttemptRow, Base, CursorRow, LineageEventRow, RunRow, TriggerRow
from tests.integration.service.pg_support import (
    pg_store_fixture,  # noqa: F401 - provides the pg_store fixture
    pg_url,  # noqa: F401 - the session database
)
from tests.unit.service.api_support import T0, attempt_event, build_api, run_event, seed_events


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgres":
        yield request.getfixturevalue("pg_store")
        return
    opened = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    yield opened
    opened.close()


def test_the_migrated_schema_is_the_orms(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(context, Base.metadata) == []


RUN_COLUMNS = ("backend", "pipeline_id", "run_id", "state", "raw_state", "logical_date", "queued_at", "started_at",
               "ended_at", "as_of", "source", "external", "extra")  # fmt: skip
ATTEMPT_COLUMNS = ("backend", "pipeline_id", "run_id", "task_id", "map_index", "try_number", "state", "raw_state",
                   "started_at", "ended_at", "as_of", "source", "extra")  # fmt: skip


def snapshot(store: Store, backend: str | None = None) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """Every run and attempt row as a tuple of its facts (ids and change numbers left out), backend renamed to 'b'."""

    def facts(row: Any, columns: tuple[str, ...]) -> tuple[Any, ...]:
        values = [getattr(row, c) for c in columns]
        values[0] = "b"
        return tuple(repr(v) if isinstance(v, dict) else v for v in values)

    with store.reading() as session:
        runs = select(RunRow) if backend is None else select(RunRow).where(RunRow.backend == backend)
        attempts = select(AttemptRow) if backend is None else select(AttemptRow).where(AttemptRow.backend == backend)
        return (
            {facts(r, RUN_COLUMNS) for r in session.scalars(runs)},
            {facts(a, ATTEMPT_COLUMNS) for a in session.scalars(attempts)},
        )


def history(backend: str) -> list[list[RunEvent]]:
    """One run's life in four batches: queued, running with a failed first try, a retry, success."""
    at = [T0 + timedelta(minutes=m) for m in range(4)]
    return [
        [run_event(backend, "p", "r", UnifiedState.QUEUED, at[0])],
        [
            run_event(backend, "p", "r", UnifiedState.RUNNING, at[1], started=at[1]),
            attempt_event(backend, "p", "r", "t", 1, UnifiedState.RUNNING, at[1]),
        ],
        [
            attempt_event(backend, "p", "r", "t", 1, UnifiedState.UP_FOR_RETRY, at[2]),
            attempt_event(backend, "p", "r", "t", 2, UnifiedState.RUNNING, at[2]),
        ],
        [
            attempt_event(backend, "p", "r", "t", 2, UnifiedState.SUCCESS, at[3]),
            run_event(backend, "p", "r", UnifiedState.SUCCESS, at[3], started=at[1]),
        ],
    ]


def test_ingest_twice_is_ingest_once(store: Store) -> None:
    with store.transaction() as session:
        queries.ingest(session, seed_events())
    once = snapshot(store)
    with store.transaction() as session:
        queries.ingest(session, seed_events())
        queries.ingest(session, seed_events()[::-1])
    assert snapshot(store) == once
    with store.reading() as session:
        assert len(list(session.scalars(select(RunRow)))) == 5


def test_batches_in_any_order_converge(store: Store) -> None:
    orders = list(itertools.permutations(range(4)))
    random.Random(10).shuffle(orders)
    for number, order in enumerate([(0, 1, 2, 3), *orders[:7]]):
        batches = history(f"b{number}")
        with store.transaction() as session:
            for index in order:
                queries.ingest(session, batches[index])
    expected = snapshot(store, "b0")
    assert {(r[3], r[7] is not None) for r in expected[0]} == {("success", True)}
    assert {(a[5], a[6]) for a in expected[1]} == {(1, "up_for_retry"), (2, "success")}
    for number in range(1, 8):
        assert snapshot(store, f"b{number}") == expected, f"order {number} diverged"


def test_a_cursor_commits_only_with_its_rows(store: Store) -> None:
    batch = history("af")[0]
    with pytest.raises(RuntimeError, match="crash"), store.transaction() as session:
        queries.ingest(session, batch, cursor=("af", "poll", "page-1"))
        session.flush()
        raise RuntimeError("crash between the rows and the commit")
    with store.reading() as session:
        assert queries.get_cursor(session, "af", "poll") is None
        assert list(session.scalars(select(RunRow))) == []
        assert list(session.scalars(select(CursorRow))) == []
    with store.transaction() as session:
        queries.ingest(session, batch, cursor=("af", "poll", "page-1"))
    with store.reading() as session:
        assert queries.get_cursor(session, "af", "poll") == "page-1"
        assert [r.state for r in session.scalars(select(RunRow))] == ["queued"]


def test_the_api_on_this_store(store: Store) -> None:
    api = build_api(store, lineage=lambda payload: [])
    with api.client:
        runs = api.get("/api/v1/runs", "alpha_viewer", params={"limit": 2}).json()
        assert [r["run_id"] for r in runs["runs"]] == ["p1", "r2"]
        rest = api.get("/api/v1/runs", "alpha_viewer", params={"cursor": runs["next_cursor"]}).json()
        assert [r["run_id"] for r in rest["runs"]] == ["r1"] and rest["next_cursor"] is None
        assert api.get("/api/v1/runs/af/beta_load/b1", "alpha_viewer").status_code == 404
        assert [p["id"] for p in api.get("/api/v1/pipelines", "beta_viewer").json()] == ["beta_load"]
        # Inputs PostgreSQL refuses are refused by the API first, never a 500.
        assert api.get("/api/v1/runs", "admin", params={"pipeline": "a\x00"}).status_code == 422
        nul = api.post("/api/v1/pipelines/beta_load/trigger", "beta_operator", json={"params": {"x": "\x00"}})
        assert nul.status_code == 422
        body = {"params": {"day": "2026-11-01"}, "request_id": "once"}
        first = api.post("/api/v1/pipelines/beta_load/trigger", "beta_operator", json=body)
        again = api.post("/api/v1/pipelines/beta_load/trigger", "beta_operator", json=body)
        assert (first.status_code, again.status_code) == (201, 200)
        event = {"eventType": "START", "job": {"namespace": "n" * 300, "name": "j"}, "producer": "p"}
        assert api.post("/api/v1/lineage", "ingest", json=event).json()["stored"] is True
        assert api.post("/api/v1/lineage", "ingest", json=event).json()["stored"] is False
        assert "meta_runs" in api.get("/metrics", "metrics").text
    with store.reading() as session:
        assert len(list(session.scalars(select(TriggerRow)))) == 1
        [lineage] = session.scalars(select(LineageEventRow))
        assert lineage.job_namespace == "n" * 250
