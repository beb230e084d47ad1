"""What a target table looks like: columns (type category, nullability, default) and unique key sets.

SQLAlchemy's reflection does not work on DuckDB (duckdb-engine borrows PostgreSQL's catalog queries), so each engine
family is read through its own catalog: information_schema/pg_index, duckdb_constraints(), SQLite pragmas.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type_name: str
    nullable: bool
    has_default: bool

    @property
    def category(self) -> str:
        return type_category(self.type_name)


@dataclass(frozen=True)
class TableInfo:
    schema: str | None
    name: str
    columns: tuple[ColumnInfo, ...]
    unique_sets: tuple[frozenset[str], ...]

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def type_category(type_name: str) -> str:
    """int, float, decimal, text, bool, date, timestamp or other (checked loosely, passed to the database)."""
    t = type_name.lower()
    if t.startswith(("timestamp", "datetime")):
        return "timestamp"
    if t == "date":
        return "date"
    if t.startswith("bool"):
        return "bool"
    if "int" in t and "interval" not in t and "point" not in t:
        return "int"
    if t.startswith(("double", "float", "real")):
        return "float"
    if t.startswith(("numeric", "decimal", "number")):
        return "decimal"
    if "char" in t or t in ("text", "string", "clob") or t.startswith("varchar"):
        return "text"
    return "other"


def describe(conn: sa.Connection, schema: str | None, table: str) -> TableInfo | None:
    """The table's shape, or None when it does not exist."""
    name = conn.dialect.name
    if name == "sqlite":
        return _sqlite(conn, schema, table)
    if name == "duckdb":
        return _duckdb(conn, schema, table)
    if name == "postgresql":
        return _postgres(conn, schema, table)
    raise NotImplementedError(f"warehouse loads run on postgresql, duckdb and sqlite, not {name!r}")


def _postgres(conn: sa.Connection, schema: str | None, table: str) -> TableInfo | None:
    qualified = f'"{schema}"."{table}"' if schema else f'"{table}"'
    oid = conn.execute(sa.text("SELECT to_regclass(:q)::oid"), {"q": qualified}).scalar()
    if oid is None:
        return None
    rows = conn.execute(
        sa.text(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,"
            " a.atthasdef OR a.attidentity <> ''"
            " FROM pg_attribute a WHERE a.attrelid = :oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
        ),
        {"oid": oid},
    ).all()
    # Unique indexes without a predicate: primary keys, unique constraints and plain unique indexes all qualify for
    # ON CONFLICT.
    uniques = conn.execute(
        sa.text(
            "SELECT array_agg(a.attname::text) FROM pg_index i"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = :oid AND i.indisunique AND i.indpred IS NULL GROUP BY i.indexrelid"
        ),
        {"oid": oid},
    ).all()
    return TableInfo(
        schema,
        table,
        tuple(ColumnInfo(r[0], r[1], bool(r[2]), bool(r[3])) for r in rows),
        tuple(frozenset(u[0]) for u in uniques),
    )


def _duckdb(conn: sa.Connection, schema: str | None, table: str) -> TableInfo | None:
    rows = conn.execute(
        sa.text(
            "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns"
            " WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position"
        ),
        {"s": schema or "main", "t": table},
    ).all()
    if not rows:
        return None
    uniques = conn.execute(
        sa.text(
            "SELECT constraint_column_names FROM duckdb_constraints()"
            " WHERE schema_name = :s AND table_name = :t AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
        ),
        {"s": schema or "main", "t": table},
    ).all()
    return TableInfo(
        schema,
        table,
        tuple(ColumnInfo(r[0], r[1], r[2] == "YES", r[3] is not None) for r in rows),
        tuple(frozenset(u[0]) for u in uniques),
    )


def _sqlite(conn: sa.Connection, schema: str | None, table: str) -> TableInfo | None:
    prefix = f'"{schema}".' if schema else ""
    rows = conn.exec_driver_sql(f'PRAGMA {prefix}table_info("{table}")').all()
    if not rows:
        return None
    # table_info: cid, name, type, notnull, dflt_value, pk
    pk = frozenset(r[1] for r in rows if r[5])
    uniques = [pk] if pk else []
    for index in conn.exec_driver_sql(f'PRAGMA {prefix}index_list("{table}")').all():
        # index_list: seq, name, unique, origin, partial
        if index[2] and not index[4]:
            cols = conn.exec_driver_sql(f'PRAGMA {prefix}index_info("{index[1].replace(chr(34), chr(34) * 2)}")').all()
            uniques.append(frozenset(c[2] for c in cols))
    return TableInfo(
        schema,
        table,
        tuple(ColumnInfo(r[1], r[2] or "", not r[3] and not r[5], r[4] is not None) for r in rows),
        tuple(uniques),
    )
