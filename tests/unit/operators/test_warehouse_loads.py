"""Warehouse loads on real DuckDB and SQLite files: every mode, counts, sources, schema checks, atomicity, and the
idempotency property (any sequence of loads, re-run any number of times, ends in the last intended state)."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from meta.builtin.operators.warehouse import LoadError, WarehouseLoadOptions, load
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

ENGINES = ("sqlite", "duckdb")


def make_url(kind: str, directory: Path) -> str:
    return f"sqlite:///{directory / 'w.sqlite'}" if kind == "sqlite" else f"duckdb:///{directory / 'w.duckdb'}"


@pytest.fixture(params=ENGINES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url = make_url(request.param, tmp_path)
    execute(url, DDL.format(table="t"))
    return url


def opts(url: str, **spec: object) -> WarehouseLoadOptions:
    return WarehouseLoadOptions.model_validate({"table": "t", "url": url, **spec})


def rows(*pairs: tuple[int, int]) -> list[dict[str, object]]:
    return [{"id": k, "part": "even" if k % 2 == 0 else "odd", "v": v} for k, v in pairs]


def test_merge_counts_and_rerun(url: str) -> None:
    first = load(opts(url, mode="merge", keys=["id"], source={"rows": rows((1, 1), (2, 2), (3, 3))}))
    assert (first.inserted, first.updated, first.deleted) == (3, 0, 0)
    second = opts(url, mode="merge", keys=["id"], source={"rows": rows((2, 20), (4, 40))})
    result = load(second)
    assert (result.inserted, result.updated) == (1, 1)
    again = load(second)
    assert (again.inserted, again.updated) == (0, 2)
    assert table_state(url, "t") == {1: 1, 2: 20, 3: 3, 4: 40}


def test_merge_without_unique_index_uses_update_insert(tmp_path: Path) -> None:
    url = make_url("sqlite", tmp_path)
    execute(url, DDL_NO_KEY.format(table="t"))
    spec = opts(url, mode="merge", keys=["id"], source={"rows": rows((1, 1), (2, 2))})
    assert load(spec).strategy == "update_insert"
    load(opts(url, mode="merge", keys=["id"], source={"rows": rows((2, 5), (3, 3))}))
    load(spec)
    assert table_state(url, "t") == {1: 1, 2: 2, 3: 3}


def test_append_dedup_inserts_only_new_keys(url: str) -> None:
    load(opts(url, mode="merge", keys=["id"], source={"rows": rows((1, 1))}))
    result = load(opts(url, mode="append_dedup", keys=["id"], source={"rows": rows((1, 99), (2, 2))}))
    assert (result.inserted, result.updated) == (1, 0)
    assert table_state(url, "t") == {1: 1, 2: 2}


def test_replace_partition_from_query_source(url: str) -> None:
    load(opts(url, mode="merge", keys=["id"], source={"rows": rows((1, 1), (2, 2), (4, 4))}))
    spec = opts(
        url,
        mode="replace_partition",
        partition={"column": "part", "value": "even"},
        source={"query": "SELECT 6 AS id, 'even' AS part, 60 AS v"},
    )
    result = load(spec)
    assert (result.inserted, result.deleted) == (1, 2)
    assert load(spec).deleted == 1
    assert table_state(url, "t") == {1: 1, 6: 60}


def test_replace_partition_refuses_rows_outside_the_partition(url: str) -> None:
    load(opts(url, mode="merge", keys=["id"], source={"rows": rows((2, 2))}))
    with pytest.raises(LoadError, match=r"outside the partition"):
        load(
            opts(
                url,
                mode="replace_partition",
                partition={"column": "part", "value": "odd"},
                source={"rows": rows((2, 9))},
            )
        )
    with pytest.raises(LoadError, match=r"1 row\(s\) outside the partition"):
        load(
            opts(
                url,
                mode="replace_partition",
                partition={"column": "part", "value": "odd"},
                source={"query": "SELECT 2 AS id, 'even' AS part, 9 AS v"},
            )
        )
    assert table_state(url, "t") == {2: 2}


def test_replace_swaps_everything(url: str) -> None:
    load(opts(url, mode="merge", keys=["id"], source={"rows": rows((1, 1), (2, 2))}))
    result = load(opts(url, mode="replace", source={"rows": rows((7, 7))}))
    assert (result.inserted, result.deleted) == (1, 2)
    assert table_state(url, "t") == {7: 7}
    assert load(opts(url, mode="replace", source={"rows": []})).deleted == 1
    assert table_state(url, "t") == {}


def test_csv_source_is_typed_by_the_target(url: str, tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([["id", "part", "v"], ["1", "odd", "10"], ["2", "even", ""]])
    assert load(opts(url, mode="merge", keys=["id"], source={"csv": str(path)})).inserted == 2
    assert table_state(url, "t") == {1: 10, 2: None}


def test_csv_bad_value_names_line_and_column(url: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,part,v\n1,odd,10\n3,odd,ten\n")
    with pytest.raises(LoadError, match=r"bad.csv' line 3, column 'v': got 'ten', expected .*INT"):
        load(opts(url, mode="merge", keys=["id"], source={"csv": str(path)}))
    assert table_state(url, "t") == {}


def test_parquet_source(url: str, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [1, 3], "part": ["odd", "odd"], "v": [5, 6]}), path)
    assert load(opts(url, mode="append_dedup", keys=["id"], source={"parquet": str(path)})).inserted == 2
    assert table_state(url, "t") == {1: 5, 3: 6}


def test_missing_column_is_refused_before_any_write(url: str) -> None:
    load(opts(url, mode="merge", keys=["id"], source={"rows": rows((1, 1))}))
    with pytest.raises(LoadError) as info:
        load(opts(url, mode="replace", source={"rows": [{"id": 2, "part": "even", "v": 1, "colour": "red"}]}))
    assert "column(s) ['colour'] the target lacks" in str(info.value)
    assert "nothing was written" in str(info.value)
    assert table_state(url, "t") == {1: 1}


def test_required_column_missing_from_source(url: str) -> None:
    with pytest.raises(LoadError, match=r"lacks NOT NULL column\(s\) \['part'\]"):
        load(opts(url, mode="merge", keys=["id"], source={"rows": [{"id": 1, "v": 1}]}))


def test_incompatible_type_is_refused_before_any_write(url: str) -> None:
    load(opts(url, mode="merge", keys=["id"], source={"rows": rows((1, 1))}))
    bad = [{"id": 1, "part": "odd", "v": 2}, {"id": 2, "part": "even", "v": "two"}]
    with pytest.raises(LoadError, match=r"source row 2, column 'v': got str 'two', expected .* \(int\)"):
        load(opts(url, mode="replace", source={"rows": bad}))
    assert table_state(url, "t") == {1: 1}


def test_duplicate_and_null_keys_are_refused(url: str) -> None:
    with pytest.raises(LoadError, match=r"more than one row for key \{'id': 1\}"):
        load(opts(url, mode="merge", keys=["id"], source={"rows": rows((1, 1), (1, 2))}))
    with pytest.raises(LoadError, match=r"returns 2 rows for key \{'id': 1\}"):
        load(
            opts(
                url,
                mode="merge",
                keys=["id"],
                source={"query": "SELECT 1 AS id, 'odd' AS part UNION ALL SELECT 1, 'odd'"},
            )
        )
    with pytest.raises(LoadError, match="NULL key"):
        load(opts(url, mode="append_dedup", keys=["id"], source={"rows": [{"id": None, "part": "odd", "v": 1}]}))
    assert table_state(url, "t") == {}


def test_missing_table_is_a_clear_error(url: str) -> None:
    with pytest.raises(LoadError, match=r"table nope does not exist .*create it first"):
        load(WarehouseLoadOptions(table="nope", url=url, mode="replace", source={"rows": []}))


def test_dates_from_iso_strings(tmp_path: Path) -> None:
    url = make_url("duckdb", tmp_path)
    execute(url, "CREATE TABLE d (day DATE PRIMARY KEY, n INTEGER)")
    spec = WarehouseLoadOptions(
        table="d",
        url=url,
        mode="replace_partition",
        partition={"column": "day", "value": "2024-03-01"},
        source={"rows": [{"day": "2024-03-01", "n": 1}]},
    )
    assert load(spec).inserted == 1
    assert load(spec).deleted == 1
    execute(url, "INSERT INTO d VALUES (DATE '2024-03-02', 2)")
    assert load(spec).deleted == 1
    from tests.unit.operators.loads_model import sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT day, n FROM d ORDER BY day").all() == [
            (date(2024, 3, 1), 1),
            (date(2024, 3, 2), 2),
        ]
    engine.dispose()


def test_audit_row_is_replaced_on_rerun(url: str) -> None:
    spec = opts(url, mode="merge", keys=["id"], source={"rows": rows((1, 1))}, audit=True)
    for _ in range(3):
        load(spec, pipeline_id="p", run_id="r1", task_id="load")
    load(spec, pipeline_id="p", run_id="r2", task_id="load")
    from tests.unit.operators.loads_model import sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        audit = conn.exec_driver_sql("SELECT run_id, inserted, updated FROM meta_load_audit ORDER BY run_id").all()
    engine.dispose()
    assert audit == [("r1", 0, 1), ("r2", 0, 1)]


@pytest.mark.parametrize("mode", ["merge", "append_dedup", "replace", "replace_partition"])
@pytest.mark.parametrize("step", STEPS)
def test_exception_mid_load_leaves_table_unchanged(url: str, mode: str, step: str) -> None:
    load(opts(url, mode="merge", keys=["id"], source={"rows": rows((1, 1), (2, 2), (3, 3))}))
    before = table_state(url, "t")
    seen: list[str] = []

    def hook(current: str) -> None:
        seen.append(current)
        if current == step:
            raise Crash(current)

    try:
        load(Load(mode, ((2, 20), (4, 40)), "even").options("t", url), on_step=hook)
    except Crash:
        assert table_state(url, "t") == before
    else:
        # Not every mode has every step (only merges without a unique index run a separate UPDATE).
        assert step not in seen and step in ("updated", "deleted")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=schedules)
def test_any_sequence_with_reruns_ends_in_last_intended_state(url: str, schedule: list) -> None:
    execute(url, "DELETE FROM t")
    expected: dict[int, int] = {}
    for step_load, times, crash_step in schedule:
        if crash_step is not None:
            try:
                load(step_load.options("t", url), on_step=crash_at(crash_step))
            except Crash:
                pass
            else:
                expected = step_load.apply(expected)  # the crash step was not part of this load: it completed
        for _ in range(times):
            load(step_load.options("t", url))
        expected = step_load.apply(expected)
        assert table_state(url, "t") == expected


def test_large_duckdb_merge_counts(tmp_path: Path) -> None:
    """More rows than one DuckDB row group, staged from a query: the counts and the data must both be right."""
    url = make_url("duckdb", tmp_path)
    execute(
        url,
        "CREATE TABLE big (id BIGINT PRIMARY KEY, v BIGINT)",
        "INSERT INTO big SELECT range, range FROM range(300000)",
        "CREATE TABLE src AS SELECT range AS id, -range AS v FROM range(250000, 450000)",
    )
    spec = WarehouseLoadOptions(table="big", url=url, keys=["id"], source={"query": "SELECT id, v FROM src"})
    result = load(spec)
    assert (result.inserted, result.updated) == (150000, 50000)
    from tests.unit.operators.loads_model import sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*), sum(v) FROM big").one() == (
            450000,
            sum(range(250000)) - sum(range(250000, 450000)),
        )
    engine.dispose()


def test_composite_key_merge_from_query(tmp_path: Path) -> None:
    url = make_url("duckdb", tmp_path)
    execute(
        url,
        "CREATE TABLE sales (day DATE, region VARCHAR, amount INTEGER, PRIMARY KEY (day, region))",
        "INSERT INTO sales VALUES (DATE '2024-01-01', 'eu', 1)",
        "CREATE TABLE src (day DATE, region VARCHAR, amount INTEGER)",
        "INSERT INTO src VALUES (DATE '2024-01-01', 'eu', 5), (DATE '2024-01-01', 'us', 6)",
    )
    spec = WarehouseLoadOptions(table="sales", url=url, keys=["day", "region"], source={"query": "SELECT * FROM src"})
    result = load(spec)
    assert (result.strategy, result.inserted, result.updated) == ("on_conflict", 1, 1)
    execute(url, "INSERT INTO src VALUES (DATE '2024-01-01', 'us', 7)")
    with pytest.raises(
        LoadError, match=r"returns 2 rows for key \{'day': datetime.date\(2024, 1, 1\), 'region': 'us'\}"
    ):
        load(spec)
