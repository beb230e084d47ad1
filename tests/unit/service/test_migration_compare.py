"""The comparison of a live run with its shadow run, and ``meta migrate report``, on real parts: a real SQLite store
seeded through ``queries.ingest``, the real ``warehouse_load`` op writing into two DuckDB files (live, shadow) with
the load audit on, the shadow copy's connections renamed by ``shadow.shadow_copy``, and the real PostgreSQL at
127.0.0.1:5432 for the in-database checksum."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from meta.builtin.operators.plugin import run_warehouse_load
from meta.cli import cli
from meta.plugins.observers import EventKind, RunEvent, Source, UnifiedState
from meta.plugins.ops import OpContext
from meta.semantics.context import RunContext
from meta.service.migrations.checksums import POSTGRES_MD5, ROWS_SHA256, checksum
from meta.service.migrations.compare import Comparison, ComparisonDeferred, compare_pair, comparer, output_table
from meta.service.migrations.report import migration_report
from meta.service.migrations.shadow import shadow_copy
from meta.service.store import queries
from meta.service.store.db import Store, open_store
from meta.service.store.orm import MigrationRow, MigrationRunRow, RunRow
from meta.spec.model import Pipeline
from meta.spec.workspace import Migration

DAY = datetime(2026, 11, 1, tzinfo=UTC)
SETTINGS = Migration(shadow_connections={"warehouse": "warehouse_shadow"}, agree_after=2)
ORDERS_DDL = "CREATE TABLE {table} (id INTEGER PRIMARY KEY, customer VARCHAR, amount DECIMAL(10, 2), day DATE)"
TOTALS_SQL = (
    "CREATE OR REPLACE TABLE order_totals AS SELECT customer, sum(amount) AS total FROM orders GROUP BY customer"
)
ROWS = [
    {"id": 1, "customer": "ada", "amount": 10.5, "day": "{{ ds }}"},
    {"id": 2, "customer": "bob", "amount": 7, "day": "{{ ds }}"},
    {"id": 3, "customer": "ada", "amount": 1.25, "day": "{{ ds }}"},
]
PIPELINE = Pipeline.model_validate(
    {
        "id": "orders",
        "tasks": [
            {"id": "extract", "action": {"kind": "shell", "command": "echo extract"}},
            {
                "id": "load_orders",
                "upstream": ["extract"],
                "action": {
                    "kind": "op",
                    "op": "warehouse_load",
                    "with": {
                        "table": "orders",
                        "conn": "warehouse",
                        "mode": "merge",
                        "keys": ["id"],
                        "source": {"rows": ROWS},
                        "audit": True,
                    },
                },
            },
            {
                "id": "totals",
                "upstream": ["load_orders"],
                "action": {"kind": "sql", "conn": "warehouse", "statement": TOTALS_SQL},
                "outputs": ["warehouse://order_totals"],
            },
        ],
    }
)
SHADOW = shadow_copy(PIPELINE, SETTINGS).pipeline


# ---------------------------------------------------------------------------------------------- the two sides


@dataclass
class Side:
    """One side of the pair: its backend, pipeline id and run id as the backend fills the op's run context (Airflow:
    the DAG run's id; Prefect: ``prefect__<flow run id>``, which is also what the control plane stores)."""

    backend: str
    pipeline: Pipeline
    run_id: str
    url: str

    def load(self, logical_date: datetime = DAY) -> None:
        """The real ``warehouse_load`` op, with the run context the backend would give it."""
        task = next(t for t in self.pipeline.tasks if t.id == "load_orders")
        with_args = dict(task.action.with_)  # type: ignore[union-attr]
        ctx = RunContext(self.pipeline.id, self.run_id, logical_date, backend=self.backend)
        run_warehouse_load(OpContext(run=ctx, task_id="load_orders"), **with_args)

    def totals(self) -> None:
        execute(self.url, TOTALS_SQL)


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


