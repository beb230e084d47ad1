"""The alert store: which alerts were sent (dedup) and when each channel last sent (rate limit).

A small SQLite file, ``$META_ALERT_STORE`` or ``$META_HOME/alerts.db``, shared by every process on the machine.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from meta import settings
from meta.builtin.sqlite_files import BUSY_TIMEOUT_S, ensure_ready

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_sent (channel TEXT NOT NULL, pipeline_id TEXT NOT NULL, run_id TEXT NOT NULL,
    event_key TEXT NOT NULL, status TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (channel, pipeline_id, run_id, event_key));
CREATE TABLE IF NOT EXISTS alert_sends (channel TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS alert_sends_channel_at ON alert_sends (channel, at);
"""

# A claim older than this is taken over: the process that made it died between claiming and sending.
STALE_CLAIM_SECONDS = 300.0


class AlertStore:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else settings.alert_store()

    def _connect(self) -> sqlite3.Connection:
        ensure_ready(self.path, SCHEMA)
        return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)

    def claim(
        self, channel: str, pipeline_id: str, run_id: str, event_key: str, limit: tuple[int, float] | None
    ) -> str:
        """``claimed`` (go ahead and send), ``duplicate`` (already sent or being sent) or ``rate_limited``.
        One IMMEDIATE transaction, so two processes racing for the same alert cannot both win."""
        now = time.time()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "SELECT status, at FROM alert_sent WHERE channel=? AND pipeline_id=? AND run_id=? AND event_key=?",
                (channel, pipeline_id, run_id, event_key),
            ).fetchone()
            if row is not None and (row[0] == "sent" or now - row[1] < STALE_CLAIM_SECONDS):
                conn.execute("ROLLBACK")
                return "duplicate"
            if limit is not None:
                count, window = limit
                recent = conn.execute(
                    "SELECT count(*) FROM alert_sends WHERE channel=? AND at > ?", (channel, now - window)
                ).fetchone()[0]
                if recent >= count:
                    conn.execute("ROLLBACK")
                    return "rate_limited"
            conn.execute(
                "INSERT OR REPLACE INTO alert_sent VALUES (?, ?, ?, ?, 'sending', ?)",
                (channel, pipeline_id, run_id, event_key, now),
            )
            conn.execute("INSERT INTO alert_sends VALUES (?, ?)", (channel, now))
            conn.execute("COMMIT")
            return "claimed"
        finally:
            conn.close()

    def mark_sent(self, channel: str, pipeline_id: str, run_id: str, event_key: str) -> None:
        self._execute(
            "UPDATE alert_sent SET status='sent', at=? WHERE channel=? AND pipeline_id=? AND run_id=? AND event_key=?",
            (time.time(), channel, pipeline_id, run_id, event_key),
        )

    def release(self, channel: str, pipeline_id: str, run_id: str, event_key: str) -> None:
        """Forget a claim whose send failed, so a retry may send it."""
        self._execute(
            "DELETE FROM alert_sent WHERE channel=? AND pipeline_id=? AND run_id=? AND event_key=?",
            (channel, pipeline_id, run_id, event_key),
        )

    def status(self, channel: str, pipeline_id: str, run_id: str, event_key: str) -> str | None:
        conn = self._connect()
        try:
            row = conn.execute(
                "SELECT status FROM alert_sent WHERE channel=? AND pipeline_id=? AND run_id=? AND event_key=?",
                (channel, pipeline_id, run_id, event_key),
            ).fetchone()
            return row[0] if row else None
        finally:
            conn.close()

    def _execute(self, sql: str, args: tuple[object, ...]) -> None:
        conn = self._connect()
        try:
            conn.execute(sql, args)
        finally:
            conn.close()
