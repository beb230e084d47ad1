"""Shared fixtures only. Server fixtures live in their own modules (tests/fixtures); pytest accepts
``pytest_plugins`` only in this top-level conftest, so the conformance backends and the browser are registered
here."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = [
    "tests.conformance.local_backend",
    "tests.conformance.airflow_backend",
    "tests.conformance.prefect_backend",
    # one Chromium per module for every browser test (a second sync Playwright inside the first cannot start)
    "tests.fixtures.browser",
]


@pytest.fixture
def meta_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state directory ($META_HOME): run history, logs and the default DuckDB warehouse."""
    home = tmp_path / "meta_home"
    monkeypatch.setenv("META_HOME", str(home))
    return home
