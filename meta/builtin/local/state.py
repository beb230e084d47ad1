"""Run history of the local backend in SQLite (``<state dir>/meta.db``): tables runs, task_instances, attempts.

Writes are upserts keyed by (pipeline, run id[, task, map index[, try]]), so recording the same run twice is
harmless; a run recorded again under the same run id replaces the earlier record. Task instances and attempts carry
Airflow's map index (-1 unless mapped); an attempt keeps the result it produced (JSON), so results are kept per run
and attempt. Files written before map indexes existed are upgraded in place when first opened (``_upgrade``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from meta.builtin.local.engine import RunOutcome
from meta.builtin.sqlite_files import BUSY_TIMEOUT_S, ensure_ready

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    pipeline_id   TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    state         TEXT NOT NULL,
    backend       TEXT NOT NULL,
    logical_date  TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    ended_at      TEXT,
    params        TEXT NOT NULL,
    log_dir       TEXT,
    PRIMARY KEY (pipeline_id, run_id)
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);
CREATE TABLE IF NOT EXISTS task_instances (
    pipeline_id   TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    map_index     INTEGER NOT NULL DEFAULT -1,
    state         TEXT NOT NULL,
    attempts      INTEGER NOT NULL,
    started_at    TEXT,
    ended_at      TEXT,
    duration_s    REAL,
    error         TEXT,
    PRIMARY KEY (pipeline_id, run_id, task_id, map_index)
);
CREATE TABLE IF NOT EXISTS attempts (
    pipeline_id   TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    map_index     INTEGER NOT NULL DEFAULT -1,
    try_number    INTEGER NOT NULL,
    state         TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    ended_at      TEXT NOT NULL,
    log_path      TEXT,
    error         TEXT,
    result        TEXT,
    PRIMARY KEY (pipeline_id, run_id, task_id, map_index, try_number)
);
"""

# Columns of each table as they were before map indexes and results (the upgrade copies these).
_OLD_COLUMNS = {
    "task_instances": "pipeline_id, run_id, task_id, state, attempts, started_at, ended_at, duration_s, error",
    "attempts": "pipeline_id, run_id, task_id, try_number, state, started_at, ended_at, log_path, error",
}


