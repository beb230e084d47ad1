"""The SQL of each load mode, built as SQLAlchemy constructs so every dialect quotes and renders its own syntax.

Merge strategy by dialect (``merge_strategy``):
  postgresql, duckdb, sqlite  ``INSERT ... SELECT ... ON CONFLICT (keys) DO UPDATE`` when a unique index covers
                              exactly the keys (what ON CONFLICT requires), else ``update_insert``
  mysql, mariadb              ``INSERT ... SELECT ... ON DUPLICATE KEY UPDATE`` when the keys are the table's only
                              unique key (MySQL fires on any unique key), else ``update_insert``
  snowflake, bigquery         ``MERGE INTO ... USING staging``
  anything else (redshift)    ``update_insert``: ``UPDATE ... FROM staging`` then ``INSERT ... WHERE NOT EXISTS``
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

ON_CONFLICT_DIALECTS = ("postgresql", "duckdb", "sqlite")
MERGE_DIALECTS = ("snowflake", "bigquery")


def table(name: str, columns: Sequence[str], schema: str | None = None) -> sa.Table:
    """A lightweight Table (untyped columns): enough to render statements; types live in the database."""
    return sa.Table(name, sa.MetaData(), *(sa.Column(c) for c in columns), schema=schema)


def merge_strategy(dialect: str, unique_sets: Sequence[frozenset[str]], keys: Sequence[str]) -> str:
    wanted = frozenset(keys)
    if dialect in ON_CONFLICT_DIALECTS:
        return "on_conflict" if wanted in unique_sets else "update_insert"
    if dialect in ("mysql", "mariadb"):
        return "on_duplicate_key" if list(unique_sets) == [wanted] else "update_insert"
    if dialect in MERGE_DIALECTS:
        return "merge"
    return "update_insert"


def _key_match(target: sa.Table | sa.Alias, source: sa.Table | sa.Subquery, keys: Sequence[str]) -> Any:
    return sa.and_(*(target.c[k] == source.c[k] for k in keys))


def source_select(source: sa.Table | sa.Subquery, columns: Sequence[str], dialect: str) -> sa.Select[Any]:
    select = sa.select(*(source.c[c] for c in columns))
    # SQLite cannot tell "INSERT ... SELECT ... ON CONFLICT" from a join constraint without a WHERE clause.
    return select.where(sa.true()) if dialect == "sqlite" else select


def query_source(query: str, columns: Sequence[str]) -> sa.Subquery:
    """A pipeline author's SQL query as a subquery (the author's SQL is trusted like any sql task)."""
    return sa.select(*(sa.column(c) for c in columns)).select_from(sa.text(f"({query}) AS meta_src")).subquery("src")


def upsert(
    dialect: str,
    strategy: str,
    target: sa.Table,
    source: sa.Table | sa.Subquery,
    columns: Sequence[str],
    keys: Sequence[str],
) -> Executable:
    """One statement that inserts new keys and updates existing ones (strategies on_conflict, on_duplicate_key,
    merge)."""
    updates = [c for c in columns if c not in keys]
    select = source_select(source, columns, dialect)
    if strategy == "on_conflict":
        module = sqlite if dialect == "sqlite" else postgresql
        stmt = module.insert(target).from_select(list(columns), select)
        if not updates:
            return stmt.on_conflict_do_nothing(index_elements=list(keys))
        return stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in updates})
    if strategy == "on_duplicate_key":
        my = mysql.insert(target).from_select(list(columns), select)
        # Updating a key to itself makes "no update columns" a valid statement too.
        return my.on_duplicate_key_update({c: my.inserted[c] for c in (updates or [keys[0]])})
    if strategy == "merge":
        if not isinstance(source, sa.Table):
            raise ValueError("MERGE reads from a staging table")
        return Merge(target, source, list(keys), list(columns))
    raise ValueError(f"no single-statement upsert for strategy {strategy!r}")


def upsert_counting(stmt: Any) -> Any:
    """PostgreSQL only: run the upsert inside a CTE and count (all rows, inserted rows) from RETURNING;
    ``xmax = 0`` marks a freshly inserted row version."""
    cte = stmt.returning(sa.literal_column("(xmax = 0)").label("inserted")).cte("meta_upserted")
    return sa.select(sa.func.count(), sa.func.count().filter(cte.c.inserted))


def update_from(target: sa.Table, source: sa.Table, columns: Sequence[str], keys: Sequence[str]) -> sa.Update | None:
    updates = [c for c in columns if c not in keys]
    if not updates:
        return None
    return sa.update(target).values({c: source.c[c] for c in updates}).where(_key_match(target, source, keys))


def insert_missing(
    target: sa.Table, source: sa.Table, columns: Sequence[str], keys: Sequence[str], dialect: str
) -> sa.Insert:
    """Insert the source rows whose key is not in the target (append_dedup, and the second half of update_insert)."""
    existing = sa.select(sa.literal(1)).select_from(target).where(_key_match(target, source, keys)).exists()
    select = sa.select(*(source.c[c] for c in columns)).where(~existing)
    return sa.insert(target).from_select(list(columns), select)


def insert_all(target: sa.Table, source: sa.Table | sa.Subquery, columns: Sequence[str]) -> sa.Insert:
    return sa.insert(target).from_select(list(columns), sa.select(*(source.c[c] for c in columns)))


def delete_all(target: sa.Table) -> sa.Delete:
    return sa.delete(target)


def delete_partition(target: sa.Table, column: str, value: Any) -> sa.Delete:
    return sa.delete(target).where(target.c[column] == sa.bindparam("partition_value", value))


def outside_partition(source: sa.Table, column: str, value: Any) -> sa.Select[Any]:
    """Staged rows that do not belong to the partition being replaced (a re-run would leave them behind)."""
    col = source.c[column]
    return sa.select(sa.func.count()).where(sa.or_(col.is_(None), col != sa.bindparam("partition_value", value)))


def count_matched(target: sa.Table, source: sa.Table, keys: Sequence[str]) -> sa.Select[Any]:
    existing = sa.select(sa.literal(1)).select_from(target).where(_key_match(target, source, keys)).exists()
    return sa.select(sa.func.count()).select_from(source).where(existing)


def count_rows(source: sa.Table) -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(source)


def duplicate_key(source: sa.Table, keys: Sequence[str]) -> sa.Select[Any]:
    cols = [source.c[k] for k in keys]
    return sa.select(*cols, sa.func.count()).group_by(*cols).having(sa.func.count() > 1).limit(1)


def null_key(source: sa.Table, keys: Sequence[str]) -> sa.Select[Any]:
    return sa.select(sa.literal(1)).where(sa.or_(*(source.c[k].is_(None) for k in keys))).limit(1)


class Merge(Executable, ClauseElement):
    """``MERGE INTO target USING staging ON keys WHEN MATCHED THEN UPDATE ... WHEN NOT MATCHED THEN INSERT ...``
    (Snowflake, BigQuery, SQL Server, PostgreSQL 15+ all accept this core form)."""

    inherit_cache = False

    def __init__(self, target: sa.Table, source: sa.Table, keys: list[str], columns: list[str]):
        self.target, self.source, self.keys, self.columns = target, source, keys, columns


@compiles(Merge)
def _compile_merge(element: Merge, compiler: SQLCompiler, **_kw: Any) -> str:
    q = compiler.preparer.quote
    target = compiler.preparer.format_table(element.target)
    source = compiler.preparer.format_table(element.source)
    on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in element.keys)
    updates = [c for c in element.columns if c not in element.keys]
    sql = f"MERGE INTO {target} AS t USING {source} AS s ON {on}"
    if updates:
        sql += " WHEN MATCHED THEN UPDATE SET " + ", ".join(f"{q(c)} = s.{q(c)}" for c in updates)
    cols = ", ".join(q(c) for c in element.columns)
    values = ", ".join(f"s.{q(c)}" for c in element.columns)
    return sql + f" WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values})"
