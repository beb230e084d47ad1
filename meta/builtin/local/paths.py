"""Where the local backend keeps its files inside the state directory (``meta.settings.state_dir()``).

Layout::

    <state dir>/meta.db                                             run history (SQLite)
    <state dir>/warehouse.duckdb                                    default ``warehouse`` connection
    <state dir>/logs/<pipeline>/<run_id>/<task>/attempt-<n>.log     one file per task attempt
"""

from __future__ import annotations

from pathlib import Path


def log_path(base: Path, pipeline_id: str, run_id: str, task_id: str, try_number: int) -> Path:
    return base / "logs" / pipeline_id / run_id / task_id / f"attempt-{try_number}.log"
