"""Each backend contributes one session fixture ``<backend>_conformance_results`` -> {pipeline id: RunResult}.

Backends with real servers deploy every case at once and trigger all runs together (one server per session), so the
whole matrix costs roughly one slow run, not one per case.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def conformance_results(request: pytest.FixtureRequest, backend: str) -> dict:
    return request.getfixturevalue(f"{backend}_conformance_results")
