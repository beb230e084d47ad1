"""``meta migrate`` between two local backends (the development direction), end to end with no server: the real
local runner runs the live and shadow runs into two real DuckDB warehouses, the real migration engine (as ``meta
serve`` ticks it) starts the shadows and the driven slots, the CLI shadows, cuts over and rolls back.

Runs are started on the live side by hand (a local backend has no scheduler of its own), the engine is ticked with
explicit instants in the past, so each slot's owner is known exactly (the pipeline catches up, so the slots after
the hand-off are owed whatever the clock says at the switch)."""

from __future__ import annotations

import sqlite3
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from meta.cli import cli
from meta.service.migrations import records
from meta.service.store.orm import MigrationRunRow, MigrationSlotRow

SPEC = """
pipeline: orders
schedule: "0 6 * * *"
start_date: "2026-01-01"
catchup: true  # every slot after the hand-off is owed (without: only from the newest one at the switch)
sla: {max_duration: 1h}
tasks:
  create:
    sql: {conn: warehouse, statement: "CREATE TABLE IF NOT EXISTS orders (day VARCHAR PRIMARY KEY, amount INTEGER)"}
  stage:
    sql:
      conn: warehouse
      statement: "INSERT INTO orders VALUES ('{{ ds }}', 42) ON CONFLICT DO NOTHING"
    upstream: [create]
  load:
    op: warehouse_load
    with:
      table: daily
      mode: replace
      source: {query: "SELECT day, amount FROM orders"}
      conn: warehouse
      audit: true
    upstream: [stage]
  announce:
    op: alert
    with: {channel: "webhook:nowhere", message: "orders loaded"}
    upstream: [load]
"""


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "orders.yaml").write_text(SPEC)
    for side in ("live", "shadow"):  # SQLite: several runs write at once (DuckDB allows one writing process)
        with sqlite3.connect(tmp_path / f"{side}.db") as conn:
            conn.execute("CREATE TABLE daily (day VARCHAR, amount INTEGER)")
    monkeypatch.setenv("META_CONN_WAREHOUSE", f"sqlite:///{tmp_path / 'live.db'}")
    monkeypatch.setenv("META_CONN_WAREHOUSE_SHADOW", f"sqlite:///{tmp_path / 'shadow.db'}")
    monkeypatch.setenv("META_CHANNEL_WEBHOOK_NOWHERE_URL", "http://127.0.0.1:9/never")  # the live alert may fail
    path = tmp_path / "meta.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            name: moving
            specs: [dags]
            backends:
              old: {{kind: local, state_dir: {tmp_path / "old"}}}
              new: {{kind: local, state_dir: {tmp_path / "new"}}}
            placements:
              - {{backend: old, pipelines: [orders]}}
            migrations:
              orders: {{shadow_connections: {{warehouse: warehouse_shadow}}, to: new}}
            control_plane:
              database: sqlite:///{tmp_path / "cp.db"}
            """
        )
    )
    yield path


def meta(workspace: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--workspace", str(workspace)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


class Plane:
    """The workspace's control plane in this process: observers polled into the store, the engine ticked."""

    def __init__(self, workspace: Path):
        from meta.authoring.workspace import load_workspace
        from meta.cli.service import _plane

        self.plane = _plane(load_workspace(workspace))

    def observer(self, backend: str) -> Any:
        return next(w.observer for w in self.plane.watches if w.connection.name == backend)

    def tick(self, now: datetime) -> int:
        self.plane.refresh()
        return int(self.plane.migrations().tick(now))

    def sla_subjects(self) -> set[tuple[str, str]]:
        engine = self.plane.sla(deliver=False)
        engine.tick(datetime.now(UTC))
        return {key for key in engine.subjects if key[1] == "orders"}

    def rows(self, table: Any) -> list[Any]:
        with self.plane.store.reading() as session:
            found = list(session.query(table).all())
            session.expunge_all()
            return found

    def close(self) -> None:
        self.plane.close()


