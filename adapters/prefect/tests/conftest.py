"""In-process tests of meta-prefect. They run in the main environment and in .venv-prefect (newest Prefect, no
Airflow), so they import nothing from the repo's tests/ package. One throwaway Prefect server per session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def meta_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["META_HOME"] = str(tmp_path_factory.mktemp("meta_home"))


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway Prefect server (Prefect's own test harness) that flows in this process report to."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())
