"""The load SQL for warehouses we cannot run here (Snowflake, BigQuery, Redshift, MySQL), compiled by their real
SQLAlchemy dialects, plus the strategy each dialect gets."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from snowflake.sqlalchemy import snowdialect
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy_bigquery import BigQueryDialect
from sqlalchemy_redshift.dialect import RedshiftDialect_psycopg2

from meta.builtin.operators.warehouse import statements as st

COLUMNS = ["id", "region", "amount"]
KEYS = ["id", "region"]
TARGET = st.table("sales", COLUMNS, "analytics")
STAGING = st.table("meta_stg_1", COLUMNS)


def compiled(stmt: object, dialect: sa.Dialect) -> str:
    return " ".join(str(stmt.compile(dialect=dialect)).split())  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("dialect", "uniques", "expected"),
    [
        ("postgresql", [frozenset(KEYS)], "on_conflict"),
        ("postgresql", [frozenset(["id"])], "update_insert"),
        ("duckdb", [frozenset(KEYS)], "on_conflict"),
        ("sqlite", [], "update_insert"),
        ("mysql", [frozenset(KEYS)], "on_duplicate_key"),
        ("mysql", [frozenset(KEYS), frozenset(["amount"])], "update_insert"),
        ("snowflake", [], "merge"),
        ("bigquery", [], "merge"),
        ("redshift", [frozenset(KEYS)], "update_insert"),
    ],
)
def test_strategy_per_dialect(dialect: str, uniques: list[frozenset[str]], expected: str) -> None:
    assert st.merge_strategy(dialect, uniques, KEYS) == expected


def test_snowflake_merge() -> None:
    sql = compiled(st.upsert("snowflake", "merge", TARGET, STAGING, COLUMNS, KEYS), snowdialect.dialect())
    assert sql == (
        "MERGE INTO analytics.sales AS t USING meta_stg_1 AS s ON t.id = s.id AND t.region = s.region "
        "WHEN MATCHED THEN UPDATE SET amount = s.amount "
        "WHEN NOT MATCHED THEN INSERT (id, region, amount) VALUES (s.id, s.region, s.amount)"
    )


def test_bigquery_merge_quotes_with_backticks() -> None:
    sql = compiled(st.upsert("bigquery", "merge", TARGET, STAGING, COLUMNS, KEYS), BigQueryDialect())
    assert sql.startswith("MERGE INTO `analytics`.`sales` AS t USING `meta_stg_1` AS s ON t.`id` = s.`id`")
    assert "WHEN NOT MATCHED THEN INSERT (`id`, `region`, `amount`) VALUES (s.`id`, s.`region`, s.`amount`)" in sql


def test_mysql_on_duplicate_key() -> None:
    sql = compiled(st.upsert("mysql", "on_duplicate_key", TARGET, STAGING, COLUMNS, KEYS), mysql.dialect())
    assert sql.startswith("INSERT INTO analytics.sales (id, region, amount) SELECT meta_stg_1.id")
    assert sql.endswith("ON DUPLICATE KEY UPDATE amount = VALUES(amount)")


def test_redshift_update_then_insert_missing() -> None:
    dialect = RedshiftDialect_psycopg2()
    update = compiled(st.update_from(TARGET, STAGING, COLUMNS, KEYS), dialect)
    assert update == (
        "UPDATE analytics.sales SET amount=meta_stg_1.amount FROM meta_stg_1 "
        "WHERE analytics.sales.id = meta_stg_1.id AND analytics.sales.region = meta_stg_1.region"
    )
    insert = compiled(st.insert_missing(TARGET, STAGING, COLUMNS, KEYS, "redshift"), dialect)
    assert insert.startswith("INSERT INTO analytics.sales (id, region, amount) SELECT meta_stg_1.id")
    assert "WHERE NOT (EXISTS (SELECT" in insert


@pytest.mark.parametrize(
    "dialect", [snowdialect.dialect(), BigQueryDialect(), RedshiftDialect_psycopg2(), mysql.dialect()]
)
def test_every_mode_compiles(dialect: sa.Dialect) -> None:
    statements = [
        st.update_from(TARGET, STAGING, COLUMNS, KEYS),
        st.insert_missing(TARGET, STAGING, COLUMNS, KEYS, dialect.name),
        st.insert_all(TARGET, STAGING, COLUMNS),
        st.delete_all(TARGET),
        st.delete_partition(TARGET, "region", "eu"),
        st.count_matched(TARGET, STAGING, KEYS),
        st.duplicate_key(STAGING, KEYS),
        st.null_key(STAGING, KEYS),
        st.outside_partition(STAGING, "region", "eu"),
    ]
    for stmt in statements:
        assert "sales" in compiled(stmt, dialect) or "meta_stg_1" in compiled(stmt, dialect)


def test_postgres_upsert_counts_through_returning() -> None:
    stmt = st.upsert("postgresql", "on_conflict", TARGET, STAGING, COLUMNS, KEYS)
    sql = compiled(st.upsert_counting(stmt), postgresql.dialect())
    assert "ON CONFLICT (id, region) DO UPDATE SET amount = excluded.amount RETURNING (xmax = 0) AS inserted" in sql
    assert sql.startswith("WITH meta_upserted AS (INSERT INTO analytics.sales")


def test_sqlite_upsert_has_where_for_the_parser() -> None:
    sql = compiled(st.upsert("sqlite", "on_conflict", TARGET, STAGING, COLUMNS, KEYS), sqlite.dialect())
    assert "WHERE 1 = 1 ON CONFLICT (id, region) DO UPDATE SET amount = excluded.amount" in sql


def test_identifiers_needing_quotes_are_quoted() -> None:
    odd = st.table("Order", ["select", "id"], "My Schema")
    sql = compiled(st.delete_partition(odd, "select", 1), postgresql.dialect())
    assert sql.startswith('DELETE FROM "My Schema"."Order" WHERE "My Schema"."Order"."select" = %(partition_value)s')