@pytest.fixture
def sides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Side, Side]:
    live_url, shadow_url = f"duckdb:///{tmp_path / 'live.duckdb'}", f"duckdb:///{tmp_path / 'shadow.duckdb'}"
    for url in (live_url, shadow_url):
        execute(url, ORDERS_DDL.format(table="orders"))
    monkeypatch.setenv("META_CONN_WAREHOUSE", live_url)
    monkeypatch.setenv("META_CONN_WAREHOUSE_SHADOW", shadow_url)
    live = Side("af", PIPELINE, "scheduled__2026-11-01T00:00:00+00:00", live_url)
    shadow = Side("pf", SHADOW, f"prefect__{uuid.uuid4()}", shadow_url)
    return live, shadow


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'control-plane.db'}")
    try:
        yield store
    finally:
        store.close()


def run(side: Side, state: UnifiedState, start: datetime, seconds: float) -> RunEvent:
    return RunEvent(
        backend=side.backend,
        kind=EventKind.RUN,
        pipeline_id=side.pipeline.id,
        run_id=side.run_id,
        state=state,
        raw_state=str(state),
        as_of=start + timedelta(seconds=seconds),
        source=Source.POLL,
        logical_date=DAY,
        started_at=start,
        ended_at=start + timedelta(seconds=seconds),
    )


def attempt(side: Side, task: str, try_number: int, state: UnifiedState, start: datetime, seconds: float) -> RunEvent:
    return RunEvent(
        backend=side.backend,
        kind=EventKind.TASK_ATTEMPT,
        pipeline_id=side.pipeline.id,
        run_id=side.run_id,
        state=state,
        raw_state=str(state),
        as_of=start + timedelta(seconds=seconds),
        source=Source.POLL,
        task_id=task,
        try_number=try_number,
        started_at=start,
        ended_at=start + timedelta(seconds=seconds),
    )


def observed(side: Side, *, load: UnifiedState = UnifiedState.SUCCESS, load_tries: int = 1, slow: float = 1) -> list:
    """What the observer records for one run: extract, load_orders (possibly retried), totals; the run's state."""
    t0 = DAY + timedelta(minutes=5)
    events = [attempt(side, "extract", 1, UnifiedState.SUCCESS, t0, 2 * slow)]
    for n in range(1, load_tries):
        events.append(attempt(side, "load_orders", n, UnifiedState.UP_FOR_RETRY, t0 + timedelta(seconds=n), 1))
    events.append(attempt(side, "load_orders", load_tries, load, t0 + timedelta(seconds=10), 4 * slow))
    ok = load == UnifiedState.SUCCESS
    totals = UnifiedState.SUCCESS if ok else UnifiedState.UPSTREAM_FAILED
    events.append(attempt(side, "totals", 1, totals, t0 + timedelta(seconds=20), 1 * slow))
    events.append(run(side, UnifiedState.SUCCESS if ok else UnifiedState.FAILED, t0, 30 * slow))
    return events


def seed(store: Store, live: Side, shadow: Side, events: list[RunEvent], logical_date: datetime = DAY) -> int:
    """The migration row (once) and the pair's row, as ``meta migrate shadow`` and the engine write them."""
    now = datetime.now(UTC)
    with store.transaction() as session:
        queries.ingest(session, events)
        if session.get(MigrationRow, "orders") is None:
            session.add(
                MigrationRow(
                    pipeline_id="orders",
                    source_backend=live.backend,
                    target_backend=shadow.backend,
                    shadow_id="orders__shadow",
                    phase="shadowing",
                    shadow_since=DAY - timedelta(days=1),
                    history=[],
                    created_at=now,
                    updated_at=now,
                )
            )
        pair = MigrationRunRow(
            pipeline_id="orders",
            logical_date=logical_date,
            live_backend=live.backend,
            live_run_id=live.run_id,
            shadow_backend=shadow.backend,
            shadow_pipeline=shadow.pipeline.id,
            trigger_key=f"meta-shadow-{logical_date:%Y%m%d}",
            shadow_run_id=shadow.run_id,
            state="triggered",
            attempts=1,
            created_at=now,
            triggered_at=now,
            updated_at=now,
        )
        session.add(pair)
        session.flush()
        return pair.id


