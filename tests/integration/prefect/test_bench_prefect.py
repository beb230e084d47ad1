"""The Prefect benchmark still runs end to end (tiny size, against the session's real server).

It checks that the benchmark works, not how fast it is: speed is measured by running it (docs/benchmarks.md).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.fixtures.prefect_server import REPO, PrefectServer

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


def test_benchmark_runs_both_flows_and_prints_every_ratio(prefect_server: PrefectServer) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_prefect", "--reps", "1", "--tasks", "20"],
        env=prefect_server.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for figure in ("flow wall", "task span", "until recorded", "client CPU"):
        assert f"ratio meta / hand-written, {figure}: " in done.stdout
    assert "20-task no-op pipeline on Prefect, 1 runs each" in done.stdout
