"""The control plane's commands as a user runs them: ``meta serve`` as a process, ``meta token/status/runs/trigger``
as the console script, against a workspace with two teams on the local backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.fixtures.control_plane import ServeProcess

pytestmark = pytest.mark.slow
SPECS = {
    "sales_daily": "pipeline: sales_daily\nteam: sales\ntasks:\n  a: {noop: true}\n",
    "ads_spend": "pipeline: ads_spend\ntasks:\n  a: {shell: 'exit 1'}\n",
}


def meta(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meta", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **env},
        timeout=120,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    (tmp_path / "dags").mkdir()
    for name, text in SPECS.items():
        (tmp_path / "dags" / f"{name}.yaml").write_text(text)
    (tmp_path / "meta.yaml").write_text(
        textwrap.dedent(
            """
            name: two-teams
            specs: [dags]
            backends:
              laptop: {kind: local}
            placements:
              - {backend: laptop, pipelines: ["*"]}
            teams:
              sales: {}
              marketing: {pipelines: ["ads_*"]}
            control_plane:
              poll_interval: 0.3s
            """
        )
    )
    return tmp_path, {"META_HOME": str(tmp_path / ".meta")}


def wait_until(check, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


def test_status_runs_and_trigger_without_and_with_a_server(workspace: tuple[Path, dict[str, str]]) -> None:
    root, env = workspace
    # Without a server: the commands open the store, poll once and answer.
    before = meta("status", cwd=root, env=env)
    assert before.returncode == 0, before.stderr
    assert "sales_daily" in before.stdout and "no runs yet" in before.stdout
    assert meta("run", "dags/ads_spend.yaml", "--run-id", "first", cwd=root, env=env).returncode == 1
    offline = meta("runs", "--state", "failed", "--json", cwd=root, env=env)
    assert [(r["pipeline_id"], r["run_id"], r["state"]) for r in json.loads(offline.stdout)] == [
        ("ads_spend", "first", "failed")
    ]

    tokens = {}
    for name, role, team in [
        ("s", "viewer", "sales"),
        ("so", "operator", "sales"),
        ("m", "operator", "marketing"),
        ("v", "viewer", "marketing"),
    ]:
        made = meta("token", "create", "--name", name, "--role", role, "--team", team, cwd=root, env=env)
        assert made.returncode == 0, made.stderr
        tokens[name] = made.stdout.strip()
        assert tokens[name].startswith("meta_") and tokens[name] not in made.stderr
    serve = ServeProcess(root / "meta.yaml", env)
    try:
        serve.start()
        api = {**env, "META_API_URL": serve.url}
        # Team scoping through the CLI: sales sees only its pipeline, marketing only its own.
        sales = meta("status", "--token", tokens["s"], cwd=root, env=api)
        assert sales.returncode == 0, sales.stderr
        assert "ads_spend" not in sales.stdout
        marketing = meta("status", "--json", "--token", tokens["m"], cwd=root, env=api)
        assert {p["id"] for p in json.loads(marketing.stdout)} == {"ads_spend"}
        # A viewer may not trigger; an operator may, exactly once per key.
        refused = meta("trigger", "ads_spend", "--key", "k-1", "--token", tokens["v"], cwd=root, env=api)
        assert refused.returncode == 2 and "403" in refused.stderr
        first = meta("trigger", "ads_spend", "--key", "k-1", "--token", tokens["m"], cwd=root, env=api)
        again = meta("trigger", "ads_spend", "--key", "k-1", "--token", tokens["m"], cwd=root, env=api)
        assert "started" in first.stdout and "already started" in again.stdout, (first.stderr, again.stderr)
        other_team = meta("trigger", "ads_spend", "--key", "k-2", "--token", tokens["so"], cwd=root, env=api)
        assert other_team.returncode == 2 and "404" in other_team.stderr

        def triggered_run_seen() -> list[dict[str, str]]:
            out = meta("runs", "--pipeline", "ads_spend", "--json", "--token", tokens["m"], cwd=root, env=api)
            return [r for r in json.loads(out.stdout or "[]") if r["run_id"] == "k-1" and r["state"] == "failed"]

        assert wait_until(triggered_run_seen), serve.log()[-2000:]
        no_token = meta("runs", cwd=root, env=api)
        assert no_token.returncode == 2 and "401" in no_token.stderr and "META_API_TOKEN" in no_token.stderr
        assert serve.stop() == 0
    finally:
        serve.kill()
    assert "laptop: ok" in serve.log()
    for secret in tokens.values():
        assert secret not in serve.log()
