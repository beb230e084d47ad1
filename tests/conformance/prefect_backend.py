"""Conformance results on a real Prefect 3 server + process worker: every case written as YAML
(``meta.authoring.yaml_writer``) and deployed at once by the ``meta deploy --target prefect`` CLI, triggered through
``POST /api/deployments/{id}/create_flow_run`` with the case's params, states read back from the REST API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from meta.spec.results import RunResult
from tests.conformance.cases import CASES

pytest_plugins = ["tests.fixtures.prefect_server"]


@pytest.fixture(scope="session")
def prefect_conformance_results(prefect_server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunResult]:
    from meta_prefect.client import PrefectClient
    from meta_prefect.deploy import DEFAULT_DEPLOYMENT_NAME
    from meta_prefect.remote import wait_for

    from meta.authoring.yaml_writer import pipeline_to_yaml

    specs = tmp_path_factory.mktemp("conformance_specs")
    for case in CASES:
        (specs / f"{case.id}.yaml").write_text(pipeline_to_yaml(case.pipeline), encoding="utf-8")
    meta = Path(sys.executable).parent / "meta"
    deployed = subprocess.run(
        [str(meta), "deploy", "--target", "prefect", str(specs), "--pool", prefect_server.pool],
        env=prefect_server.env,  # PREFECT_API_URL and META_HOME of the session's server
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
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