def _upgrade(conn: sqlite3.Connection) -> None:
    """Give a history file written before map indexes the new primary keys. SQLite cannot change a key in place,
    so each table is copied into its new shape, all in one transaction."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(task_instances)")}
    if "map_index" in columns or not columns:
        return
    renames = "".join(f"ALTER TABLE {t} RENAME TO {t}_before_map_index;\n" for t in _OLD_COLUMNS)
    copies = "".join(
        f"INSERT INTO {t} ({old}) SELECT {old} FROM {t}_before_map_index;\nDROP TABLE {t}_before_map_index;\n"
        for t, old in _OLD_COLUMNS.items()
    )
    conn.executescript(f"BEGIN;\n{renames}{SCHEMA}{copies}COMMIT;")


def _task_instance_rows(outcome: RunOutcome) -> list[tuple[Any, ...]]:
    """One row per task instance: an unmapped task (or a mapped one that never expanded) at map index -1, each
    instance of an expanded mapped task at its own index."""
    r = outcome.result
    rows = []

    def row(task_id: str, map_index: int, state: str, tries: int, error: str | None) -> tuple[Any, ...]:
        mine = outcome.attempts_of(task_id, map_index)
        first, last = (mine[0], mine[-1]) if mine else (None, None)
        return (
            r.pipeline,
            r.run_id,
            task_id,
            map_index,
            state,
            tries,
            first.started_at.isoformat() if first else None,
            last.ended_at.isoformat() if last else None,
            last.duration if last else None,
            error if state != "success" else None,
        )

    for task_id, tr in r.tasks.items():
        if not tr.instances:
            rows.append(row(task_id, -1, str(tr.state), tr.attempts, outcome.errors.get(task_id)))
            continue
        for index, instance in tr.instances.items():
            error = outcome.instance_errors.get((task_id, index))
            rows.append(row(task_id, index, str(instance.state), instance.attempts, error))
    return rows


class History:
    def __init__(self, path: Path):
        self.path = path

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        ensure_ready(self.path, SCHEMA, _upgrade)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        try:
            with conn:  # one transaction
                yield conn
        finally:
            conn.close()

    def start_run(
        self, pipeline_id: str, run_id: str, backend: str, logical_date: str, started_at: str, params: dict[str, Any]
    ) -> None:
        with self._connect() as conn:
            for table in ("task_instances", "attempts"):
                conn.execute(f"DELETE FROM {table} WHERE pipeline_id = ? AND run_id = ?", (pipeline_id, run_id))
            conn.execute(
                """INSERT INTO runs (pipeline_id, run_id, state, backend, logical_date, started_at, ended_at, params)
                   VALUES (?, ?, 'running', ?, ?, ?, NULL, ?)
                   ON CONFLICT (pipeline_id, run_id) DO UPDATE SET state = 'running', backend = excluded.backend,
                     logical_date = excluded.logical_date, started_at = excluded.started_at, ended_at = NULL,
                     params = excluded.params""",
                (
                    pipeline_id,
                    run_id,
                    backend,
                    logical_date,
                    started_at,
                    json.dumps(params, sort_keys=True, default=str),
                ),
            )

    def finish_run(self, outcome: RunOutcome) -> None:
        r = outcome.result
        pid, rid = r.pipeline, r.run_id
        with self._connect() as conn:
            conn.execute(
                "UPDATE runs SET state = ?, ended_at = ?, log_dir = ? WHERE pipeline_id = ? AND run_id = ?",
                (
                    str(r.state),
                    outcome.ended_at.isoformat(),
                    str(outcome.log_dir) if outcome.log_dir else None,
                    pid,
                    rid,
                ),
            )
            conn.executemany(
                """INSERT INTO attempts (pipeline_id, run_id, task_id, map_index, try_number, state, started_at,
                     ended_at, log_path, error, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (pipeline_id, run_id, task_id, map_index, try_number) DO UPDATE SET
                     state = excluded.state, started_at = excluded.started_at, ended_at = excluded.ended_at,
                     log_path = excluded.log_path, error = excluded.error, result = excluded.result""",
                [
                    (
                        pid,
                        rid,
                        a.task_id,
                        a.map_index,
                        a.try_number,
                        str(a.state),
                        a.started_at.isoformat(),
                        a.ended_at.isoformat(),
                        str(a.log_path) if a.log_path else None,
                        a.error,
                        json.dumps(a.result) if a.result is not None else None,
                    )
                    for a in outcome.attempts
                ],
            )
            conn.executemany(
                """INSERT INTO task_instances (pipeline_id, run_id, task_id, map_index, state, attempts, started_at,
                     ended_at, duration_s, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (pipeline_id, run_id, task_id, map_index) DO UPDATE SET state = excluded.state,
                     attempts = excluded.attempts, started_at = excluded.started_at, ended_at = excluded.ended_at,
                     duration_s = excluded.duration_s, error = excluded.error""",
                _task_instance_rows(outcome),
            )

    def mark_failed(self, pipeline_id: str, run_id: str, ended_at: str) -> None:
        """A run that stopped abnormally (interrupted) must not stay 'running' forever."""
        with self._connect() as conn:
            conn.execute(
                "UPDATE runs SET state = 'failed', ended_at = ? "
                "WHERE pipeline_id = ? AND run_id = ? AND state = 'running'",
                (ended_at, pipeline_id, run_id),
            )

    # -- reading ------------------------------------------------------------------------------------------

    def runs(self, pipeline_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Most recent first, with per-state task counts."""
        if not self.path.exists():
            return []
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            where, args = ("WHERE pipeline_id = ?", [pipeline_id]) if pipeline_id else ("", [])
            rows = conn.execute(
                f"SELECT * FROM runs {where} ORDER BY started_at DESC, run_id DESC LIMIT ?", [*args, limit]
            ).fetchall()
            out = []
            for row in rows:
                counts = conn.execute(
                    "SELECT state, COUNT(*) FROM task_instances WHERE pipeline_id = ? AND run_id = ? GROUP BY state",
                    (row["pipeline_id"], row["run_id"]),
                ).fetchall()
                item = dict(row)
                item["params"] = json.loads(item["params"])
                item["task_states"] = dict(sorted((r[0], r[1]) for r in counts))
                out.append(item)
            return out

    def changed_since(self, since: str | None) -> list[dict[str, Any]]:
        """Runs started or ended at or after ``since`` (ISO text; None: all) or still running, each with its
        ``attempts`` and ``task_instances``: what the control plane's local observer reads in one cycle."""
        if not self.path.exists():
            return []
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            if since is None:
                rows = conn.execute("SELECT * FROM runs ORDER BY started_at, run_id").fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM runs WHERE started_at >= ? OR ended_at >= ? OR state = 'running' "
                    "ORDER BY started_at, run_id",
                    (since, since),
                ).fetchall()
            out = []
            for row in rows:
                key = (row["pipeline_id"], row["run_id"])
                item = dict(row)
                item["attempts"] = [
                    dict(a) for a in conn.execute("SELECT * FROM attempts WHERE pipeline_id = ? AND run_id = ?", key)
                ]
                item["task_instances"] = [
                    dict(t)
                    for t in conn.execute("SELECT * FROM task_instances WHERE pipeline_id = ? AND run_id = ?", key)
                ]
                out.append(item)
            return out

    def task_instances(self, pipeline_id: str, run_id: str) -> list[dict[str, Any]]:
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                "SELECT * FROM task_instances WHERE pipeline_id = ? AND run_id = ? "
                "ORDER BY started_at, task_id, map_index",
                (pipeline_id, run_id),
            ).fetchall()
            return [dict(r) for r in rows]

    def attempts(self, pipeline_id: str, run_id: str) -> list[dict[str, Any]]:
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                "SELECT * FROM attempts WHERE pipeline_id = ? AND run_id = ? ORDER BY task_id, map_index, try_number",
                (pipeline_id, run_id),
            ).fetchall()
            return [dict(r) for r in rows]
