"""The local backend observed through the runtime: real local runs, a real SQLite store, the real poll loop."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from meta.cli import cli
from meta.plugins.observers import BackendConnection
from meta.service.observers.local import LocalObserver
from meta.service.runtime import BackendWatch, ObserverRuntime
from meta.service.store import queries
from meta.service.store.db import open_store

SPEC = """
pipeline: observed
tasks:
  ok: {shell: "true"}
  flaky: {shell: "exit 1", retries: 1, retry_delay: 0s}
  after: {shell: "true", upstream: [flaky]}
"""


def run_local(spec: Path, run_id: str) -> None:
    result = CliRunner().invoke(cli, ["run", str(spec), "--run-id", run_id])
    assert result.exit_code == 1, result.output  # flaky fails: the run fails


def wait_for(predicate, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "observed.yaml"
    path.write_text(textwrap.dedent(SPEC))
    return path


def test_local_runs_appear_with_attempts_and_unified_states(meta_home: Path, spec: Path, tmp_path: Path) -> None:
    run_local(spec, "r1")
    store = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    connection = BackendConnection(
        "laptop", "local", "local", {"state_dir": str(meta_home)}, {}, {"observed": "observed"}
    )
    runtime = ObserverRuntime(store, [BackendWatch(connection, LocalObserver(connection))], poll_interval=0.2)
    runtime.start()
    try:
        with store.reading() as session:
            run = wait_for(lambda: queries.get_run(session, "laptop", "observed", "r1", None))
        assert run.state == "failed" and not run.external
        run_local(spec, "r2")  # a second run while the observer watches
        with store.reading() as session:
            wait_for(lambda: queries.get_run(session, "laptop", "observed", "r2", None))
            attempts = {
                (a.task_id, a.try_number): a.state for a in queries.attempts_of(session, "laptop", "observed", "r2")
            }
            backend = queries.backends(session)[0]
        assert attempts[("ok", 1)] == "success"
        assert attempts[("flaky", 2)] == "failed"
        assert attempts[("flaky", 1)] in {"failed", "up_for_retry"}
        assert attempts[("after", 0)] == "upstream_failed"
        assert backend.health == "ok" and backend.last_success_at is not None
    finally:
        runtime.stop()
    # A restarted runtime resumes from the stored cursor and writes nothing twice.
    with store.reading() as session:
        before = queries.history(session, "laptop")
    again = ObserverRuntime(store, [BackendWatch(connection, LocalObserver(connection))], poll_interval=0.2)
    again.start()
    time.sleep(1.0)
    again.stop()
    with store.reading() as session:
        assert queries.history(session, "laptop") == before
        rows, _ = queries.list_runs(session, queries.RunFilter(backend="laptop"))
    assert sorted(r.run_id for r in rows) == ["r1", "r2"]


def test_a_local_runs_params_are_read_back_for_its_downstreams(meta_home: Path, tmp_path: Path) -> None:
    """The dependency engine starts a downstream with its upstream run's params: they must come back as given
    (they were lost once: History.runs decodes them and the observer decoded them again, failing quietly)."""
    path = tmp_path / "with_params.yaml"
    path.write_text("pipeline: with_params\nparams: {country: CH}\ntasks:\n  ok: {shell: 'true'}\n")
    result = CliRunner().invoke(cli, ["run", str(path), "--run-id", "p1", "--param", "country=DE"])
    assert result.exit_code == 0, result.output
    connection = BackendConnection("laptop", "local", "local", {"state_dir": str(meta_home)}, {}, {})
    observer = LocalObserver(connection)
    assert observer.run_params("with_params", "p1") == {"country": "DE"}
    assert observer.run_params("with_params", "nope") == {}
