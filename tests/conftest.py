"""Shared fixtures only. Server fixtures live in their own modules, listed in ``pytest_plugins`` where needed."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def meta_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state directory ($META_HOME): run history, logs and the default DuckDB warehouse."""
    home = tmp_path / "meta_home"
    monkeypatch.setenv("META_HOME", str(home))
    return home