def compare(store: Store, pair_id: int, settings: Migration = SETTINGS) -> Comparison:
    with store.reading() as session:
        pair = session.get(MigrationRunRow, pair_id)
        migration = session.get(MigrationRow, "orders")
        assert pair is not None and migration is not None
        return compare_pair(session, migration, pair, PIPELINE, settings)


def both_ran(live: Side, shadow: Side) -> None:
    for side in (live, shadow):
        side.load()
        side.totals()


# ---------------------------------------------------------------------------------------------- comparisons


def test_equal_runs_agree_on_tasks_loads_and_tables(store: Store, sides: tuple[Side, Side]) -> None:
    live, shadow = sides
    both_ran(live, shadow)
    pair = seed(store, live, shadow, [*observed(live), *observed(shadow, slow=2)])
    result = compare(store, pair)

    assert result.differences == () and result.errors == (), result.to_json()
    assert result.agrees and result.verdict == "agree"
    assert (result.live.state, result.shadow.state) == ("success", "success")
    assert [(t.name, t.live.state, t.shadow.state, t.live.tries) for t in result.tasks] == [
        ("extract", "success", "success", 1),
        ("load_orders", "success", "success", 1),
        ("totals", "success", "success", 1),
    ]
    load = result.tasks[1]
    assert (load.live.duration_seconds, load.shadow.duration_seconds, load.duration_ratio) == (4.0, 8.0, 2.0)
    # the audit rows the op wrote: live under (orders, Airflow's run id), shadow under (orders__shadow, prefect__...)
    [counts] = result.loads
    assert (counts.task_id, counts.table, str(counts.live), str(counts.shadow)) == (
        "load_orders",
        "orders",
        "+3 ~0 -0",
        "+3 ~0 -0",
    )
    tables = {t.table: t for t in result.tables}
    assert sorted(tables) == ["order_totals", "orders"]
    orders = tables["orders"]
    assert (orders.live_conn, orders.shadow_conn, orders.tasks) == ("warehouse", "warehouse_shadow", ("load_orders",))
    assert orders.live is not None and orders.shadow is not None
    assert (orders.live.rows, orders.live.method) == (3, ROWS_SHA256)
    assert orders.live.checksum == orders.shadow.checksum
    assert orders.live.columns == ("amount", "customer", "day", "id")
    assert tables["order_totals"].tasks == ("totals",) and tables["order_totals"].agrees
    # stored as JSON and read back unchanged
    restored = Comparison.from_json(json.loads(json.dumps(result.to_json())))
    assert restored == result


def test_a_changed_shadow_row_is_a_disagreement_naming_the_table(store: Store, sides: tuple[Side, Side]) -> None:
    live, shadow = sides
    live.load()
    shadow.load()
    execute(shadow.url, "UPDATE orders SET amount = 99 WHERE id = 2")
    pair = seed(store, live, shadow, [*observed(live), *observed(shadow)])
    result = compare(store, pair)

    assert not result.agrees and result.verdict == "differ"
    [difference] = [d for d in result.differences if d.startswith("table orders:")]
    orders = next(t for t in result.tables if t.table == "orders")
    assert orders.live is not None and orders.shadow is not None
    assert difference == (
        f"table orders: checksum {orders.live.checksum[:8]}… (live) != {orders.shadow.checksum[:8]}… (shadow); "
        "rows 3 vs 3; written by task load_orders"
    )
    assert all(t.agrees for t in result.tasks) and all(x.agrees for x in result.loads)
    # order_totals was never created on either side: nothing to compare, and said so
    assert any("output order_totals of task totals: no such table on warehouse" in n for n in result.notes)


