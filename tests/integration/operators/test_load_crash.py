"""A process killed with SIGKILL in the middle of a big load (inside its transaction) leaves the table exactly as it
was, on PostgreSQL, DuckDB and SQLite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.operators.conftest import PG_URL
from tests.unit.operators.loads_model import DDL, Load, execute, table_state

CHILD = Path(__file__).with_name("crash_child.py")
ROOT = Path(__file__).resolve().parents[3]


def kill_mid_load(url: str, table: str, engine: str) -> None:
    child = subprocess.Popen(
        [sys.executable, str(CHILD), url, table, engine],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        assert line == "IN_TRANSACTION", (
            f"child did not reach the transaction: {line!r} {child.stderr.read() if child.stderr else ''}"
        )
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)


def seed(url: str, table: str) -> dict[int, int]:
    execute(url, DDL.format(table=table))
    from meta.builtin.operators.warehouse import load

    load(Load("merge", ((1, 10), (2, 20), (3, 30))).options(table, url))
    return table_state(url, table)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["duckdb", "sqlite"])
def test_sigkill_mid_load_embedded(engine: str, tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}" if engine == "duckdb" else f"sqlite:///{tmp_path / 'w.sqlite'}"
    before = seed(url, "t")
    kill_mid_load(url, "t", engine)
    assert table_state(url, "t") == before


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_mid_load_postgres(pg_schema: str) -> None:
    table = f"{pg_schema}.t"
    before = seed(PG_URL, table)
    kill_mid_load(PG_URL, table, "postgresql")
    assert table_state(PG_URL, table) == before
