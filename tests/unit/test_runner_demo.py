"""The pieces of ``make demo`` (``python -m dags.demo``) that need no control plane: the example on the embedded runner
with its progress and run table, the demo's workspace file, and the report's delay setting. The whole story (the
control plane starting the dependent, one SLA met and one missed) is tests/integration/test_demo.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from dags.demo import DOWNSTREAM, UPSTREAM, run_local_upstream, write_workspace
from dags.jobs.marketing_report import delays
from meta.authoring.workspace import load_workspace
from meta.builtin.local.state import History


def test_the_demo_runs_the_example_on_the_embedded_runner_with_progress_and_a_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("META_HOME", str(tmp_path))
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "dags"))
    run_id, state = run_local_upstream(tmp_path, "AT")
    out = capsys.readouterr().out
    assert state == "success"
    table = out[out.index("task ") :].splitlines()
    assert table[0].split() == ["task", "state", "attempts", "duration"]
    rows = {line.split()[0]: line.split()[1:3] for line in table[2:11]}
    assert rows["refresh_dashboard"] == ["success", "1"]
    assert rows["notify_failure"] == ["skipped", "0"]
    assert all(state == "success" for task, (state, _) in rows.items() if task != "notify_failure")
    assert "extract_sales                running          attempt 1" in out  # progress while it runs
    # the run lands in the history the demo's local backend reads, with the country it was given
    [run] = History(tmp_path / "meta.db").runs(UPSTREAM)
    assert run["run_id"] == run_id and run["state"] == "success" and run["params"]["country"] == "AT"
    assert (tmp_path / "warehouse.duckdb").exists()
    assert (tmp_path / "data" / "dashboard" / "marketing_roi_AT.html").exists()


def test_the_demo_workspace_places_both_pipelines_and_loads(tmp_path: Path) -> None:
    path = write_workspace(
        tmp_path,
        18765,
        backends=f"local: {{kind: local, state_dir: {tmp_path}}}",
        placements=f"- {{backend: local, pipelines: [{UPSTREAM}, {DOWNSTREAM}]}}",
    )
    loaded = load_workspace(path)
    assert loaded.workspace.backends_of(UPSTREAM) == ["local"] == loaded.workspace.backends_of(DOWNSTREAM)
    assert loaded.workspace.control_plane.listen == "127.0.0.1:18765"
    pipelines = {p.id: p for p in loaded.load_pipelines().pipelines}
    assert [d.pipeline for d in pipelines[DOWNSTREAM].depends_on] == [UPSTREAM]


def test_the_report_delay_setting() -> None:
    assert delays("DE:12, fr:3") == {"DE": 12.0, "FR": 3.0}
    assert delays("") == {}
    with pytest.raises(ValueError, match="expected COUNTRY:SECONDS like DE:12, got 'DE'"):
        delays("DE")
