"""meta.plugins.codegen.write_generated: the file-writing rules every code-generating target shares."""

from __future__ import annotations

from pathlib import Path

import pytest

from meta.plugins.codegen import write_generated
from meta.spec.errors import CompileError


def test_colliding_file_names_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(CompileError, match=r"'a\.b' and 'a_b' both become a_b\.py; rename one"):
        write_generated("airflow", [("a.b", "a_b.py", "x = 1\n"), ("a_b", "a_b.py", "x = 2\n")], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unchanged_files_are_not_rewritten(tmp_path: Path) -> None:
    [path] = write_generated("prefect", [("p", "p.py", "x = 1\n")], tmp_path)
    path.touch()
    before = path.stat().st_mtime_ns
    write_generated("prefect", [("p", "p.py", "x = 1\n")], tmp_path)
    assert path.stat().st_mtime_ns == before
    write_generated("prefect", [("p", "p.py", "x = 2\n")], tmp_path)
    assert path.read_text() == "x = 2\n"
