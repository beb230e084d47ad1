"""Compiling a pipeline with depends_on: the backend gets no schedule of its own (the control plane starts each run,
so nothing runs twice), and a target no workspace places it on refuses depends_on, naming it."""

from __future__ import annotations

import pytest

from meta import get_target
from meta.plugins.supervision import Supervision
from meta.spec.errors import CompileError
from meta.spec.model import Pipeline
from meta.spec.workspace import Workspace

LATEST = Pipeline.model_validate(
    {
        "id": "report",
        "schedule": {"kind": "cron", "cron": "0 6 * * *"},
        "depends_on": [{"pipeline": "etl", "align": "latest", "within": "12h"}],
        "tasks": [{"id": "t", "action": {"kind": "shell", "command": "true"}}],
    }
)
WORKSPACE = Workspace.model_validate(
    {
        "backends": {
            "af": {"kind": "airflow", "url": "http://127.0.0.1:1"},
            "pf": {"kind": "prefect", "url": "http://127.0.0.1:1/api"},
        },
        "placements": [{"backend": "af", "pipelines": ["report"]}, {"backend": "pf", "pipelines": ["report"]}],
    }
)


def test_the_schedule_stays_with_the_control_plane() -> None:
    assert LATEST.schedule is not None and LATEST.backend_schedule is None
    from meta_airflow.plan import schedule_value
    from meta_prefect.deploy import schedules

    assert schedule_value(LATEST) is None
    assert schedules(LATEST) == []


@pytest.mark.parametrize("backend", ["airflow", "prefect"])
def test_depends_on_compiles_only_where_a_control_plane_starts_it(backend: str) -> None:
    target = get_target(backend)
    with pytest.raises(CompileError) as caught:
        target.ensure_supported(LATEST)
    assert "depends_on (etl)" in str(caught.value) and "meta serve" in str(caught.value)
    other = Workspace.model_validate({"name": "other", "backends": {"loc": {"kind": "local"}}, "placements": []})
    with pytest.raises(CompileError, match="places it on no"):
        target.supervised(Supervision.of(other)).ensure_supported(LATEST)
    target.supervised(Supervision.of(WORKSPACE)).ensure_supported(LATEST)


def test_the_local_runner_runs_it_on_demand_anyway() -> None:
    get_target("local").ensure_supported(LATEST)


def test_prefect_takes_catchup_and_end_date_once_a_control_plane_runs_the_slots() -> None:
    from meta_prefect.deploy import schedules

    daily = Pipeline.model_validate(
        {
            "id": "report",
            "schedule": {"kind": "cron", "cron": "0 6 * * *"},
            "start_date": "2026-11-01T00:00:00",
            "end_date": "2026-12-31T00:00:00",
            "catchup": True,
            "tasks": [{"id": "t", "action": {"kind": "shell", "command": "true"}}],
        }
    )
    prefect = get_target("prefect")
    assert {e.feature for e in prefect.check(daily)} == {"catchup: true", "end_date", "start_date with a cron schedule"}
    assert all(
        "`meta serve` then runs its slots" in str(e)
        for e in prefect.check(daily)
        if e.feature != "start_date with a cron schedule"
    )
    prefect.supervised(Supervision.of(WORKSPACE)).ensure_supported(daily)
    assert schedules(daily) == []  # the deployment has no schedule: the plane starts every slot
    # Airflow keeps its own catchup and end_date
    from meta_airflow.plan import schedule_value

    assert schedule_value(daily) is not None
