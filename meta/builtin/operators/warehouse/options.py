"""The ``with:`` of ``op: warehouse_load``, validated when the pipeline is loaded."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME = r"^[A-Za-z_][A-Za-z0-9_$]*$"
TABLE = r"^([A-Za-z_][A-Za-z0-9_$]*\.)?[A-Za-z_][A-Za-z0-9_$]*$"
ColumnName = Annotated[str, Field(pattern=NAME, max_length=128)]
Mode = Literal["merge", "replace_partition", "replace", "append_dedup"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class Source(_Strict):
    """Exactly one of: a SQL ``query`` run on the target's engine, inline ``rows`` (dicts), a ``csv`` or ``parquet``
    file path."""

    query: str | None = None
    rows: list[dict[str, Any]] | None = None
    csv: str | None = None
    parquet: str | None = None
    delimiter: str = Field(default=",", min_length=1, max_length=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        given = [name for name in ("query", "rows", "csv", "parquet") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a source needs exactly one of query, rows, csv, parquet; got {', '.join(given) or 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        return next(name for name in ("query", "rows", "csv", "parquet") if getattr(self, name) is not None)


class Partition(_Strict):
    """The partition ``replace_partition`` replaces: rows where ``column`` equals ``value`` (templated, e.g.
    ``{{ ds }}``)."""

    column: ColumnName
    value: Any


class WarehouseLoadOptions(_Strict):
    """``op: warehouse_load``. The target engine is ``url`` (may hold ``${secret:...}``), else the connection named
    ``conn`` (environment variable ``META_CONN_<NAME>``), else DuckDB at ``$META_HOME/warehouse.duckdb``."""

    table: Annotated[str, Field(pattern=TABLE, description="'table' or 'schema.table'")]
    mode: Mode = "merge"
    source: Source
    keys: list[ColumnName] = Field(default_factory=list)
    partition: Partition | None = None
    url: str | None = None
    conn: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]+$")] | None = None
    audit: bool | Annotated[str, Field(pattern=TABLE)] = Field(
        default=False, description="true (table meta_load_audit next to the target) or a table name"
    )

    @model_validator(mode="after")
    def _mode_needs(self) -> WarehouseLoadOptions:
        if self.mode in ("merge", "append_dedup") and not self.keys:
            raise ValueError(f"mode {self.mode!r} needs 'keys': the column(s) identifying a row, e.g. keys: [id]")
        if self.mode == "replace_partition" and self.partition is None:
            raise ValueError("mode 'replace_partition' needs 'partition: {column: ..., value: ...}'")
        if self.mode != "replace_partition" and self.partition is not None:
            raise ValueError(f"'partition' only applies to mode 'replace_partition', not {self.mode!r}")
        if len(set(self.keys)) != len(self.keys):
            raise ValueError(f"'keys' lists a column twice: {self.keys}")
        if self.url is not None and self.conn is not None:
            raise ValueError("give either 'url' or 'conn', not both")
        return self

    @property
    def schema_name(self) -> str | None:
        return self.table.split(".", 1)[0] if "." in self.table else None

    @property
    def table_name(self) -> str:
        return self.table.rsplit(".", 1)[-1]

    def audit_table(self) -> tuple[str | None, str] | None:
        if self.audit is False:
            return None
        if self.audit is True:
            return self.schema_name, "meta_load_audit"
        parts = re.split(r"\.", self.audit, maxsplit=1)
        return (parts[0], parts[1]) if len(parts) == 2 else (self.schema_name, parts[0])
