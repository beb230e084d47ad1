"""Fault injection on the real ``meta serve`` shadowing a pipeline between two local backends: SIGKILL at random
moments while live runs keep coming and shadow runs are being started; after the last restart every live logical
date has exactly one shadow run on the target (its own run history says so), and one pair in the store."""

from __future__ import annotations

import random
import sqlite3
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from meta.cli import cli
from meta.service.store.db import open_store
from meta.service.store.orm import MigrationRunRow
from tests.fixtures.control_plane import ServeProcess

pytestmark = pytest.mark.slow

SPEC = "pipeline: orders\ntasks:\n  work: {shell: 'sleep 0.2'}\n"


def history(home: Path, pipeline_id: str) -> list[tuple[str, str]]:
    """(run id, logical date) of every run the local backend in ``home`` recorded for ``pipeline_id``."""
    if not (home / "meta.db").exists():
        return []
    with sqlite3.connect(home / "meta.db") as conn:
        return list(conn.execute("SELECT run_id, logical_date FROM runs WHERE pipeline_id = ?", [pipeline_id]))


def test_sigkill_while_shadowing_starts_each_shadow_exactly_once(tmp_path: Path) -> None:
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "orders.yaml").write_text(SPEC)
    old, new = tmp_path / "old", tmp_path / "new"
    workspace = tmp_path / "meta.yaml"
    workspace.write_text(
        textwrap.dedent(
            f"""
            name: faults
            specs: [dags]
            backends:
              old: {{kind: local, state_dir: {old}}}
              new: {{kind: local, state_dir: {new}}}
            placements:
              - {{backend: old, pipelines: [orders]}}
            migrations:
              orders: {{to: new}}
            control_plane:
              database: sqlite:///{tmp_path / "cp.db"}
              poll_interval: 0.2s
            """
        )
    )
    runner = CliRunner(env={"META_HOME": str(old)})
    result = runner.invoke(cli, ["migrate", "shadow", "orders", "--workspace", str(workspace)])
    assert result.exit_code == 0, result.output
    base = datetime(2026, 2, 1, tzinfo=UTC)
    stop_producing = threading.Event()
    produced: list[int] = []

    def produce() -> None:
        i = 0
        while not stop_producing.is_set() and i < 40:
            logical = (base + timedelta(hours=i)).isoformat()
            spec = str(tmp_path / "dags" / "orders.yaml")
            runner.invoke(cli, ["run", spec, "--run-id", f"live_{i:03d}", "--logical-date", logical])
            produced.append(i)
            i += 1

    serve = ServeProcess(workspace, env={"META_HOME": str(old)})
    rng = random.Random(20261204)
    producer = threading.Thread(target=produce, daemon=True)
    try:
        serve.start(wait=False)
        producer.start()
        for i in range(8):
            if i % 2:
                serve.wait_ready()
                delay = rng.uniform(0.0, 1.5)
            else:
                delay = rng.uniform(0.5, 3.0)
            time.sleep(delay)
            serve.kill()
            serve.start(wait=False)
        serve.wait_ready()
        producer.join(timeout=120)
        stop_producing.set()
        live = {d for _, d in history(old, "orders")}
        assert len(live) == len(produced) >= 10

        def shadowed() -> list[tuple[str, str]]:
            return history(new, "orders__shadow")

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and {d for _, d in shadowed()} != live:
            time.sleep(0.5)
        assert serve.stop() == 0, serve.log()[-2000:]
    finally:
        stop_producing.set()
        serve.kill()
    runs = shadowed()
    dates = [d for _, d in runs]
    assert sorted(set(dates)) == sorted(live)  # every live date has its shadow ...
    assert len(dates) == len(set(dates)), sorted(dates)  # ... exactly once
    store = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    try:
        with store.reading() as session:
            pairs = list(session.query(MigrationRunRow).all())
            assert len(pairs) == len(live) and {p.state for p in pairs} == {"triggered"}
            assert {p.shadow_run_id for p in pairs} == {run_id for run_id, _ in runs}
    finally:
        store.close()
    assert serve.starts == 9
