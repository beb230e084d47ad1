"""``make demo`` and ``make demo-stack`` end to end: ``python -m dags.demo [--stack] --once`` as a subprocess, as a
newcomer runs it, in a temporary ``$META_HOME``; then the control plane's store it leaves behind is read to check the
story really happened (not only that the demo says so):

- each upstream success started ``marketing_report`` through the control plane's dependency engine (a claimed
  ``dependency_waits`` row naming the upstream run, and the run it started, observed as a success);
- the report's SLA (``publish``: ``max_duration: 5s``) met for one run and missed for the other, whose try ran past
  its deadline;
- the printed sign-in link carries a viewer token the store knows; nothing the demo started is left running.

The stack variant starts its own Airflow 3 and Prefect 3 (dags/stack.py), ``marketing_roi`` on Prefect and the report
on Airflow, which pushes OpenLineage events to the control plane (stored in ``lineage_events``).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from meta.service.api import tokens
from meta.service.store.db import open_store
from meta.service.store.orm import DependencyWaitRow, LineageEventRow, RunRow, SlaSlotRow

ROOT = Path(__file__).resolve().parents[2]
SLA_KIND = "tasks.publish.max_duration"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_demo(tmp_path: Path, *args: str, timeout: float) -> tuple[subprocess.CompletedProcess[str], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("META_", "AIRFLOW", "PREFECT"))}
    env.update({"META_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)})
    done = subprocess.run(
        [sys.executable, "-m", "dags.demo", *args, "--once", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    return done, port


def still_running(marker: str) -> list[str]:
    """Processes whose command line names ``marker`` (the demo's own folder), other than this check itself."""
    listing = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "args="], capture_output=True, text=True, check=True)
    return [line for line in listing.stdout.splitlines() if marker in line and "ps -A" not in line]


def check_story(home: Path, out: str, port: int, up_backend: str, down_backend: str) -> list[DependencyWaitRow]:
    """Assert the story on the store; returns the waits left ``waiting`` besides the two that started a report."""
    # the printed sign-in link: the token only in the fragment, and the store knows it as a viewer of growth
    match = re.search(rf"http://127\.0\.0\.1:{port}/login#token=(\S+)", out)
    assert match, out
    assert "story: dependent started by the control plane, one SLA met, one missed" in out
    store = open_store(f"sqlite:///{home / 'control-plane.db'}")
    try:
        with store.reading() as session:
            token = tokens.verify(session, match.group(1))
            assert token is not None and (token.role, token.team) == ("viewer", "growth")
            waits = list(
                session.scalars(select(DependencyWaitRow).where(DependencyWaitRow.pipeline_id == "marketing_report"))
            )
            runs = {
                (r.backend, r.pipeline_id, r.run_id): r
                for r in session.scalars(select(RunRow).where(RunRow.external.is_(False)))
            }
            slots = list(
                session.scalars(
                    select(SlaSlotRow).where(SlaSlotRow.subject == "marketing_report", SlaSlotRow.kind == SLA_KIND)
                )
            )
            session.expunge_all()
    finally:
        store.close()
    # two upstream successes, each starting its report through the dependency engine (claimed by meta serve)
    started = [w for w in waits if w.state == "triggered"]
    assert len(started) == 2, [(w.slot, w.state, w.error) for w in waits]
    for wait in started:
        assert wait.backend == down_backend and wait.claimed_by and wait.trigger_key and wait.triggered_at
        [upstream] = wait.upstream_runs
        up = runs[(up_backend, "marketing_roi", upstream["run_id"])]
        assert up.state == "success" and up.ended_at is not None and wait.triggered_at >= up.ended_at
        assert wait.run_id is not None
        down = runs[(down_backend, "marketing_report", wait.run_id)]
        assert down.state == "success"
    # one report met its SLA and the other, held back, missed it: its publish try ran past the deadline
    by_run = {s.run_id: s for s in slots}
    assert sorted(s.state for s in by_run.values()) == ["met", "missed"], [(s.run_id, s.state, s.detail) for s in slots]
    missed = next(s for s in by_run.values() if s.state == "missed")
    assert missed.deadline is not None and missed.missed_at is not None and missed.missed_at >= missed.deadline
    assert {w.run_id for w in started} == set(by_run)
    # nothing the demo started is still running, and its port is free again
    assert still_running(str(home)) == []
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    return [w for w in waits if w.state != "triggered"]


@pytest.mark.slow
def test_make_demo_tells_the_whole_story_on_the_embedded_runner(tmp_path: Path) -> None:
    done, port = run_demo(tmp_path, timeout=240)
    home = tmp_path / "home" / "demo"
    assert check_story(home, done.stdout, port, "local", "local") == []
    out = done.stdout
    assert "extract_sales                running          attempt 1" in out  # progress while marketing_roi runs
    assert out.count("control plane started marketing_report run meta-dep-") == 2
    assert re.search(r"marketing_report\s+growth\s+local\s+meta-dep-\S+\s+success", out), out  # meta status table
    # the control plane started the reports as `meta run` processes of its own (their logs), not the demo
    assert len(list((home / "triggered").glob("marketing_report.meta-dep-*.log"))) == 2
    [report] = (home / "reports").glob("marketing_report_*.md")
    text = report.read_text()
    assert "- CH: best" in text and "- DE: best" in text


@pytest.mark.slow
@pytest.mark.airflow
@pytest.mark.prefect
def test_make_demo_stack_tells_the_same_story_on_a_real_airflow_and_prefect(tmp_path: Path) -> None:
    done, port = run_demo(tmp_path, "--stack", timeout=900)
    home = tmp_path / "home" / "demo-stack"
    stale = check_story(home, done.stdout, port, "prefect", "airflow")
    store = open_store(f"sqlite:///{home / 'control-plane.db'}")
    try:
        with store.reading() as session:
            pushed = list(session.scalars(select(LineageEventRow.job_name)))
    finally:
        store.close()
    # Airflow's OpenLineage provider pushed the report's events to the control plane
    assert any(name and name.startswith("marketing_report") for name in pushed), pushed[:20]
    # A Prefect upstream run first ingested without its logical date (its pushed Pending state) got a wait keyed by
    # its run id; once the date is known the date's wait takes over and the run-keyed one is gone (it once stayed
    # "waiting" until its timeout, to fail and alert for nothing: records.settle_run_keys).
    assert not stale, [(w.slot, w.state) for w in stale]