def wait_ended(observer: Any, pipeline_id: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        runs = observer.history.runs(pipeline_id, limit=1000)
        if len(runs) >= count and all(r["ended_at"] for r in runs):
            return list(runs)
        if time.monotonic() > deadline:
            raise AssertionError(f"{pipeline_id}: {len(runs)} run(s), not all ended after {timeout}s: {runs}")
        time.sleep(0.2)


def at_six(day: int) -> datetime:
    return datetime(2026, 3, day, 6, tzinfo=UTC)


def daily(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT day, amount FROM daily").fetchall())


def test_shadow_cutover_and_rollback_between_local_backends(workspace: Path) -> None:
    out = meta(workspace, "migrate", "shadow", "orders")
    assert "shadowing on new as orders__shadow" in out
    shadow_spec = workspace.parent / "new" / "deployed" / "orders__shadow.yaml"
    written = shadow_spec.read_text()
    assert "warehouse_shadow" in written and "schedule" not in written and "webhook" not in written

    plane = Plane(workspace)
    try:
        old, new = plane.observer("old"), plane.observer("new")
        for day in (1, 2, 3):  # three live runs, as the old side's scheduler would start them
            old.trigger("orders", f"live_{day}", {}, at_six(day))
        wait_ended(old, "orders", 3)
        assert plane.tick(at_six(3) + timedelta(hours=1)) == 3
        assert plane.tick(at_six(3) + timedelta(hours=1)) == 0  # ticked again: nothing twice
        shadows = wait_ended(new, "orders__shadow", 3)
        assert sorted(r["logical_date"][:10] for r in shadows) == ["2026-03-01", "2026-03-02", "2026-03-03"]
        pairs = plane.rows(MigrationRunRow)
        assert [(p.logical_date, p.state) for p in pairs] == [(at_six(d), "triggered") for d in (1, 2, 3)]
        # the shadow wrote only to its own warehouse, the same rows as the live one
        live_root = workspace.parent
        assert (
            daily(live_root / "live.db")
            == daily(live_root / "shadow.db")
            == [
                ("2026-03-01", 42),
                ("2026-03-02", 42),
                ("2026-03-03", 42),
            ]
        )

        assert plane.sla_subjects() == {("old", "orders")}
        out = meta(workspace, "migrate", "cutover", "orders")
        assert "hand-off slot: 2026-03-03T06:00:00+00:00" in out
        assert (workspace.parent / "new" / "deployed" / "orders.yaml").is_file()
        # the slots after the hand-off are the control plane's to start, on the new side, once each
        started = plane.tick(at_six(5) + timedelta(minutes=1))
        assert started == 2
        assert plane.tick(at_six(5) + timedelta(minutes=2)) == 0
        wait_ended(new, "orders", 2)
        # the SLA and `meta trigger` follow it: watched and started where it is live now
        assert plane.sla_subjects() == {("new", "orders")}
        assert "orders on new: run by_hand started" in meta(workspace, "trigger", "orders", "--key", "by_hand")
        wait_ended(new, "orders", 3)
        slots = plane.rows(MigrationSlotRow)
        assert [(s.slot, s.backend, s.state) for s in slots] == [
            (at_six(4), "new", "triggered"),
            (at_six(5), "new", "triggered"),
        ]
        assert sorted(r["run_id"] for r in old.history.runs("orders", limit=100)) == ["live_1", "live_2", "live_3"]

        out = meta(workspace, "migrate", "rollback", "orders")
        assert "hand-off slot back: 2026-03-05T06:00:00+00:00 (2 slot(s) ran on new)" in out
        # rolled back: no slot is started on the new side any more, shadowing resumes
        assert plane.tick(at_six(7)) == 0
        assert plane.sla_subjects() == {("old", "orders")}
        assert "orders on old: run back_home started" in meta(workspace, "trigger", "orders", "--key", "back_home")
        with plane.plane.store.reading() as session:
            row = records.get(session, "orders")
            assert row is not None and row.phase == records.SHADOWING
            assert [h["action"] for h in row.history] == ["shadow", "cutover", "rollback"]
        status = meta(workspace, "migrate", "status", "orders")
        assert "shadowing, live on old" in status and "2026-03-04T06:00:00+00:00 on new: triggered" in status
    finally:
        plane.close()


def test_a_shadow_that_would_write_to_the_live_warehouse_is_refused(workspace: Path) -> None:
    text = workspace.read_text().replace("{shadow_connections: {warehouse: warehouse_shadow}, to: new}", "{to: new}")
    workspace.write_text(text)
    result = CliRunner().invoke(cli, ["migrate", "shadow", "orders", "--workspace", str(workspace)])
    assert result.exit_code == 2, result.output
    assert "orders: task create: writes through connection 'warehouse', which has no shadow connection" in result.output
    assert "migrations.orders.shadow_connections" in result.output
    assert not (workspace.parent / "new" / "deployed" / "orders__shadow.yaml").exists()  # nothing was deployed
