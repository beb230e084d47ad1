"""The product's central claim: the same pipeline ends in the same task states on every backend."""

from __future__ import annotations

import pytest

from tests.conformance.cases import CASES, Case

BACKENDS = [
    pytest.param("local", id="local"),
    pytest.param("airflow", id="airflow", marks=[pytest.mark.airflow, pytest.mark.slow]),
    pytest.param("prefect", id="prefect", marks=[pytest.mark.prefect, pytest.mark.slow]),
]


@pytest.fixture(params=BACKENDS, scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_final_task_and_run_states(case: Case, backend: str, conformance_results: dict) -> None:
    result = conformance_results[case.id]
    assert result.backend == backend
    assert result.states() == case.expected, f"{backend}: task states differ for {case.name}"
    assert str(result.state) == case.run_state, f"{backend}: run state differs for {case.name}"
    for task_id, attempts in case.attempts.items():
        assert result.tasks[task_id].attempts == attempts, f"{backend}: attempts of {task_id} in {case.name}"
    instances = result.instance_states()
    for task_id, expected in case.instances.items():
        assert instances.get(task_id) == expected, f"{backend}: mapped instances of {task_id} in {case.name}"
    for task_id, expected_attempts in case.instance_attempts.items():
        seen = {i: r.attempts for i, r in (result.tasks[task_id].instances or {}).items()}
        assert seen == expected_attempts, f"{backend}: attempts per map index of {task_id} in {case.name}"
