"""Fault injection on the real ``meta serve`` process with the local backend: SIGKILL at random moments while runs
are being recorded and ingested, restarted each time; afterwards the store equals the local backend's own record,
row for row, with nothing lost and nothing twice."""

from __future__ import annotations

import random
import sqlite3
import textwrap
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from meta.cli import cli
from meta.service.store import queries
from meta.service.store.db import open_store
from tests.fixtures.control_plane import ServeProcess

pytestmark = pytest.mark.slow

SPEC = """
pipeline: churn
tasks:
  extract: {noop: true}
  flaky: {shell: "exit 1", retries: 1, retry_delay: 0s, upstream: [extract]}
  load: {noop: true, upstream: [flaky]}
  always: {noop: true, upstream: [flaky], trigger_rule: all_done}
"""


def backend_record(home: Path) -> tuple[set[tuple[object, ...]], set[tuple[object, ...]]]:
    """What the local backend itself recorded (its SQLite history), in the store's tuple shape."""
    with sqlite3.connect(home / "meta.db") as conn:
        runs = {(p, r, s) for p, r, s in conn.execute("SELECT pipeline_id, run_id, state FROM runs")}
        attempts = {
            (p, r, t, -1, n, s)
            for p, r, t, n, s in conn.execute("SELECT pipeline_id, run_id, task_id, try_number, state FROM attempts")
        }
        attempts |= {
            (p, r, t, -1, 0, s)
            for p, r, t, s in conn.execute(
                "SELECT pipeline_id, run_id, task_id, state FROM task_instances WHERE attempts = 0"
            )
        }
    return runs, attempts


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "local_home"
    specs = tmp_path / "dags"
    specs.mkdir()
    (specs / "churn.yaml").write_text(textwrap.dedent(SPEC))
    workspace = tmp_path / "meta.yaml"
    workspace.write_text(
        textwrap.dedent(
            f"""
            name: faults
            specs: [dags]
            backends:
              laptop: {{kind: local, state_dir: {home}}}
            placements:
              - {{backend: laptop, pipelines: [churn]}}
            control_plane:
              database: sqlite:///{tmp_path / "cp.db"}
              poll_interval: 0.2s
            """
        )
    )
    runner = CliRunner(env={"META_HOME": str(home)})
    for i in range(30):  # a backlog, so the first poll after each restart has real work in flight
        runner.invoke(cli, ["run", str(specs / "churn.yaml"), "--run-id", f"backlog_{i:03d}"])

    stop_producing = threading.Event()

    def produce() -> None:
        i = 0
        while not stop_producing.is_set():
            runner.invoke(cli, ["run", str(specs / "churn.yaml"), "--run-id", f"live_{i:03d}"])
            i += 1

    serve = ServeProcess(workspace, env={"META_HOME": str(home)})
    rng = random.Random(20261202)
    producer = threading.Thread(target=produce, daemon=True)
    kills = []
    try:
        serve.start(wait=False)
        producer.start()
        for i in range(8):
            # Half the kills land during start-up (imports, migrations, the first poll of the backlog), half at
            # a random moment after the API answered (ingesting the runs the producer keeps recording).
            if i % 2:
                serve.wait_ready()
                delay = rng.uniform(0.0, 1.5)
            else:
                delay = rng.uniform(0.5, 4.0)
            time.sleep(delay)
            serve.kill()
            kills.append(round(delay, 2))
            serve.start(wait=False)
        serve.wait_ready()
        stop_producing.set()
        producer.join(timeout=60)
        expected_runs, expected_attempts = backend_record(home)
        store = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with store.reading() as session:
                got = queries.history(session, "laptop")
            if got == (expected_runs, expected_attempts):
                break
            time.sleep(0.3)
        assert serve.stop() == 0, serve.log()[-2000:]
    finally:
        stop_producing.set()
        serve.kill()
    assert serve.starts == 9 and len(kills) == 8
    runs, attempts = got
    assert len(expected_runs) >= 31, "the producer made runs while the control plane was being killed"
    assert runs - expected_runs == set(), "runs in the store the backend never had"
    assert expected_runs - runs == set(), "runs the backend has that the store lost"
    assert attempts == expected_attempts
    with store.reading() as session:  # nothing twice: one row per run key, whatever the restarts re-read
        rows, _ = queries.list_runs(session, queries.RunFilter(backend="laptop"), limit=10_000)
    assert len(rows) == len({(r.pipeline_id, r.run_id) for r in rows}) == len(expected_runs)
    assert "stopped" in serve.log()
