"""Where the local backend keeps its state: ``$META_HOME`` if set, else ``./.meta`` (relative to the working dir).

Layout::

    <state dir>/meta.db                                             run history (SQLite)
    <state dir>/warehouse.duckdb                                    default ``warehouse`` connection
    <state dir>/logs/<pipeline>/<run_id>/<task>/attempt-<n>.log     one file per task attempt
"""

from __future__ import annotations

import os
from pathlib import Path

STATE_DIR_ENV = "META_HOME"


def state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or ".meta").expanduser()


def log_path(base: Path, pipeline_id: str, run_id: str, task_id: str, try_number: int) -> Path:
    return base / "logs" / pipeline_id / run_id / task_id / f"attempt-{try_number}.log"