def test_a_failed_shadow_task_is_a_disagreement_naming_the_task(store: Store, sides: tuple[Side, Side]) -> None:
    live, shadow = sides
    live.load()
    live.totals()  # the shadow's load failed: it wrote nothing, no audit row, no totals
    pair = seed(store, live, shadow, [*observed(live), *observed(shadow, load=UnifiedState.FAILED)])
    result = compare(store, pair)

    assert not result.agrees
    assert "run: success (live) vs failed (shadow)" in result.differences
    assert "task load_orders: success (live) vs failed (shadow)" in result.differences
    assert "task totals: success (live) vs upstream_failed (shadow)" in result.differences
    assert (
        "load load_orders (orders): inserted 3, updated 0, deleted 0 (live) vs no audit row (shadow)"
        in result.differences
    )
    assert "table orders: checksum" in next(d for d in result.differences if d.startswith("table orders"))
    assert (
        "table order_totals: missing on the shadow connection warehouse_shadow (the other side has 2 rows); "
        "written by task totals"
    ) in result.differences


def test_a_shadow_task_whose_sql_differs_is_named_with_its_table(store: Store, sides: tuple[Side, Side]) -> None:
    live, shadow = sides
    both_ran(live, shadow)
    execute(shadow.url, TOTALS_SQL.replace("sum(amount)", "sum(amount) * 2"))  # the shadow's totals SQL changed
    pair = seed(store, live, shadow, [*observed(live), *observed(shadow)])
    [difference] = compare(store, pair).differences
    assert difference.startswith("table order_totals: checksum ")
    assert difference.endswith("; rows 2 vs 2; written by task totals")


def test_tries_count_only_for_tasks_that_ran(store: Store, sides: tuple[Side, Side]) -> None:
    live, shadow = sides
    t0 = DAY + timedelta(minutes=5)
    # Airflow reports a task it never ran with try 0; Prefect's decided marker may say 1: not a difference
    events = [
        attempt(live, "load_orders", 1, UnifiedState.FAILED, t0, 1),
        attempt(live, "totals", 0, UnifiedState.UPSTREAM_FAILED, t0, 0),
        run(live, UnifiedState.FAILED, t0, 5),
        attempt(shadow, "load_orders", 1, UnifiedState.FAILED, t0, 1),
        attempt(shadow, "totals", 1, UnifiedState.UPSTREAM_FAILED, t0, 0),
        run(shadow, UnifiedState.FAILED, t0, 5),
    ]
    pair = seed(store, live, shadow, events)
    result = compare(store, pair)
    assert result.differences == () and result.agrees, result.to_json()
    assert [(t.name, t.live.tries, t.shadow.tries, t.agrees) for t in result.tasks] == [
        ("extract", 0, 0, True),  # not run on either side: listed, agreeing
        ("load_orders", 1, 1, True),
        ("totals", 0, 1, True),
    ]
    assert {t.table: (t.live, t.shadow, t.agrees) for t in result.tables}["orders"][2]


def test_a_retried_task_is_a_disagreement_in_tries(store: Store, sides: tuple[Side, Side]) -> None:
    live, shadow = sides
    both_ran(live, shadow)
    pair = seed(store, live, shadow, [*observed(live), *observed(shadow, load_tries=3)])
    result = compare(store, pair)
    assert result.differences == ("task load_orders: 1 try (live) vs 3 tries (shadow)",)


def test_different_load_counts_are_a_disagreement(store: Store, sides: tuple[Side, Side]) -> None:
    live, shadow = sides
    execute(shadow.url, "INSERT INTO orders VALUES (2, 'bob', 7.00, DATE '2026-11-01')")  # already there: an update
    both_ran(live, shadow)
    pair = seed(store, live, shadow, [*observed(live), *observed(shadow)])
    result = compare(store, pair)
    assert result.differences == (
        "load load_orders (orders): inserted 3, updated 0, deleted 0 (live) vs inserted 2, updated 1, deleted 0 "
        "(shadow)",
    )


