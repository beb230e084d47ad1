"""An order-independent checksum and the row count of one table, to compare a live table with its shadow copy.

Two methods, chosen per pair so both sides are always summed the same way (``method_for``):

- ``postgresql-md5`` (both sides PostgreSQL): computed in the database, nothing fetched:
  ``md5(string_agg(md5(ROW(cols)::text), '' ORDER BY ...))`` over the columns in name order.
- ``rows-sha256`` (DuckDB, SQLite, or a mixed pair): rows are streamed to Python, each row's values are written in a
  canonical text form (``canonical``) and hashed with SHA-256, and the hashes are added modulo 2**256. The sum does
  not depend on row order and counts duplicates, and it needs constant memory; but every row crosses the wire, so it
  is meant for the small tables of a shadow run (a few hundred thousand rows), not for a warehouse's fact tables.

Columns are read in name order in both methods, so two tables with the same columns in another order agree. The
checksum is of the table's contents when it is taken: ``compare_pair`` takes it right after both runs ended.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from meta.builtin.operators.warehouse.introspect import describe

POSTGRES_MD5 = "postgresql-md5"
ROWS_SHA256 = "rows-sha256"
_MODULUS = 2**256
_FETCH = 10_000


@dataclass(frozen=True)
class TableChecksum:
    rows: int
    checksum: str
    method: str
    columns: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "checksum": self.checksum, "method": self.method, "columns": list(self.columns)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableChecksum:
        return cls(int(data["rows"]), str(data["checksum"]), str(data["method"]), tuple(data.get("columns") or ()))


class TableMissing(LookupError):
    """The table does not exist on that connection."""


def method_for(*dialects: str) -> str:
    """The in-database method only when every side is PostgreSQL; otherwise the portable one on every side."""
    return POSTGRES_MD5 if all(d == "postgresql" for d in dialects) else ROWS_SHA256


def split_table(table: str) -> tuple[str | None, str]:
    """``schema.table`` -> (schema, table); ``table`` -> (None, table)."""
    schema, _, name = table.rpartition(".")
    return (schema or None), name


def table_exists(engine: sa.Engine, table: str) -> bool:
    schema, name = split_table(table)
    with engine.connect() as conn:
        return describe(conn, schema, name) is not None


def checksum(engine: sa.Engine, table: str, method: str, partition: tuple[str, Any] | None = None) -> TableChecksum:
    """The checksum of ``table`` (``schema.table`` or a name the connection resolves, e.g. through its search_path),
    or of its rows where ``partition`` = (column, value): the slice one run of a ``replace_partition`` load owns, so
    rows of other runs (the live side's history from before shadowing began) do not count.
    Raises TableMissing when there is no such table."""
    schema, name = split_table(table)
    with engine.connect() as conn:
        # the loads' own introspection: SQLAlchemy's inspector does not work on DuckDB (it asks pg_catalog)
        info = describe(conn, schema, name)
        if info is None:
            raise TableMissing(table)
        columns = tuple(sorted(info.column_names))
        preparer = conn.dialect.identifier_preparer
        qualified = (preparer.quote_schema(schema) + "." if schema else "") + preparer.quote(name)
        cols = ", ".join(preparer.quote(c) for c in columns)
        where = ""
        if partition is not None:
            column, value = partition
            literal = sa.literal(value).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
            where = f" WHERE {preparer.quote(column)} = {literal}"
        if method == POSTGRES_MD5:
            row = _raw(
                conn,
                f"SELECT count(*), md5(coalesce(string_agg(h, '' ORDER BY h), '')) "
                f"FROM (SELECT md5(ROW({cols})::text) AS h FROM {qualified}{where}) AS meta_rows",
            ).one()
            return TableChecksum(int(row[0]), str(row[1]), method, columns)
        result = _raw(conn, f"SELECT {cols} FROM {qualified}{where}")
        total = count = 0
        while batch := result.fetchmany(_FETCH):
            for values in batch:
                digest = hashlib.sha256(canonical(values).encode("utf-8")).digest()
                total = (total + int.from_bytes(digest, "big")) % _MODULUS
                count += 1
        return TableChecksum(count, f"{total:064x}", method, columns)


def _raw(conn: sa.Connection, sql: str) -> Any:  # a CursorResult of untyped rows
    """A statement without parameters, as written (``text()`` would take a ``:name`` in a quoted column name for a
    parameter). The identifier preparer has already doubled any ``%`` for drivers that read ``%s`` (psycopg)."""
    return conn.exec_driver_sql(sql)


def canonical(values: Any) -> str:
    """One row as text that is the same for equal values whatever the driver returns (1.50 and 1.5 as decimals,
    a date and its ISO text are not confused: JSON keeps strings quoted)."""
    return json.dumps([_value(v) for v in values], ensure_ascii=False, separators=(",", ":"))


def _value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return "d:" + (format(value.normalize(), "f") if value.is_finite() else str(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return "t:" + value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "b:" + bytes(value).hex()
    if isinstance(value, dt.timedelta):
        return f"i:{value.total_seconds()}"
    return "s:" + str(value)
