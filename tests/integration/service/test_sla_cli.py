"""``meta sla`` as a user runs it, over a workspace on the local backend: a run that overran its max_duration is on
the board as missed (and recovered, since it then succeeded); a quick one is met; a team sees only its own."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.integration.service.test_cli_control_plane import meta

pytestmark = pytest.mark.slow


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "slow_sales.yaml").write_text(
        "pipeline: slow_sales\nteam: sales\nsla: {max_duration: 1s}\ntasks:\n  a: {shell: 'sleep 2.5'}\n"
    )
    (tmp_path / "dags" / "quick_ads.yaml").write_text(
        "pipeline: quick_ads\nteam: marketing\nsla: {max_duration: 1m}\ntasks:\n  a: {noop: true}\n"
    )
    (tmp_path / "meta.yaml").write_text(
        textwrap.dedent(
            """
            specs: [dags]
            backends:
              laptop: {kind: local}
            placements:
              - {backend: laptop, pipelines: ["*"]}
            teams:
              sales: {}
              marketing: {}
            """
        )
    )
    return tmp_path, {"META_HOME": str(tmp_path / ".meta")}


def test_meta_sla_prints_the_board(workspace: tuple[Path, dict[str, str]]) -> None:
    root, env = workspace
    # the runs happen before anything watched: the board still judges them (it only sends no alert for them)
    for spec in ("slow_sales", "quick_ads"):
        ran = meta("run", f"dags/{spec}.yaml", "--run-id", f"{spec}-1", cwd=root, env=env)
        assert ran.returncode == 0, ran.stderr
    board = meta("sla", cwd=root, env=env)
    assert board.returncode == 0, board.stderr
    lines = board.stdout.splitlines()
    assert lines[0].startswith("SLA board at") and "1 missed" in lines[0] and "1 met" in lines[0]
    missed_section = board.stdout.split("Missed (last 24 h)")[1].split("By team")[0]
    assert "slow_sales" in missed_section and "max_duration" in missed_section and "quick_ads" not in missed_section
    teams = board.stdout.split("By team")[1]
    assert any(line.split()[:2] == ["sales", "1"] for line in teams.splitlines())
    as_json = json.loads(meta("sla", "--json", "--team", "marketing", cwd=root, env=env).stdout)
    assert [(c["pipeline"], c["state"]) for c in as_json["cells"]] == [("quick_ads", "met")]
    slow = json.loads(meta("sla", "--json", "--pipeline", "slow_sales", cwd=root, env=env).stdout)["cells"][0]
    assert slow["latest"]["resolved_at"] is not None  # the late run did succeed