def test_a_connection_not_configured_here_is_an_error_not_an_agreement(
    store: Store, sides: tuple[Side, Side], monkeypatch: pytest.MonkeyPatch
) -> None:
    live, shadow = sides
    both_ran(live, shadow)
    pair = seed(store, live, shadow, [*observed(live), *observed(shadow)])
    monkeypatch.delenv("META_CONN_WAREHOUSE_SHADOW")
    result = compare(store, pair)
    assert result.differences == ()
    assert not result.agrees and result.verdict == "incomplete"
    assert len(result.errors) == 1 and "META_CONN_WAREHOUSE_SHADOW" in result.errors[0]


def test_a_connection_not_renamed_any_more_is_noted_and_its_audit_unmatched(
    store: Store, sides: tuple[Side, Side]
) -> None:
    live, shadow = sides
    both_ran(live, shadow)
    pair = seed(store, live, shadow, [*observed(live), *observed(shadow)])
    # meta.yaml lost the rename after the shadow was deployed: the shadow's audit row is looked for on the live
    # connection, where it is not; no table is checksummed against itself
    result = compare(store, pair, Migration())
    assert result.tables == () and result.differences == ()
    assert any(
        n.startswith("table orders: not checksummed, the shadow writes the live warehouse") for n in result.notes
    )
    assert result.errors == (
        f"load load_orders: succeeded (shadow) but meta_load_audit on warehouse has no row for task load_orders, "
        f"run {shadow.run_id}, pipeline orders__shadow",
    )
    assert result.verdict == "incomplete"


def test_the_engine_comparer_returns_the_stored_json(store: Store, sides: tuple[Side, Side]) -> None:
    live, shadow = sides
    both_ran(live, shadow)
    pair_id = seed(store, live, shadow, [*observed(live), *observed(shadow)])
    compare_json = comparer({"orders": PIPELINE}, {"orders": SETTINGS})
    with store.reading() as session:
        pair = session.get(MigrationRunRow, pair_id)
        migration = session.get(MigrationRow, "orders")
        assert pair is not None and migration is not None
        stored = compare_json(session, migration, pair, None, None)
        assert stored["agrees"] is True and stored["verdict"] == "agree"
        with pytest.raises(LookupError, match="pipeline 'orders' is not in the workspace's specs"):
            comparer({}, {})(session, migration, pair, None, None)


def test_the_migration_engine_stores_the_comparison_the_report_reads(store: Store, sides: tuple[Side, Side]) -> None:
    from meta.service.migrations.engine import MigrationEngine

    live, shadow = sides
    both_ran(live, shadow)
    pair_id = seed(store, live, shadow, [*observed(live), *observed(shadow)])
    engine = MigrationEngine(store, [PIPELINE], {}, comparer=comparer({"orders": PIPELINE}, {"orders": SETTINGS}))
    engine.tick(datetime.now(UTC))
    with store.reading() as session:
        row = session.get(MigrationRunRow, pair_id)
        assert row is not None and row.comparison is not None and row.compared_at is not None
        report = migration_report(session, "orders", SETTINGS)
    assert Comparison.from_json(row.comparison).agrees
    assert [(p.verdict, p.agrees) for p in report.pairs] == [("agree", True)]
    assert (report.agreeing_in_a_row, report.ready, report.exit_code) == (1, False, 3)


