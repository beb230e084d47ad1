"""Warehouse loads on the real PostgreSQL at 127.0.0.1:5432, each test in its own scratch schema."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings

from meta.builtin.operators.warehouse import LoadError, WarehouseLoadOptions, load
from tests.integration.operators.conftest import PG_URL
from tests.unit.operators.loads_model import (
    DDL,
    DDL_NO_KEY,
    STEPS,
    Crash,
    Load,
    crash_at,
    execute,
    schedules,
    table_state,
)

pytestmark = pytest.mark.postgres


def rows(*pairs: tuple[int, int]) -> list[dict[str, object]]:
    return [{"id": k, "part": "even" if k % 2 == 0 else "odd", "v": v} for k, v in pairs]


def test_merge_from_query_counts_through_returning(pg_schema: str) -> None:
    execute(PG_URL, DDL.format(table=f"{pg_schema}.t"), DDL.format(table=f"{pg_schema}.src"))
    execute(PG_URL, f"INSERT INTO {pg_schema}.t VALUES (1, 'odd', 1), (2, 'even', 2)")
    execute(PG_URL, f"INSERT INTO {pg_schema}.src VALUES (2, 'even', 20), (3, 'odd', 30), (5, 'odd', 50)")
    spec = WarehouseLoadOptions(
        table=f"{pg_schema}.t", url=PG_URL, keys=["id"], source={"query": f"SELECT id, part, v FROM {pg_schema}.src"}
    )
    result = load(spec)
    assert (result.strategy, result.inserted, result.updated) == ("on_conflict", 2, 1)
    assert (load(spec).inserted, load(spec).updated) == (0, 3)
    assert table_state(PG_URL, f"{pg_schema}.t") == {1: 1, 2: 20, 3: 30, 5: 50}


def test_merge_duplicate_keys_in_query_is_a_clear_error(pg_schema: str) -> None:
    execute(PG_URL, DDL.format(table=f"{pg_schema}.t"))
    spec = WarehouseLoadOptions(
        table=f"{pg_schema}.t",
        url=PG_URL,
        keys=["id"],
        source={"query": "SELECT 1 AS id, 'odd' AS part UNION ALL SELECT 1, 'odd'"},
    )
    with pytest.raises(LoadError, match="more than one row for the same key"):
        load(spec)
    assert table_state(PG_URL, f"{pg_schema}.t") == {}


def test_merge_without_unique_index_and_typed_columns(pg_schema: str) -> None:
    table = f"{pg_schema}.facts"
    execute(PG_URL, f"CREATE TABLE {table} (day DATE NOT NULL, region TEXT NOT NULL, amount NUMERIC(12, 2))")
    spec = WarehouseLoadOptions(
        table=table,
        url=PG_URL,
        keys=["day", "region"],
        source={
            "rows": [
                {"day": "2024-01-01", "region": "eu", "amount": 1.5},
                {"day": date(2024, 1, 1), "region": "us", "amount": 2},
            ]
        },
    )
    assert load(spec).strategy == "update_insert"
    assert (load(spec).inserted, load(spec).updated) == (0, 2)
    engine = sa.create_engine(PG_URL)
    with engine.connect() as conn:
        got = conn.exec_driver_sql(f"SELECT day, region, amount FROM {table} ORDER BY region").all()
    engine.dispose()
    assert got == [(date(2024, 1, 1), "eu", Decimal("1.50")), (date(2024, 1, 1), "us", Decimal("2.00"))]


def test_incompatible_query_type_rolls_back(pg_schema: str) -> None:
    table = f"{pg_schema}.t"
    execute(PG_URL, DDL.format(table=table), f"INSERT INTO {table} VALUES (1, 'odd', 1)")
    spec = WarehouseLoadOptions(
        table=table, url=PG_URL, mode="replace", source={"query": "SELECT 2 AS id, 'even' AS part, 'x'::text AS v"}
    )
    with pytest.raises(LoadError, match=r"failed and was rolled back: .*integer"):
        load(spec)
    assert table_state(PG_URL, table) == {1: 1}


def test_password_in_url_comes_from_a_secret_and_is_hidden(
    pg_schema: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    table = f"{pg_schema}.t"
    execute(PG_URL, DDL.format(table=table))
    monkeypatch.setenv("META_SECRET_PG_PASSWORD", "not-needed-trust-auth")
    url = "postgresql://postgres:${secret:pg_password}@127.0.0.1:5432/test"
    spec = WarehouseLoadOptions(table=f"{pg_schema}.nope", url=url, mode="replace", source={"rows": []})
    with pytest.raises(LoadError) as info:
        load(spec)
    assert "not-needed-trust-auth" not in str(info.value) and "***" in str(info.value)
    assert load(WarehouseLoadOptions(table=table, url=url, mode="replace", source={"rows": rows((1, 1))})).inserted == 1
    logging.getLogger("meta.test").info(
        "connected with %s", url.replace("${secret:pg_password}", "not-needed-trust-auth")
    )
    captured = capsys.readouterr()
    assert "not-needed-trust-auth" not in caplog.text + captured.out + captured.err
    assert "connected with postgresql://postgres:***@" in caplog.text


@pytest.mark.parametrize("mode", ["merge", "append_dedup", "replace", "replace_partition"])
@pytest.mark.parametrize("step", STEPS)
def test_exception_mid_load_leaves_table_unchanged(pg_schema: str, mode: str, step: str) -> None:
    table = f"{pg_schema}.t"
    execute(PG_URL, DDL_NO_KEY.format(table=table))  # no unique index: merges take the two-statement path
    load(Load("merge", ((1, 1), (2, 2), (3, 3))).options(table, PG_URL))
    before = table_state(PG_URL, table)
    seen: list[str] = []

    def hook(current: str) -> None:
        seen.append(current)
        crash_at(step)(current)

    try:
        load(Load(mode, ((2, 20), (4, 40)), "even").options(table, PG_URL), on_step=hook)
    except Crash:
        assert table_state(PG_URL, table) == before
    else:
        assert step not in seen  # this mode has no such step


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=schedules)
def test_any_sequence_with_reruns_ends_in_last_intended_state(pg_schema: str, schedule: list) -> None:
    table = f"{pg_schema}.t"
    execute(PG_URL, f"DROP TABLE IF EXISTS {table}", DDL.format(table=table))
    expected: dict[int, int] = {}
    for step_load, times, crash_step in schedule:
        if crash_step is not None:
            try:
                load(step_load.options(table, PG_URL), on_step=crash_at(crash_step))
            except Crash:
                pass
            else:
                expected = step_load.apply(expected)
        for _ in range(times):
            load(step_load.options(table, PG_URL))
        expected = step_load.apply(expected)
        assert table_state(PG_URL, table) == expected


def test_first_audited_loads_at_once_all_succeed_and_each_is_audited(pg_schema: str) -> None:
    """Six runs' first loads into a fresh schema at the same moment (a shadow started for several live runs):
    PostgreSQL's CREATE TABLE IF NOT EXISTS for the audit races; none of the loads may fail for it."""
    import threading

    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {pg_schema}.daily (day VARCHAR, n INTEGER)")
    errors: list[str] = []
    start = threading.Barrier(6)

    def first_load(i: int) -> None:
        options = WarehouseLoadOptions.model_validate(
            {
                "table": f"{pg_schema}.daily",
                "mode": "replace_partition",
                "partition": {"column": "day", "value": f"d{i}"},
                "source": {"query": f"SELECT 'd{i}' AS day, {i} AS n"},
                "url": PG_URL,
                "audit": True,
            }
        )
        start.wait()
        try:
            load(options, pipeline_id="p", run_id=f"run_{i}", task_id="daily")
        except LoadError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=first_load, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engine.connect() as conn:
        audited = conn.exec_driver_sql(f"SELECT run_id, inserted FROM {pg_schema}.meta_load_audit ORDER BY run_id")
        assert [tuple(r) for r in audited] == [(f"run_{i}", 1) for i in range(6)]
    engine.dispose()
