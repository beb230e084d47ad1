"""Every benchmark still runs end to end at a tiny size (the Prefect one is in integration/prefect, on the session's
server). These check that the benchmarks work and print their comparison, not how fast anything is: speed is
measured by running the benchmarks at full size (docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CASES = [
    pytest.param(
        ["bench.bench_load", "--pipelines", "5", "--tasks", "3", "--repeat", "1"], "ratio meta / peer:", id="load"
    ),
    pytest.param(
        ["bench.bench_runner", "--tasks", "10", "--repeat", "1", "--skip-prefect"], "meta local runs:", id="runner"
    ),
    pytest.param(
        ["bench.bench_warehouse", "--rows", "1000", "--merge", "200", "--repeat", "1"],
        "postgresql",
        id="warehouse",
        marks=pytest.mark.postgres,
    ),
    pytest.param(
        ["bench.bench_sla_tick", "--pipelines", "50", "--ticks", "3"],
        "ratio peer / meta",
        id="sla_tick",
        marks=pytest.mark.postgres,
    ),
    pytest.param(
        ["bench.bench_dashboard", "--pipelines", "12", "--runs", "200", "--repeat", "3"],
        "ratio meta / peer (median server time):",
        id="dashboard",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        ["bench.bench_mapping", "--elements", "20", "--reps", "1", "--only", "local", "airflow"],
        "airflow  meta",
        id="mapping",
        marks=[pytest.mark.airflow, pytest.mark.slow],
    ),
    pytest.param(
        ["bench.bench_import", "--airflow-examples", "--reps", "1"],
        "ratio meta / peer (time):",
        id="import",
        marks=[pytest.mark.airflow, pytest.mark.slow],
    ),
    pytest.param(
        ["bench.bench_migrate", "--runs", "2"], "ratio shadow / peer (p95):", id="migrate", marks=pytest.mark.slow
    ),
    pytest.param(
        ["bench.bench_airflow_parse", "--pipelines", "3", "--tasks", "3", "--repeat", "1"],
        "loader (YAML) vs dag-factory (cpu):",
        id="airflow_parse",
        marks=[pytest.mark.airflow, pytest.mark.slow],
    ),
]


@pytest.mark.parametrize(("argv", "expected"), CASES)
def test_benchmark_runs_and_prints_its_comparison(argv: list[str], expected: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *argv], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert expected in done.stdout, done.stdout