def test_a_warehouse_that_is_down_defers_a_recent_comparison(
    store: Store, sides: tuple[Side, Side], monkeypatch: pytest.MonkeyPatch
) -> None:
    live, shadow = sides
    both_ran(live, shadow)
    pair_id = seed(store, live, shadow, [*observed(live), *observed(shadow)])
    # a database that cannot be opened (any driver's OperationalError; SQLite needs no extra, as in .venv-prefect)
    monkeypatch.setenv("META_CONN_WAREHOUSE_SHADOW", "sqlite:////nonexistent-meta-dir/shadow.db")
    result = compare(store, pair_id)
    assert result.transient and result.verdict == "incomplete" and result.differences == ()
    assert any(e.startswith("table orders (shadow, warehouse_shadow): cannot read: ") for e in result.errors)
    with store.reading() as session:
        pair = session.get(MigrationRunRow, pair_id)
        migration = session.get(MigrationRow, "orders")
        runs = {r.backend: r for r in session.scalars(sa.select(RunRow))}
        assert pair is not None and migration is not None and runs["pf"].ended_at is not None
        ended = runs["pf"].ended_at
        soon = comparer({"orders": PIPELINE}, {"orders": SETTINGS}, now=lambda: ended + timedelta(minutes=5))
        with pytest.raises(ComparisonDeferred, match="orders 2026-11-01T00:00:00"):
            soon(session, migration, pair, runs["af"], runs["pf"])
        late = comparer({"orders": PIPELINE}, {"orders": SETTINGS}, now=lambda: ended + timedelta(hours=2))
        stored = late(session, migration, pair, runs["af"], runs["pf"])
    assert (stored["verdict"], stored["transient"]) == ("incomplete", True)


def test_portable_checksum_ignores_row_and_column_order_and_counts_duplicates(tmp_path: Path) -> None:
    a, b = f"duckdb:///{tmp_path / 'a.duckdb'}", f"sqlite:///{tmp_path / 'b.sqlite'}"
    execute(a, "CREATE TABLE t (k INTEGER, v VARCHAR)", "INSERT INTO t VALUES (1, 'x'), (2, NULL), (3, 'z')")
    execute(a, "CREATE TABLE u (v VARCHAR, k INTEGER)", "INSERT INTO u VALUES ('z', 3), (NULL, 2), ('x', 1)")
    execute(a, "CREATE TABLE d (k INTEGER, v VARCHAR)", "INSERT INTO d VALUES (1, 'x'), (1, 'x'), (3, 'z')")
    execute(b, "CREATE TABLE t (k INTEGER, v TEXT)", "INSERT INTO t VALUES (3, 'z'), (1, 'x'), (2, NULL)")
    engines = [sa.create_engine(u, poolclass=sa.pool.NullPool) for u in (a, b)]
    try:
        t, u, d = (checksum(engines[0], name, ROWS_SHA256) for name in ("t", "u", "d"))
        sqlite_t = checksum(engines[1], "t", ROWS_SHA256)
    finally:
        for engine in engines:
            engine.dispose()
    assert t.checksum == u.checksum == sqlite_t.checksum and t.rows == 3
    assert d.checksum != t.checksum


def test_output_table_names() -> None:
    assert output_table("warehouse://order_totals") == "order_totals"
    assert output_table("postgres://warehouse/public.roi") == "public.roi"
    assert output_table("orders") == "orders"
    assert output_table("s3://bucket/path/file.csv") is None


