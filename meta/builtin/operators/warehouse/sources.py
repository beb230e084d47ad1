"""Reading a load's source into typed Python rows, checked against the target table before anything is written."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from meta.builtin.operators.warehouse.errors import LoadError
from meta.builtin.operators.warehouse.introspect import ColumnInfo, TableInfo

TRUE_WORDS = {"true", "t", "1", "yes", "y"}
FALSE_WORDS = {"false", "f", "0", "no", "n"}


@dataclass
class SourceData:
    """Either ``query`` (runs on the target engine) or ``columns`` + ``rows`` (typed Python values)."""

    columns: list[str]
    rows: list[tuple[Any, ...]] | None = None
    query: str | None = None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def convert_text(text: str, column: ColumnInfo) -> Any:
    """A CSV cell to the Python value the target column takes; '' is NULL."""
    if text == "":
        return None
    category = column.category
    if category == "int":
        return int(text)
    if category == "float":
        return float(text)
    if category == "decimal":
        try:
            return Decimal(text)
        except InvalidOperation:
            raise ValueError(text) from None
    if category == "bool":
        lowered = text.strip().lower()
        if lowered in TRUE_WORDS:
            return True
        if lowered in FALSE_WORDS:
            return False
        raise ValueError(text)
    if category == "date":
        return date.fromisoformat(text)
    if category == "timestamp":
        return datetime.fromisoformat(text)
    return text


def convert_value(value: Any, column: ColumnInfo) -> Any:
    """Check a Python value against the target column; ISO strings become dates. Raises ValueError when it does not
    fit."""
    if value is None:
        return None
    category = column.category
    if category == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif category in ("float", "decimal"):
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return value
    elif category == "text":
        if isinstance(value, str):
            return value
    elif category == "bool":
        if isinstance(value, bool):
            return value
    elif category == "date":
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str):
            return date.fromisoformat(value)
    elif category == "timestamp":
        if isinstance(value, datetime):
            return value
        if isinstance(value, date):
            return datetime.combine(value, time())
        if isinstance(value, str):
            return datetime.fromisoformat(value)
    else:
        return value
    raise ValueError(value)


def _type_error(table: TableInfo, column: ColumnInfo, row_number: int, value: Any, origin: str) -> LoadError:
    return LoadError(
        f"table {_name(table)}: {origin} row {row_number}, column {column.name!r}: got {type(value).__name__} "
        f"{_short(value)}, expected a value for target column type {column.type_name} ({column.category}); "
        "nothing was written"
    )


def _name(table: TableInfo) -> str:
    return f"{table.schema}.{table.name}" if table.schema else table.name


def check_columns(table: TableInfo, columns: list[str], keys: list[str], origin: str) -> None:
    """Every source column exists in the target, keys are present, required target columns are supplied."""
    target = table.column_names
    unknown = [c for c in columns if c not in target]
    if unknown:
        raise LoadError(
            f"table {_name(table)}: the {origin} has column(s) {unknown} the target lacks; target columns: {target}; "
            "nothing was written"
        )
    if len(set(columns)) != len(columns):
        raise LoadError(f"table {_name(table)}: the {origin} names a column twice: {columns}")
    missing_keys = [k for k in keys if k not in columns]
    if missing_keys:
        raise LoadError(
            f"table {_name(table)}: key column(s) {missing_keys} are missing from the {origin} (its columns: "
            f"{columns}); nothing was written"
        )
    required = [c.name for c in table.columns if not c.nullable and not c.has_default and c.name not in columns]
    if required:
        raise LoadError(
            f"table {_name(table)}: the {origin} lacks NOT NULL column(s) {required} that have no default; "
            "nothing was written"
        )


def read_source(source: Any, table: TableInfo, keys: list[str]) -> SourceData:
    """Read and type-check ``source`` (a ``Source`` option model) against ``table``."""
    kind = source.kind
    if kind == "query":
        return SourceData(columns=[], query=source.query)
    if kind == "rows":
        return _from_dicts(source.rows, table, keys, "source")
    if kind == "csv":
        return _from_csv(Path(source.csv), source.delimiter, table, keys)
    return _from_parquet(Path(source.parquet), table, keys)


def _from_dicts(dicts: list[dict[str, Any]], table: TableInfo, keys: list[str], origin: str) -> SourceData:
    if not dicts:
        unknown = [k for k in keys if table.column(k) is None]
        if unknown:
            raise LoadError(f"table {_name(table)}: key column(s) {unknown} are not in the target {table.column_names}")
        # No rows: nothing to check; stage the target's own shape.
        return SourceData(columns=table.column_names, rows=[])
    columns: list[str] = list(dicts[0])
    for number, row in enumerate(dicts, start=1):
        if set(row) != set(columns):
            raise LoadError(
                f"table {_name(table)}: {origin} row {number} has columns {sorted(row)}, the first row has "
                f"{sorted(columns)}; every row needs the same columns"
            )
    check_columns(table, columns, keys, origin)
    infos = [table.column(c) for c in columns]
    rows = []
    for number, row in enumerate(dicts, start=1):
        values = []
        for info in infos:
            assert info is not None
            value = row[info.name]
            try:
                values.append(convert_value(value, info))
            except ValueError:
                raise _type_error(table, info, number, value, origin) from None
        rows.append(tuple(values))
    return SourceData(columns=columns, rows=rows)


def _from_csv(path: Path, delimiter: str, table: TableInfo, keys: list[str]) -> SourceData:
    if not path.is_file():
        raise LoadError(f"table {_name(table)}: CSV source {str(path)!r} does not exist")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise LoadError(f"table {_name(table)}: CSV source {str(path)!r} is empty; expected a header row")
        columns = [h.strip() for h in header]
        origin = f"CSV file {path.name!r}"
        check_columns(table, columns, keys, origin)
        infos = [table.column(c) for c in columns]
        rows = []
        for line_number, record in enumerate(reader, start=2):
            if not record:
                continue
            if len(record) != len(columns):
                raise LoadError(
                    f"table {_name(table)}: {origin} line {line_number} has {len(record)} fields, the header has "
                    f"{len(columns)}"
                )
            values = []
            for info, text in zip(infos, record, strict=True):
                assert info is not None
                try:
                    values.append(convert_text(text, info))
                except ValueError:
                    raise LoadError(
                        f"table {_name(table)}: {origin} line {line_number}, column {info.name!r}: got {_short(text)}, "
                        f"expected a value for target column type {info.type_name} ({info.category}); "
                        "nothing was written"
                    ) from None
            rows.append(tuple(values))
    return SourceData(columns=columns, rows=rows)


def _from_parquet(path: Path, table: TableInfo, keys: list[str]) -> SourceData:
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise LoadError("Parquet sources need pyarrow: pip install 'meta-orchestrator[files]'") from None
    if not path.is_file():
        raise LoadError(f"table {_name(table)}: Parquet source {str(path)!r} does not exist")
    arrow = pq.read_table(path)
    data = _from_dicts(arrow.to_pylist(), table, keys, f"Parquet file {path.name!r}")
    if not data.rows:
        check_columns(table, list(arrow.column_names), keys, f"Parquet file {path.name!r}")
    return data
