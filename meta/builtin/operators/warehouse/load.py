"""One warehouse load: check the schema, stage the source, apply the mode, count, audit. All in one transaction."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from meta.builtin.operators.warehouse import statements as st
from meta.builtin.operators.warehouse.engines import create_engine, safe_url, target_url
from meta.builtin.operators.warehouse.errors import LoadError
from meta.builtin.operators.warehouse.introspect import TableInfo, describe
from meta.builtin.operators.warehouse.options import WarehouseLoadOptions
from meta.builtin.operators.warehouse.sources import (
    SourceData,
    check_columns,
    convert_text,
    convert_value,
    read_source,
)
from meta.execution import secrets

log = logging.getLogger("meta.builtin.operators.warehouse")
# Called with a step name between the statements of a load (tests inject failures and kills through it).
StepHook = Callable[[str], None]


@dataclass(frozen=True)
class LoadResult:
    table: str
    mode: str
    inserted: int
    updated: int
    deleted: int
    strategy: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load(
    options: WarehouseLoadOptions,
    *,
    pipeline_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    logger: logging.Logger | None = None,
    on_step: StepHook | None = None,
) -> LoadResult:
    """Run one load. Raises LoadError (nothing written) when the source does not fit the target."""
    url = target_url(options.url, options.conn)
    engine = create_engine(url)
    try:
        with secrets.redacting(), engine.begin() as conn:
            result = _Load(conn, options, on_step or (lambda _step: None), url).run()
            if options.audit_table() is not None:
                _audit(conn, options, result, pipeline_id, run_id, task_id)
    except sa.exc.SQLAlchemyError as exc:
        raise LoadError(
            f"load into {options.table} ({safe_url(url)}) failed and was rolled back: "
            f"{secrets.redact(str(getattr(exc, 'orig', None) or exc)).strip()}"
        ) from None
    finally:
        engine.dispose()
    (logger or log).info(
        "warehouse_load %s mode=%s strategy=%s: inserted=%d updated=%d deleted=%d",
        result.table,
        result.mode,
        result.strategy,
        result.inserted,
        result.updated,
        result.deleted,
    )
    return result


class _Load:
    def __init__(self, conn: sa.Connection, options: WarehouseLoadOptions, on_step: StepHook, url: str):
        self.conn, self.options, self.step, self.url = conn, options, on_step, url
        self.dialect = conn.dialect.name
        self.keys = list(options.keys)

    def run(self) -> LoadResult:
        o = self.options
        info = describe(self.conn, o.schema_name, o.table_name)
        if info is None:
            raise LoadError(
                f"table {o.table} does not exist in {safe_url(self.url)}; create it first (a load never guesses "
                "column types)"
            )
        self.info = info
        data = read_source(o.source, info, self.keys)
        if data.query is not None:
            data.columns = self._query_columns(data.query)
            check_columns(info, data.columns, self.keys, "source query")
        self.columns = data.columns
        self.target = st.table(o.table_name, info.column_names, o.schema_name)
        partition_value = self._check_partition(info, data)
        self._check_rows(data)
        strategy = st.merge_strategy(self.dialect, info.unique_sets, self.keys) if o.mode == "merge" else o.mode

        if o.mode == "merge" and strategy == "on_conflict" and data.query and self.dialect in ("postgresql", "duckdb"):
            # Fast path: no staging copy; the upsert reads the query directly (in the load's transaction snapshot).
            return self._upsert_from_query(data.query, strategy)

        staging, total = self._stage(data)
        self.step("staged")
        self._check_staged(staging, data, partition_value)
        result = self._apply(strategy, staging, total, partition_value)
        self.conn.execute(sa.text(f"DROP TABLE {self._quote(staging.name)}"))
        return result

    # ------------------------------------------------------------------------------------------ checks

    def _quote(self, name: str) -> str:
        return self.conn.dialect.identifier_preparer.quote(name)

    def _query_columns(self, query: str) -> list[str]:
        try:
            result = self.conn.execute(sa.text(f"SELECT * FROM ({query}) AS meta_src WHERE 1 = 0"))
        except sa.exc.SQLAlchemyError as exc:
            raise LoadError(
                f"table {self.options.table}: the source query fails: {getattr(exc, 'orig', exc)}"
            ) from None
        return list(result.keys())

    def _check_partition(self, info: TableInfo, data: SourceData) -> Any:
        partition = self.options.partition
        if partition is None:
            return None
        column = info.column(partition.column)
        if column is None or partition.column not in data.columns:
            raise LoadError(
                f"table {self.options.table}: partition column {partition.column!r} must be in the target "
                f"({info.column_names}) and in the source ({data.columns})"
            )
        raw = partition.value
        try:
            value = convert_text(raw, column) if isinstance(raw, str) else convert_value(raw, column)
        except ValueError:
            raise LoadError(
                f"table {self.options.table}: partition value {raw!r} does not fit column {column.name!r} "
                f"({column.type_name})"
            ) from None
        if data.rows is not None:
            index = data.columns.index(partition.column)
            for number, row in enumerate(data.rows, start=1):
                if row[index] != value:
                    raise LoadError(
                        f"table {self.options.table}: source row {number} has {partition.column}={row[index]!r}, "
                        f"outside the partition {value!r} being replaced; nothing was written"
                    )
        return value

    def _check_rows(self, data: SourceData) -> None:
        if data.rows is None or not self.keys:
            return
        positions = [data.columns.index(k) for k in self.keys]
        seen: set[tuple[Any, ...]] = set()
        for number, row in enumerate(data.rows, start=1):
            key = tuple(row[i] for i in positions)
            if any(v is None for v in key):
                raise LoadError(
                    f"table {self.options.table}: source row {number} has a NULL key "
                    f"{dict(zip(self.keys, key, strict=True))}; keys identify rows and cannot be NULL"
                )
            if key in seen:
                raise LoadError(
                    f"table {self.options.table}: the source has more than one row for key "
                    f"{dict(zip(self.keys, key, strict=True))} (row {number}); keys must be unique in a load"
                )
            seen.add(key)

    def _check_staged(self, staging: sa.Table, data: SourceData, partition_value: Any) -> None:
        if data.query is None:
            return  # rows were checked in Python
        if self.keys:
            if self.conn.execute(st.null_key(staging, self.keys)).first() is not None:
                raise LoadError(f"table {self.options.table}: the source query returns a NULL key ({self.keys})")
            dup = self.conn.execute(st.duplicate_key(staging, self.keys)).first()
            if dup is not None:
                key = dict(zip(self.keys, dup[: len(self.keys)], strict=True))
                raise LoadError(
                    f"table {self.options.table}: the source query returns {dup[-1]} rows for key {key}; keys must "
                    "be unique in a load"
                )
        if self.options.partition is not None:
            outside = self.conn.execute(st.outside_partition(staging, self.options.partition.column, partition_value))
            count = outside.scalar_one()
            if count:
                raise LoadError(
                    f"table {self.options.table}: the source query returns {count} row(s) outside the partition "
                    f"{self.options.partition.column}={partition_value!r}; nothing was written"
                )

    # ------------------------------------------------------------------------------------------ staging

    def _stage(self, data: SourceData) -> tuple[sa.Table, int]:
        name = f"meta_stg_{uuid.uuid4().hex[:12]}"
        # Column types are spelled as the database's own catalog reports them. Not CREATE TABLE ... AS SELECT ...
        # WHERE false: DuckDB 2.0 keeps that empty result's statistics and then prunes joins against the staged rows.
        definitions = []
        for column in self.columns:
            info = self.info.column(column)
            assert info is not None
            definitions.append(f"{self._quote(column)} {info.type_name}".rstrip())
        self.conn.execute(sa.text(f"CREATE TEMPORARY TABLE {self._quote(name)} ({', '.join(definitions)})"))
        staging = st.table(name, self.columns)
        if data.query is not None:
            self.conn.execute(st.insert_all(staging, st.query_source(data.query, self.columns), self.columns))
            return staging, self.conn.execute(st.count_rows(staging)).scalar_one()
        assert data.rows is not None
        self._bulk_insert(staging, data.rows)
        return staging, len(data.rows)

    def _bulk_insert(self, staging: sa.Table, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.dialect == "postgresql":
            from psycopg import sql

            raw = self.conn.connection.driver_connection
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(staging.name), sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)
            )
            with raw.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row(row)
            return
        if self.dialect == "duckdb" and _arrow_available():
            import pyarrow as pa

            arrays = {c: [row[i] for row in rows] for i, c in enumerate(self.columns)}
            view = f"{staging.name}_arrow"
            raw = self.conn.connection.driver_connection
            raw.register(view, pa.table(arrays))  # type: ignore[union-attr]
            try:
                cols = ", ".join(self._quote(c) for c in self.columns)
                self.conn.exec_driver_sql(f"INSERT INTO {self._quote(staging.name)} ({cols}) SELECT {cols} FROM {view}")
            finally:
                raw.unregister(view)  # type: ignore[union-attr]
            return
        self.conn.execute(sa.insert(staging), [dict(zip(self.columns, row, strict=True)) for row in rows])

    # ------------------------------------------------------------------------------------------ modes

    def _apply(self, strategy: str, staging: sa.Table, total: int, partition_value: Any) -> LoadResult:
        mode, execute = self.options.mode, self.conn.execute
        inserted = updated = deleted = 0
        if mode == "merge":
            updated = execute(st.count_matched(self.target, staging, self.keys)).scalar_one()
            inserted = total - updated
            if strategy == "update_insert":
                update = st.update_from(self.target, staging, self.columns, self.keys)
                if update is not None:
                    execute(update)
                self.step("updated")
                execute(st.insert_missing(self.target, staging, self.columns, self.keys, self.dialect))
            else:
                execute(st.upsert(self.dialect, strategy, self.target, staging, self.columns, self.keys))
        elif mode == "append_dedup":
            inserted = total - execute(st.count_matched(self.target, staging, self.keys)).scalar_one()
            execute(st.insert_missing(self.target, staging, self.columns, self.keys, self.dialect))
        elif mode in ("replace_partition", "replace"):
            if mode == "replace":
                deleted = execute(st.count_rows(self.target)).scalar_one()
                execute(st.delete_all(self.target))
            else:
                assert self.options.partition is not None
                column = self.options.partition.column
                condition = self.target.c[column] == sa.bindparam("partition_value", partition_value)
                deleted = execute(sa.select(sa.func.count()).select_from(self.target).where(condition)).scalar_one()
                execute(st.delete_partition(self.target, column, partition_value))
            self.step("deleted")
            execute(st.insert_all(self.target, staging, self.columns))
            inserted = total
        self.step("applied")
        return LoadResult(self.options.table, mode, inserted, updated, deleted, strategy)

    def _upsert_from_query(self, query: str, strategy: str) -> LoadResult:
        source = st.query_source(query, self.columns)
        if any(c.nullable for k in self.keys if (c := self.info.column(k)) is not None):
            if self.conn.execute(st.null_key(source, self.keys)).first() is not None:  # type: ignore[arg-type]
                raise LoadError(f"table {self.options.table}: the source query returns a NULL key ({self.keys})")
        stmt = st.upsert(self.dialect, strategy, self.target, source, self.columns, self.keys)
        self.step("staged")
        if self.dialect == "postgresql":
            # PostgreSQL refuses duplicate keys itself and reports inserted vs updated through RETURNING.
            try:
                total, inserted = self.conn.execute(st.upsert_counting(stmt)).one()
            except sa.exc.ProgrammingError as exc:
                if "a second time" in str(exc.orig):
                    raise LoadError(
                        f"table {self.options.table}: the source query returns more than one row for the same key "
                        f"{self.keys}; keys must be unique in a load; nothing was written"
                    ) from None
                raise
            updated = total - inserted
        else:
            # DuckDB silently applies one of several source rows sharing a key, and reports the rows it applied. So:
            # fewer applied than source rows means duplicate keys (refused, rolled back); the table's growth is the
            # inserted count. Cheap counts instead of a join against the target.
            rows_before = self.conn.execute(st.count_rows(self.target)).scalar_one()
            total = self.conn.execute(sa.select(sa.func.count()).select_from(source)).scalar_one()
            applied = self.conn.execute(stmt).rowcount
            if applied != total:
                dup = self.conn.execute(st.duplicate_key(source, self.keys)).first()  # type: ignore[arg-type]
                if dup is None:
                    raise LoadError(
                        f"table {self.options.table}: the database applied {applied} of {total} source rows; "
                        "nothing was written"
                    )
                key = dict(zip(self.keys, dup[: len(self.keys)], strict=True))
                raise LoadError(
                    f"table {self.options.table}: the source query returns {dup[-1]} rows for key {key}; keys must "
                    "be unique in a load; nothing was written"
                )
            inserted = self.conn.execute(st.count_rows(self.target)).scalar_one() - rows_before
            updated = total - inserted
        self.step("applied")
        return LoadResult(self.options.table, "merge", inserted, updated, 0, strategy)


def _arrow_available() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def _audit(
    conn: sa.Connection,
    options: WarehouseLoadOptions,
    result: LoadResult,
    pipeline_id: str | None,
    run_id: str | None,
    task_id: str | None,
) -> None:
    """One row per (pipeline, run, task), replaced on re-run, written in the load's own transaction."""
    where = options.audit_table()
    assert where is not None
    if not (pipeline_id and run_id and task_id):
        raise LoadError(f"table {options.table}: 'audit' needs the pipeline, run and task ids (run the load as a task)")
    schema, name = where
    preparer = conn.dialect.identifier_preparer
    qualified = (preparer.quote_schema(schema) + "." if schema else "") + preparer.quote(name)
    create = sa.text(
        f"CREATE TABLE IF NOT EXISTS {qualified} (pipeline_id VARCHAR(250) NOT NULL, run_id VARCHAR(250) NOT NULL,"
        " task_id VARCHAR(250) NOT NULL, target_table VARCHAR(500) NOT NULL, mode VARCHAR(32) NOT NULL,"
        " inserted BIGINT NOT NULL, updated BIGINT NOT NULL, deleted BIGINT NOT NULL,"
        " loaded_at VARCHAR(40) NOT NULL,"
        " PRIMARY KEY (pipeline_id, run_id, task_id))"
    )
    if conn.dialect.name == "postgresql":
        # Two first loads at once: PostgreSQL's IF NOT EXISTS checks before the other's CREATE commits, so the
        # second fails on the catalog's unique index. In a savepoint, that failure leaves the load going, and the
        # table the other load created is there for the next statement.
        try:
            with conn.begin_nested():
                conn.execute(create)
        except sa.exc.IntegrityError:
            pass
    else:
        conn.execute(create)
    audit = st.table(
        name,
        ["pipeline_id", "run_id", "task_id", "target_table", "mode", "inserted", "updated", "deleted", "loaded_at"],
        schema,
    )
    conn.execute(
        sa.delete(audit).where(audit.c.pipeline_id == pipeline_id, audit.c.run_id == run_id, audit.c.task_id == task_id)
    )
    conn.execute(
        sa.insert(audit).values(
            pipeline_id=pipeline_id,
            run_id=run_id,
            task_id=task_id,
            target_table=options.table,
            mode=result.mode,
            inserted=result.inserted,
            updated=result.updated,
            deleted=result.deleted,
            loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
    )
