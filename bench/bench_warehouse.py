"""Merge 200k rows (half updates, half new) into a 1M-row table: meta's ``warehouse_load`` vs a hand-written
``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` from the same staged source table, same run, on PostgreSQL and DuckDB.

    .venv/bin/python -m bench.bench_warehouse [--rows 1000000] [--merge 200000] [--repeat 3]

PostgreSQL work happens in a scratch schema (dropped at the end); DuckDB in a temporary file. Each timing starts from
the same 1M-row table (restored between runs, untimed). Target: ratio meta / hand-written <= 1.2.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import sqlalchemy as sa

from meta.builtin.operators.warehouse import WarehouseLoadOptions, load

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
COLUMNS = "id, part, v, note"
HAND_UPSERT = (
    "INSERT INTO {t} ({c}) SELECT {c} FROM {s} "
    "ON CONFLICT (id) DO UPDATE SET part = excluded.part, v = excluded.v, note = excluded.note"
)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(
    reset: Callable[[], None], hand: Callable[[], None], meta: Callable[[], None], repeat: int
) -> tuple[list[float], list[float]]:
    """Time both, each from a freshly restored table; who goes first alternates so caches favour neither."""
    hand_times: list[float] = []
    meta_times: list[float] = []
    for i in range(repeat):
        order = [(hand, hand_times), (meta, meta_times)]
        for fn, times in order if i % 2 == 0 else reversed(order):
            reset()
            times.append(timed(fn))
    return hand_times, meta_times


def bench_postgres(rows: int, merge: int, repeat: int) -> tuple[list[float], list[float]]:
    schema = f"meta_bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    base, target, src = f"{schema}.base", f"{schema}.t", f"{schema}.src"
    first_new = rows  # ids below exist already (updates), ids from here on are new
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        conn.exec_driver_sql(f"CREATE TABLE {base} (id BIGINT PRIMARY KEY, part TEXT NOT NULL, v BIGINT, note TEXT)")
        conn.exec_driver_sql(
            f"INSERT INTO {base} SELECT g, 'p' || mod(g, 10), g, 'row ' || g FROM generate_series(0, {rows - 1}) g"
        )
        conn.exec_driver_sql(f"CREATE TABLE {src} AS SELECT * FROM {base} WHERE false")
        conn.exec_driver_sql(
            f"INSERT INTO {src} SELECT g, 'q' || mod(g, 7), -g, 'merged ' || g "
            f"FROM generate_series({first_new - merge // 2}, {first_new + merge // 2 - 1}) g"
        )
    options = WarehouseLoadOptions(
        table=target, url=PG_URL, mode="merge", keys=["id"], source={"query": f"SELECT {COLUMNS} FROM {src}"}
    )

    def reset() -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {target}")
            conn.exec_driver_sql(f"CREATE TABLE {target} (LIKE {base} INCLUDING ALL)")
            conn.exec_driver_sql(f"INSERT INTO {target} SELECT * FROM {base}")
            conn.exec_driver_sql(f"ANALYZE {target}")

    def hand() -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql(HAND_UPSERT.format(t=target, s=src, c=COLUMNS))

    def meta() -> None:
        result = load(options)
        assert (result.inserted, result.updated) == (merge // 2, merge // 2), result

    try:
        hand_times, meta_times = alternate(reset, hand, meta, repeat)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()
    return hand_times, meta_times


def bench_duckdb(rows: int, merge: int, repeat: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.duckdb"
        first_new = rows  # ids below exist already (updates), ids from here on are new
        with duckdb.connect(str(path)) as con:
            con.execute("CREATE TABLE base (id BIGINT PRIMARY KEY, part VARCHAR NOT NULL, v BIGINT, note VARCHAR)")
            con.execute(
                f"INSERT INTO base SELECT range, 'p' || (range % 10), range, 'row ' || range FROM range({rows})"
            )
            con.execute("CREATE TABLE src AS SELECT * FROM base WHERE false")
            con.execute(
                f"INSERT INTO src SELECT range, 'q' || (range % 7), -range, 'merged ' || range "
                f"FROM range({first_new - merge // 2}, {first_new + merge // 2})"
            )
        options = WarehouseLoadOptions(
            table="t",
            url=f"duckdb:///{path}",
            mode="merge",
            keys=["id"],
            source={"query": f"SELECT {COLUMNS} FROM src"},
        )

        def reset() -> None:
            with duckdb.connect(str(path)) as con:
                con.execute("DROP TABLE IF EXISTS t")
                con.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, part VARCHAR NOT NULL, v BIGINT, note VARCHAR)")
                con.execute("INSERT INTO t SELECT * FROM base")
                con.execute("CHECKPOINT")

        def hand() -> None:
            with duckdb.connect(str(path)) as con:
                con.execute("BEGIN")
                con.execute(HAND_UPSERT.format(t="t", s="src", c=COLUMNS))
                con.execute("COMMIT")

        def meta() -> None:
            result = load(options)
            assert (result.inserted, result.updated) == (merge // 2, merge // 2), result

        return alternate(reset, hand, meta, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--merge", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"merge {args.merge:,} rows (half new) into {args.rows:,}; {args.repeat} runs each, alternating")
    header = ("engine", "hand median s", "meta median s", "ratio", "hand min s", "meta min s", "ratio")
    widths = (11, 15, 15, 7, 12, 12, 7)
    print("".join(f"{h:<{w}}" if i == 0 else f"{h:>{w}}" for i, (h, w) in enumerate(zip(header, widths, strict=True))))
    for name, bench in (("postgresql", bench_postgres), ("duckdb", bench_duckdb)):
        hand, meta = bench(args.rows, args.merge, args.repeat)
        hm, mm, hb, mb = statistics.median(hand), statistics.median(meta), min(hand), min(meta)
        cells = (f"{hm:.3f}", f"{mm:.3f}", f"{mm / hm:.2f}", f"{hb:.3f}", f"{mb:.3f}", f"{mb / hb:.2f}")
        print(f"{name:<11}" + "".join(f"{c:>{w}}" for c, w in zip(cells, widths[1:], strict=True)), flush=True)


if __name__ == "__main__":
    main()
