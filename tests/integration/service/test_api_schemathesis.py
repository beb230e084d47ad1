"""Schemathesis against the API's own OpenAPI document, with an admin token, on SQLite and on PostgreSQL: whatever
it generates (valid requests and invalid ones), no endpoint answers 5xx, every answer's status is documented and
every body matches its schema. /stream is left out: a valid request never ends.

Each operation is its own test (the route table of tests/unit/service/test_api_auth.py), driven through
``APIOperation.as_strategy`` and Hypothesis directly: schemathesis' lazy pytest loader does not run on pytest 9.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from meta.service.store.db import open_store
from tests.integration.service.pg_support import (
    pg_store_fixture,  # noqa: F401 - provides the pg_store fixture
    pg_url,  # noqa: F401 - the session database
)
from tests.unit.service.api_support import Api, build_api
from tests.unit.service.test_api_auth import ROUTES
from tests.unit.service.test_api_lineage import airflow_mapper

# The API's operations (the dashboard's pages are not in the OpenAPI document: they take nothing and hold no data).
OPERATIONS = sorted(
    (method, path) for method, path in ROUTES if path.startswith(("/api/", "/metrics")) and path != "/api/v1/stream"
)
NO_INPUT = {("GET", "/api/v1/health"), ("DELETE", "/api/v1/session")}  # no parameter, no body, no token
EXAMPLES = int(os.environ.get("META_FUZZ_EXAMPLES", "40"))  # per operation and mode; 200 passes too (2 min)
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    if request.param == "postgres":
        store = request.getfixturevalue("pg_store")
    else:
        store = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    built = build_api(store, lineage=airflow_mapper)
    with built.client:
        yield built
    store.close()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_server_error_anywhere(api: Api, method: str, path: str, mode: GenerationMode) -> None:
    if (method, path) in NO_INPUT and mode is GenerationMode.NEGATIVE:
        pytest.skip(f"{method} {path} takes no input: there is no invalid request to make")
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", api.app)
    operation = schema[path][method]
    # The bootstrap admin: a DELETE /tokens/{id} the fuzzer sends cannot revoke it halfway through.
    headers = api.headers("ingest" if path == "/api/v1/lineage" else "bootstrap")

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def fuzz(case: Any) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    fuzz()
