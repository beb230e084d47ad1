"""A reference model of the four load modes, and hypothesis strategies for sequences of loads.

Rows are ``{"id": int, "part": "even"|"odd", "v": int}``; ``part`` follows from ``id`` so a partition replace never
collides with another partition's keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from hypothesis import strategies as hs

from meta.builtin.operators.warehouse import WarehouseLoadOptions

DDL = "CREATE TABLE {table} (id INTEGER PRIMARY KEY, part VARCHAR(8) NOT NULL, v INTEGER)"
DDL_NO_KEY = "CREATE TABLE {table} (id INTEGER NOT NULL, part VARCHAR(8) NOT NULL, v INTEGER)"
STEPS = ("staged", "updated", "deleted", "applied")


def part_of(key: int) -> str:
    return "even" if key % 2 == 0 else "odd"


@dataclass(frozen=True)
class Load:
    mode: str
    rows: tuple[tuple[int, int], ...]  # (id, v)
    partition: str | None = None
    as_query: bool = False  # the same rows as a SQL query (exercises the engines' query paths)

    def source(self) -> dict[str, Any]:
        if not self.as_query:
            return {"rows": [{"id": k, "part": part_of(k), "v": v} for k, v in self.rows]}
        selects = [f"SELECT {k} AS id, '{part_of(k)}' AS part, {v} AS v" for k, v in self.rows]
        return {"query": " UNION ALL ".join(selects) or "SELECT 0 AS id, 'even' AS part, 0 AS v WHERE 1 = 0"}

    def options(self, table: str, url: str, **extra: Any) -> WarehouseLoadOptions:
        spec: dict[str, Any] = {"table": table, "mode": self.mode, "url": url, "source": self.source(), **extra}
        if self.mode in ("merge", "append_dedup"):
            spec["keys"] = ["id"]
        if self.mode == "replace_partition":
            spec["partition"] = {"column": "part", "value": self.partition}
        return WarehouseLoadOptions.model_validate(spec)

    def apply(self, state: dict[int, int]) -> dict[int, int]:
        """What the table should hold after this load (id -> v)."""
        new = dict(state)
        if self.mode == "merge":
            new.update(self.rows)
        elif self.mode == "append_dedup":
            for k, v in self.rows:
                new.setdefault(k, v)
        elif self.mode == "replace":
            new = dict(self.rows)
        else:
            new = {k: v for k, v in new.items() if part_of(k) != self.partition}
            new.update(self.rows)
        return new


def _rows(keys: hs.SearchStrategy[int]) -> hs.SearchStrategy[tuple[tuple[int, int], ...]]:
    return hs.dictionaries(keys, hs.integers(-5, 5), max_size=6).map(lambda d: tuple(sorted(d.items())))


@hs.composite
def loads(draw: hs.DrawFn) -> Load:
    mode = draw(hs.sampled_from(["merge", "append_dedup", "replace", "replace_partition"]))
    as_query = draw(hs.booleans())
    if mode == "replace_partition":
        partition = draw(hs.sampled_from(["even", "odd"]))
        parity = 0 if partition == "even" else 1
        return Load(mode, draw(_rows(hs.integers(0, 5).map(lambda i: 2 * i + parity))), partition, as_query)
    return Load(mode, draw(_rows(hs.integers(0, 11))), as_query=as_query)


# Each load of the sequence: how many times it runs (a retry re-runs it) and, optionally, a step at which an earlier
# attempt crashes (an exception inside the transaction).
schedules = hs.lists(
    hs.tuples(loads(), hs.integers(1, 3), hs.none() | hs.sampled_from(STEPS)),
    min_size=1,
    max_size=6,
)


def table_state(url: str, table: str) -> dict[int, int]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT id, part, v FROM {table}")).all()
    finally:
        engine.dispose()
    for key, part, _v in rows:
        assert part == part_of(key)
    return {key: v for key, _part, v in rows}


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


class Crash(Exception):
    """Injected into a load between two of its statements."""


def crash_at(step: str):  # type: ignore[no-untyped-def]
    def hook(current: str) -> None:
        if current == step:
            raise Crash(step)

    return hook
