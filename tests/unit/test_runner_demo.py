"""``make demo`` (``python -m dags.demo``) on a fresh working directory: runs the example, prints the run table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_the_example_in_a_fresh_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "META_HOME"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "dags.demo", "AT"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    table = out[out.index("task ") :].splitlines()
    assert table[0].split() == ["task", "state", "attempts", "duration"]
    rows = {line.split()[0]: line.split()[1:3] for line in table[2:11]}
    assert rows["refresh_dashboard"] == ["success", "1"]
    assert rows["notify_failure"] == ["skipped", "0"]
    assert all(state == "success" for task, (state, _) in rows.items() if task != "notify_failure")
    assert "extract_sales                running          attempt 1" in out  # progress while it runs
    # State lands under ./.meta of the working directory, as documented.
    assert (tmp_path / ".meta" / "meta.db").exists()
    assert (tmp_path / ".meta" / "warehouse.duckdb").exists()
    assert f"logs:      {tmp_path / '.meta' / 'logs' / 'marketing_roi'}" in out
    assert (tmp_path / ".meta" / "data" / "dashboard" / "marketing_roi_AT.html").exists()
