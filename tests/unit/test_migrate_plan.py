"""``meta migrate plan DAGS_FOLDER --to BACKEND`` on real DAG files, parsed by the real Airflow, through the console
script as a user runs it: the verdict per DAG on stdout, the specs and the report written, the exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("meta_airflow")

META = str(Path(sys.executable).with_name("meta"))

DAGS = {
    # a cron schedule with a start in the past and no catchup: what every Airflow DAG has; Prefect takes it as is
    "daily.py": """
        import pendulum
        from airflow.providers.standard.operators.bash import BashOperator
        from airflow.sdk import DAG

        with DAG("daily", schedule="0 3 * * *", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False):
            BashOperator(task_id="hello", bash_command="echo hello")
    """,
    # doc_md has no neutral form: a partial import, so the move comes with that change
    "documented.py": """
        from airflow.providers.standard.operators.bash import BashOperator
        from airflow.sdk import DAG

        with DAG("documented", schedule=None, doc_md="How to rerun this DAG"):
            BashOperator(task_id="hello", bash_command="echo hello")
    """,
    # catchup: Prefect alone has none; a workspace's control plane runs the slots
    "backfilled.py": """
        import pendulum
        from airflow.providers.standard.operators.bash import BashOperator
        from airflow.sdk import DAG

        with DAG("backfilled", schedule="@daily", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=True):
            BashOperator(task_id="load", bash_command="echo load")
    """,
    # no neutral form at all: the importer refuses it
    "empty.py": """
        from airflow.sdk import DAG

        with DAG("no_tasks", schedule=None):
            pass
    """,
    # a sensor: kept as an Airflow operator, which only Airflow runs
    "sensor.py": """
        from airflow.providers.standard.operators.bash import BashOperator
        from airflow.providers.standard.sensors.filesystem import FileSensor
        from airflow.sdk import DAG

        with DAG("wait_for_file", schedule=None):
            FileSensor(task_id="wait", filepath="/data/ready") >> BashOperator(task_id="load", bash_command="echo")
    """,
    # prints while Airflow parses it: none of that may reach stdout
    "noisy.py": """
        print("hello from a DAG file")
    """,
}

WORKSPACE = """
    name: acme
    specs: [specs]
    backends:
      flows:
        kind: prefect
        url: http://127.0.0.1:4200/api
        work_pool: default
