"""Conformance results on a real Prefect 3 server + process worker: every case deployed at once with the prefect
target's ``deploy`` (what ``meta deploy --target prefect`` calls), triggered through
``POST /api/deployments/{id}/create_flow_run`` with the case's params, states read back from the REST API."""

from __future__ import annotations

import pytest

from meta.results import RunResult
from tests.conformance.cases import CASES

pytest_plugins = ["tests.fixtures.prefect_server"]


@pytest.fixture(scope="session")
def prefect_conformance_results(prefect_server) -> dict[str, RunResult]:
    from meta_prefect.client import PrefectClient
    from meta_prefect.deploy import DEFAULT_DEPLOYMENT_NAME
    from meta_prefect.remote import wait_for

    from meta.plugins import get_target

    get_target("prefect").deploy(
        [c.pipeline for c in CASES],
        pool=prefect_server.pool,
        api_url=prefect_server.api_url,
        deploy_dir=prefect_server.deploy_dir,
    )
    client = PrefectClient.connect(prefect_server.api_url)
    try:
        runs = {}
        for case in CASES:
            deployment = client.read_deployment_by_name(case.id, DEFAULT_DEPLOYMENT_NAME)
            flow_run = client.create_flow_run(deployment["id"], case.params)
            runs[flow_run["id"]] = case.pipeline
        results = wait_for(client, runs, timeout=300)
    finally:
        client.close()
    return {runs[flow_run_id].id: result for flow_run_id, result in results.items()}
