"""Conformance results on a real Airflow 3: every case deployed through the loader at once, triggered via REST."""

from __future__ import annotations

import uuid

import pytest

from meta.spec.results import RunResult
from tests.conformance.cases import CASES

pytest_plugins = ["tests.fixtures.airflow_server"]


@pytest.fixture(scope="session")
def airflow_conformance_results(airflow_server) -> dict[str, RunResult]:
    from meta_airflow.remote import trigger, wait_for_dags, wait_for_runs, write_spec

    for case in CASES:
        write_spec(airflow_server.specs_dir, case.pipeline)
    with airflow_server.client("admin") as client:
        wait_for_dags(client, [c.id for c in CASES])
        runs = {}
        for case in CASES:
            run_id = f"conformance_{uuid.uuid4().hex[:12]}"
            trigger(client, case.pipeline, case.params, run_id)
            runs[case.id] = run_id
        return wait_for_runs(client, runs, timeout=400, pipelines={c.id: c.pipeline for c in CASES})