"""


def plan(tmp_path: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "META_HOME": str(tmp_path / "home"),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    return subprocess.run(
        [META, "migrate", "plan", *args], capture_output=True, text=True, env=env, cwd=cwd or tmp_path, timeout=300
    )


def dags_folder(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    for name in names:
        (folder / name).write_text(textwrap.dedent(DAGS[name]).lstrip())
    return folder


def test_plan_to_prefect_says_what_moves_as_is_with_changes_and_what_is_blocked(tmp_path: Path) -> None:
    folder = dags_folder(tmp_path, [name for name in DAGS if name != "sensor.py"])
    out = tmp_path / "out"
    result = plan(tmp_path, str(folder), "--to", "prefect", "-o", str(out), "--report", str(tmp_path / "plan.md"))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert "hello from a DAG file" not in result.stdout and "hello from a DAG file" in result.stderr
    verdicts = [line for line in lines if line.startswith("DAG")]
    assert verdicts == [
        "DAG 'backfilled': blocked",
        "DAG 'daily': moves as is",
        "DAG 'documented': moves with changes",
        "DAG 'no_tasks': blocked",
    ]
    below = {line: lines[lines.index(line) + 1] for line in verdicts if line != "DAG 'daily': moves as is"}
    assert below["DAG 'backfilled': blocked"].startswith(
        "  blocks: prefect cannot express catchup: true (pipeline 'backfilled'): Prefect schedules only create future"
    )
    assert below["DAG 'documented': moves with changes"].startswith("  change: DAG doc_md=")
    assert below["DAG 'no_tasks': blocked"].startswith(
        f"  blocks: the importer refused it ({folder / 'empty.py'}:3): the DAG has no tasks (expected: "
    )
    # the specs of every imported DAG (a blocked one too: it may move once changed), then the report
    written = [Path(line) for line in lines if not line.startswith(("DAG", "  "))]
    assert written == [*(out / f"{d}.yaml" for d in ("backfilled", "daily", "documented")), *(
        tmp_path / name for name in ("plan.md", "plan.json"))]  # fmt: skip
    assert all(path.exists() for path in written)
    assert result.stderr.splitlines()[-1] == "1 moves as is, 1 moves with changes, 2 blocked (to prefect)"
    report = json.loads((tmp_path / "plan.json").read_text())
    assert report["to"] == "prefect" and report["target"] == "prefect" and report["workspace_backend"] is None
    assert report["verdicts"] == {"moves as is": 1, "moves with changes": 1, "blocked": 2}
    entries = {e["subject"]: e for e in report["entries"]}
    assert entries["DAG 'daily'"]["extra"] == {"verdict": "moves as is", "changes": [], "blockers": []}
    assert entries["DAG 'daily'"]["files"] == [str(out / "daily.yaml")]
    assert entries["DAG 'daily'"]["location"] == f"{folder / 'daily.py'}:5"
    assert entries["DAG 'documented'"]["status"] == "partial"
    assert entries["DAG 'documented'"]["extra"]["changes"] == entries["DAG 'documented'"]["notes"] != []
    assert entries["DAG 'backfilled'"]["status"] == "full"
    assert [b.split(" (")[0] for b in entries["DAG 'backfilled'"]["extra"]["blockers"]] == [
        "prefect cannot express catchup: true",
        "prefect cannot express start_date with a cron schedule",
    ]
    assert entries["DAG 'no_tasks'"]["status"] == "refused" and entries["DAG 'no_tasks'"]["files"] == []
    assert entries["DAG 'no_tasks'"]["reason"] == "the DAG has no tasks"
    markdown = (tmp_path / "plan.md").read_text()
    assert "## DAG 'backfilled': blocked" in markdown and "## DAG 'daily': moves as is" in markdown
    assert f"- wrote `{out / 'daily.yaml'}`" in markdown


def test_plan_to_a_workspace_backend_lets_its_control_plane_run_the_catchup(tmp_path: Path) -> None:
    """--to a prefect backend of meta.yaml: the workspace will place the pipelines there, so `meta serve` runs
    the catchup slots Prefect cannot; nothing is blocked, exit 0."""
    folder = dags_folder(tmp_path, ["daily.py", "backfilled.py"])
    (tmp_path / "meta.yaml").write_text(textwrap.dedent(WORKSPACE).lstrip())
    result = plan(tmp_path, str(folder), "--to", "flows", "--report", str(tmp_path / "plan.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "DAG 'backfilled': moves as is",
        "DAG 'daily': moves as is",
        str(tmp_path / "plan.md"),
        str(tmp_path / "plan.json"),
    ]
    report = json.loads((tmp_path / "plan.json").read_text())
    assert (report["to"], report["target"], report["workspace_backend"]) == ("flows", "prefect", "flows")
    assert report["verdicts"] == {"moves as is": 2, "moves with changes": 0, "blocked": 0}


def test_plan_to_local_lists_the_schedule_as_a_change(tmp_path: Path) -> None:
    folder = dags_folder(tmp_path, ["daily.py"])
    result = plan(tmp_path, str(folder), "--to", "local")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "DAG 'daily': moves with changes",
        "  change: schedule: local runs pipelines on demand only (`meta run`); nothing schedules it",
    ]


def test_plan_of_a_folder_where_nothing_parses_exits_1(tmp_path: Path) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "broken.py").write_text("raise RuntimeError('boom')\n")
    result = plan(tmp_path, str(folder), "--to", "airflow")
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == "DAG file: blocked"
    assert "Airflow could not import it: RuntimeError: boom" in result.stdout
    assert "Traceback" not in result.stdout and "Traceback" in result.stderr


def test_plan_to_an_unknown_backend_names_the_choices(tmp_path: Path) -> None:
    folder = dags_folder(tmp_path, ["daily.py"])
    result = plan(tmp_path, str(folder), "--to", "dagster")
    assert result.returncode == 2
    assert "--to 'dagster' is neither a target (airflow, local, prefect) nor a backend of the workspace" in (
        result.stderr
    )


def test_a_sensor_moves_to_airflow_with_its_note_and_is_blocked_on_prefect(tmp_path: Path) -> None:
    folder = dags_folder(tmp_path, ["sensor.py"])
    to_airflow = plan(tmp_path, str(folder), "--to", "airflow")
    assert to_airflow.returncode == 0, to_airflow.stderr
    lines = to_airflow.stdout.splitlines()
    assert lines[0] == "DAG 'wait_for_file': moves with changes"
    assert any("FileSensor" in line and line.startswith("  change: task wait:") for line in lines[1:])
    to_prefect = plan(tmp_path, str(folder), "--to", "prefect")
    assert to_prefect.returncode == 1
    lines = to_prefect.stdout.splitlines()
    assert lines[0] == "DAG 'wait_for_file': blocked"
    assert (
        "  blocks: prefect cannot express the Airflow operator airflow.providers.standard.sensors.filesystem."
        "FileSensor (pipeline 'wait_for_file', task 'wait'): only the airflow backend runs airflow_operator tasks"
    ) in lines


def test_a_bare_target_does_not_read_a_broken_workspace_file(tmp_path: Path) -> None:
    folder = dags_folder(tmp_path, ["daily.py"])
    (tmp_path / "meta.yaml").write_text("name: [not, a, name\n")
    result = plan(tmp_path, str(folder), "--to", "prefect")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["DAG 'daily': moves as is"]