# ---------------------------------------------------------------------------------------------- PostgreSQL

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.mark.postgres
def test_postgres_checksum_is_taken_in_the_database(
    store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("psycopg", reason="the PostgreSQL driver (extra meta-orchestrator[postgres])")
    schemas = [f"meta_cmp_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("live", "shadow")]
    urls = [f"{PG_URL}?options=-csearch_path%3D{schema}" for schema in schemas]
    ddl = "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, amount NUMERIC(10, 2), day DATE)"
    for schema, url in zip(schemas, urls, strict=True):
        execute(PG_URL, f"CREATE SCHEMA {schema}")
        execute(url, ddl)
    try:
        monkeypatch.setenv("META_CONN_WAREHOUSE", urls[0])
        monkeypatch.setenv("META_CONN_WAREHOUSE_SHADOW", urls[1])
        live = Side("af", PIPELINE, "scheduled__2026-11-01T00:00:00+00:00", urls[0])
        shadow = Side("pf", SHADOW, f"prefect__{uuid.uuid4()}", urls[1])
        # the shadow's rows arrive in another order (a delete and re-insert): the checksum does not care
        live.load()
        shadow.load()
        execute(urls[1], "DELETE FROM orders WHERE id = 1", "INSERT INTO orders VALUES (1, 'ada', 10.50, '2026-11-01')")
        for side in (live, shadow):
            execute(side.url, TOTALS_SQL.replace("CREATE OR REPLACE TABLE", "CREATE TABLE"))
        pair = seed(store, live, shadow, [*observed(live), *observed(shadow)])
        result = compare(store, pair)
        assert result.agrees, result.to_json()
        orders = next(t for t in result.tables if t.table == "orders")
        assert orders.live is not None and orders.shadow is not None
        assert (orders.live.method, orders.live.rows) == (POSTGRES_MD5, 3)
        assert orders.live.checksum == orders.shadow.checksum and len(orders.live.checksum) == 32
        assert [str(x.live) for x in result.loads] == ["+3 ~0 -0"]

        # column names a driver could take for placeholders (psycopg's %s, SQLAlchemy's :name) are read as written
        odd = 'CREATE TABLE odd ("growth%%" INTEGER, "a:b" TEXT); INSERT INTO odd VALUES (1, \'x\'), (2, NULL)'
        engine = sa.create_engine(urls[0], poolclass=sa.pool.NullPool)
        try:
            execute(urls[0], odd)
            odd_sum = checksum(engine, "odd", POSTGRES_MD5)
            assert (odd_sum.rows, odd_sum.columns) == (2, ("a:b", "growth%"))
            assert checksum(engine, "odd", ROWS_SHA256).rows == 2
        finally:
            engine.dispose()

        execute(urls[1], "UPDATE orders SET customer = 'eve' WHERE id = 3")
        changed = compare(store, pair)
        [difference] = changed.differences
        assert difference.startswith("table orders: checksum ")
        assert difference.endswith("rows 3 vs 3; written by task load_orders")
    finally:
        for schema in schemas:
            execute(PG_URL, f"DROP SCHEMA IF EXISTS {schema} CASCADE")


# ---------------------------------------------------------------------------------------------- report and CLI


def workspace(tmp_path: Path, agree_after: int = 2) -> Path:
    path = tmp_path / "meta.yaml"
    path.write_text(
        "backends:\n"
        "  af: {kind: airflow, url: 'http://127.0.0.1:9/'}\n"
        "  pf: {kind: prefect, url: 'http://127.0.0.1:9/api'}\n"
        f"control_plane: {{database: 'sqlite:///{tmp_path / 'control-plane.db'}'}}\n"
        "migrations:\n"
        f"  orders: {{shadow_connections: {{warehouse: warehouse_shadow}}, agree_after: {agree_after}}}\n",
        encoding="utf-8",
    )
    return path


def store_comparison(store: Store, pair_id: int, comparison: Comparison) -> None:
    with store.transaction() as session:
        row = session.get(MigrationRunRow, pair_id)
        assert row is not None
        row.comparison, row.compared_at = comparison.to_json(), comparison.compared_at


def day_side(side: Side, n: int) -> Side:
    return Side(side.backend, side.pipeline, f"{side.run_id}-{n}", side.url)


def invoke(path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["migrate", "report", "orders", "--workspace", str(path), *args])


def test_report_counts_agreeing_runs_and_the_cli_exits_by_readiness(
    store: Store, sides: tuple[Side, Side], tmp_path: Path
) -> None:
    live, shadow = sides
    both_ran(live, shadow)
    pair = seed(store, live, shadow, [*observed(live), *observed(shadow)])
    store_comparison(store, pair, compare(store, pair))
    path = workspace(tmp_path)

    # one agreeing run of the two needed, and a second pair whose shadow still runs: not ready (3)
    live2, shadow2 = day_side(live, 2), day_side(shadow, 2)
    both_ran(live2, shadow2)  # the same rows again: 3 updated on each side
    still_running = [*observed(live2), run(shadow2, UnifiedState.RUNNING, DAY, 5)]
    second = seed(store, live2, shadow2, still_running, DAY + timedelta(days=1))
    result = invoke(path)
    assert result.exit_code == 3, result.output
    lines = result.output.splitlines()
    assert lines[0] == "migration of orders: af -> pf (shadow orders__shadow), phase shadowing"
    header = [h.strip() for h in lines[2].split("  ")]
    assert [h for h in header if h] == [
        "logical date",
        "live run (af)",
        "shadow run (pf)",
        "tasks agree?",
        "loads",
        "tables",
        "verdict",
    ]
    first, pending = lines[3], lines[4]
    assert first.startswith("2026-11-01T00:00Z") and "yes 3/3" in first and "yes 1/1" in first
    assert first.endswith("yes 2/2  agree") and f"success {shadow.run_id}" in first
    assert pending.startswith("2026-11-02T00:00Z") and pending.endswith("pending")
    assert "  2026-11-02T00:00Z: pending: live run state success, shadow run state running" in lines
    assert lines[-1] == "not ready: 1 of 2 consecutive agreeing runs (1 compared; 1 pending)"

    # JSON: the same, every comparison in full
    data = json.loads(invoke(path, "--json").output)
    assert (data["ready"], data["agreeing_in_a_row"], data["agree_after"], data["exit_code"]) == (False, 1, 2, 3)
    assert [p["verdict"] for p in data["pairs"]] == ["agree", "pending"]
    assert data["pairs"][0]["comparison"]["tables"][0]["live"]["method"] == ROWS_SHA256
    assert data["pairs"][1]["pending"] == "pending: live run state success, shadow run state running"

    # the second pair's shadow ends: both ended, the comparison is due; then it agrees: ready (0)
    with store.transaction() as session:
        queries.ingest(session, observed(shadow2))
    with store.reading() as session:
        due = migration_report(session, "orders", SETTINGS).pairs[1].pending
    assert due == (
        "pending: live run state success, shadow run state success (both ended: `meta serve` compares them; it "
        "retries while a warehouse is down)"
    )
    comparison = compare(store, second)
    assert comparison.agrees, comparison.to_json()
    assert [str(x.live) for x in comparison.loads] == [str(x.shadow) for x in comparison.loads] == ["+0 ~3 -0"]
    store_comparison(store, second, comparison)
    result = invoke(path)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "ready: the last 2 compared runs agree (agree_after: 2)"
    with store.reading() as session:
        report = migration_report(session, "orders", SETTINGS)
    assert (report.agreeing_in_a_row, report.ready, report.pairs[1].pending) == (2, True, None)

    # a third run whose shadow load differs (a changed row): disagrees (1), the difference named under the table
    live3, shadow3 = day_side(live, 3), day_side(shadow, 3)
    both_ran(live3, shadow3)
    execute(shadow.url, "UPDATE orders SET customer = 'eve' WHERE id = 3")
    third = seed(store, live3, shadow3, [*observed(live3), *observed(shadow3)], DAY + timedelta(days=2))
    store_comparison(store, third, compare(store, third))
    result = invoke(path)
    assert result.exit_code == 1, result.output
    assert any(line.startswith("  2026-11-03T00:00Z: table orders: checksum ") for line in result.output.splitlines())
    assert result.output.splitlines()[-1] == "not ready: 0 of 2 consecutive agreeing runs (3 compared)"
    assert json.loads(invoke(path, "--json").output)["pairs"][2]["comparison"]["verdict"] == "differ"


def test_report_of_an_unknown_pipeline_names_the_migrations_there_are(
    store: Store, sides: tuple[Side, Side], tmp_path: Path
) -> None:
    path = workspace(tmp_path)
    result = CliRunner().invoke(cli, ["migrate", "report", "orders", "--workspace", str(path)])
    assert result.exit_code == 2
    assert "no migration of pipeline 'orders': the store has no migration" in result.output
    live, shadow = sides
    seed(store, live, shadow, [])
    result = CliRunner().invoke(cli, ["migrate", "report", "ordres", "--workspace", str(path)])
    assert result.exit_code == 2
    assert "no migration of pipeline 'ordres': migrations in the store: orders (shadowing)" in result.output
    assert "meta migrate shadow ordres --to BACKEND" in result.output
