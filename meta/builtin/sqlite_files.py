"""Set up a small SQLite file shared by threads and processes (run history, alert store) without lock errors.

Switching a file to WAL needs an exclusive lock, and SQLite reports "database is locked" at once instead of waiting
when another connection holds one: runs or alerts that start together on a fresh file used to fail that way. So
each process sets a file up once, under a lock, retrying while another process does the same.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

# How long a connection waits for another writer (SQLite's busy timeout), and how long setup keeps retrying.
BUSY_TIMEOUT_S = 30.0

# The files this process has set up (absolute paths). Process-wide on purpose, and safe in a server: it records a
# fact about a file on disk (its schema and WAL mode are in place), the same for every run or pipeline using it,
# and holds no data of theirs; a file deleted since is set up again.
_ready: set[Path] = set()
_lock = threading.Lock()


def ensure_ready(path: Path, schema: str, upgrade: Callable[[sqlite3.Connection], None] | None = None) -> None:
    """Create `path` with `schema` (idempotent DDL) in WAL mode, once per process; readers then never block writers.
    ``upgrade`` brings a file written by an older version into the current shape first (it must be idempotent)."""
    key = path.resolve()
    with _lock:
        if key in _ready and path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
        try:
            while True:
                try:
                    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        conn.execute("PRAGMA journal_mode=WAL")
                    if upgrade is not None:
                        upgrade(conn)
                    conn.executescript(schema)
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            conn.close()
        _ready.add(key)
