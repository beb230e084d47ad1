"""meta's SQLite files (run history, alert store) when several threads start on a fresh file at once."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from meta.builtin.local.state import History
from meta.builtin.operators.alerts.store import AlertStore

THREADS = 8
ROUNDS = 40


def at_once(work: Callable[[int], object]) -> list[BaseException]:
    """Run work(0..THREADS-1) in threads released together; returns what they raised."""
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def start_run(path: Path) -> Callable[[int], object]:
    return lambda i: History(path).start_run("p", f"run{i}", "local", "2026-01-01", "2026-01-01T00:00:00", {})


def claim_alert(path: Path) -> Callable[[int], object]:
    return lambda i: AlertStore(path).claim("slack:team", "p", f"run{i}", "failure", None)


@pytest.mark.parametrize(
    ("work", "table"), [(start_run, "runs"), (claim_alert, "alert_sent")], ids=["run_history", "alert_store"]
)
def test_first_uses_of_a_fresh_file_at_once_all_succeed(
    tmp_path: Path, work: Callable[[Path], Callable[[int], object]], table: str
) -> None:
    # Before sqlite_files, the first connections raced to switch a new file to WAL: 3 rounds in 30 of the run
    # history failed with "database is locked" (seen first as 14 errors in the local conformance runs).
    for round_ in range(ROUNDS):
        path = tmp_path / f"round{round_}" / "meta.db"
        errors = at_once(work(path))
        assert not errors, f"round {round_}: {errors[0]!r}"
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == THREADS


def test_a_deleted_file_is_set_up_again(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    History(path).start_run("p", "first", "local", "2026-01-01", "2026-01-01T00:00:00", {})
    path.unlink()
    History(path).start_run("p", "second", "local", "2026-01-01", "2026-01-01T00:00:00", {})
    with sqlite3.connect(path) as conn:
        assert [r[0] for r in conn.execute("SELECT run_id FROM runs")] == ["second"]
