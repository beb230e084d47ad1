"""``meta import airflow --report PATH`` on real DAG files, through the console script: stdout lists only the files
written (a DAG file that prints and one that raises send their output to stderr), the report per DAG (Markdown and
JSON), and the exit codes (0 all imported; 1 anything refused or nothing parsed)."""

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

GOOD = """
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG

    with DAG("good", schedule=None):
        BashOperator(task_id="hello", bash_command="echo hello")
"""
DOCUMENTED = """
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG

    with DAG("documented", schedule=None, doc_md="How to rerun this DAG"):
        BashOperator(task_id="hello", bash_command="echo hello")
"""
EMPTY = """
    from airflow.sdk import DAG

    with DAG("no_tasks", schedule=None):
        pass
"""
NOISY = """
    import sys

    print("hello from a DAG file")
    print("and on stderr", file=sys.stderr)
"""
BROKEN = """
    raise RuntimeError("boom")
"""


def meta_import(tmp_path: Path, files: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    folder = tmp_path / "dags"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    env = {
        **os.environ,
        "META_HOME": str(tmp_path / "home"),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    command = [META, "import", "airflow", "--dags-folder", str(folder), "-o", str(tmp_path / "out"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300), folder


def test_report_per_dag_and_nothing_but_written_paths_on_stdout(tmp_path: Path) -> None:
    files = {"good.py": GOOD, "documented.py": DOCUMENTED, "empty.py": EMPTY, "noisy.py": NOISY, "broken.py": BROKEN}
    result, folder = meta_import(tmp_path, files, "--report", str(tmp_path / "report"))
    out = tmp_path / "out"
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        str(out / "documented.yaml"),
        str(out / "good.yaml"),
        str(tmp_path / "report.md"),
        str(tmp_path / "report.json"),
    ]
    assert "hello from a DAG file" in result.stderr and "and on stderr" in result.stderr
    assert "RuntimeError: boom" in result.stderr and "Traceback" in result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["source"] == "airflow" and report["complete"] is False
    assert report["summary"] == {"full": 1, "partial": 1, "refused": 2}
    entries = {e["subject"]: e for e in report["entries"]}
    assert entries["DAG 'good'"] == {
        "subject": "DAG 'good'",
        "id": "good",
        "status": "full",
        "location": f"{folder / 'good.py'}:4",
        "notes": [],
        "reason": None,
        "received": None,
        "expected": None,
        "files": [str(out / "good.yaml")],
        "extra": {},
    }
    documented = entries["DAG 'documented'"]
    assert documented["status"] == "partial" and documented["files"] == [str(out / "documented.yaml")]
    assert len(documented["notes"]) == 1 and documented["notes"][0].startswith("DAG doc_md=")
    refused = entries["DAG 'no_tasks'"]
    assert (refused["status"], refused["reason"], refused["files"]) == ("refused", "the DAG has no tasks", [])
    assert refused["location"] == f"{folder / 'empty.py'}:3" and refused["expected"]
    broken = entries["DAG file"]
    assert broken["status"] == "refused" and broken["id"] is None
    assert broken["location"] == f"{folder / 'broken.py'}:1"
    assert broken["reason"] == "Airflow could not import it: RuntimeError: boom"
    markdown = (tmp_path / "report.md").read_text()
    assert markdown.startswith("# Import report\n")
    assert "Import: 1 full, 1 partial, 2 refused." in markdown
    assert "## DAG 'documented': partial\n" in markdown and "- dropped or kept tool-specific: DAG doc_md=" in markdown
    assert "## DAG 'no_tasks': refused\n" in markdown and "- refused: the DAG has no tasks" in markdown
    assert f"- wrote `{out / 'good.yaml'}`" in markdown


def test_all_imported_exits_0_and_a_json_suffix_names_the_json_report(tmp_path: Path) -> None:
    result, _ = meta_import(tmp_path, {"good.py": GOOD}, "--report", str(tmp_path / "r" / "import.json"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == [str(tmp_path / "r" / "import.md"), str(tmp_path / "r" / "import.json")]
    assert json.loads((tmp_path / "r" / "import.json").read_text())["complete"] is True


def test_a_folder_of_only_unparseable_files_exits_1(tmp_path: Path) -> None:
    result, _ = meta_import(tmp_path, {"broken.py": BROKEN, "noisy.py": NOISY}, "--report", str(tmp_path / "r.md"))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [str(tmp_path / "r.md"), str(tmp_path / "r.json")]
    assert json.loads((tmp_path / "r.json").read_text())["summary"] == {"full": 0, "partial": 0, "refused": 1}
