"""Where the local backend keeps its files inside the state directory (``meta.settings.state_dir()``).

Layout::

    <state dir>/meta.db                                             run history (SQLite)
    <state dir>/warehouse.duckdb                                    default ``warehouse`` connection
    <state dir>/logs/<pipeline>/<run_id>/<task>/attempt-<n>.log     one file per task attempt
    <state dir>/logs/<pipeline>/<run_id>/<task>/map_index=<i>/attempt-<n>.log   ... of a mapped task's instance
"""

from __future__ import annotations

from pathlib import Path


def log_path(base: Path, pipeline_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> Path:
    folder = base / "logs" / pipeline_id / run_id / task_id
    if map_index >= 0:  # Airflow's layout for mapped task instances
        folder = folder / f"map_index={map_index}"
    return folder / f"attempt-{try_number}.log"
