"""The README's Prefect commands on the flagship example, from the repository root, against a real Prefect server.

The example has an ``sla`` (finish_by, max_duration) that Prefect server cannot enforce; the repository's workspace
(``meta.yaml``) places it on a prefect backend, so the control plane watches it and both commands work. A copy of
the spec outside any workspace is refused, naming each SLA feature."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.prefect, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]


def meta_cli(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    meta = Path(sys.executable).parent / "meta"
    return subprocess.run([str(meta), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_meta_run_of_the_example_on_prefect_as_the_readme_shows(prefect_server, tmp_path: Path) -> None:
    env = {**prefect_server.env, "META_HOME": str(tmp_path / "home")}
    data = tmp_path / "data"
    proc = meta_cli(
        env,
        "run",
        "dags/marketing_roi.yaml",
        "--backend",
        "prefect",
        "--param",
        "country=AT",
        "--param",
        f"data_dir={data}",
        "--json",
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    doc = json.loads(proc.stdout)
    assert (doc["pipeline"], doc["backend"], doc["state"]) == ("marketing_roi", "prefect", "success")
    assert doc["tasks"]["refresh_dashboard"]["state"] == "success"
    assert (data / "dashboard" / "marketing_roi_AT.html").exists()


def test_outside_the_workspace_prefect_refuses_the_example_naming_each_sla_feature(
    prefect_server, tmp_path: Path
) -> None:
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(ROOT / "dags" / "marketing_roi.yaml", alone / "marketing_roi.yaml")
    env = {**prefect_server.env, "META_HOME": str(tmp_path / "home")}
    proc = meta_cli(env, "run", "marketing_roi.yaml", "--backend", "prefect", cwd=alone)
    assert proc.returncode != 0
    for feature in ("sla.finish_by", "sla.max_duration"):
        assert f"prefect cannot enforce {feature} itself; place the pipeline on a prefect backend" in proc.stderr
