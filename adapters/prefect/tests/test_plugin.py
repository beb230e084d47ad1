"""Registration through the ``meta.plugins`` entry point and the capability checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from meta_prefect.plugin import PrefectTarget

from meta.authoring.load import load_file
from meta.authoring.workspace import load_workspace
from meta.plugins.manager import get_target
from meta.plugins.supervision import Supervision
from meta.spec.errors import CompileError
from meta.spec.model import Pipeline


def pipeline(**fields: Any) -> Pipeline:
    tasks = fields.pop("tasks", [{"id": "t", "action": {"kind": "noop"}}])
    return Pipeline.model_validate({"id": "p", "tasks": tasks, **fields})


def test_target_is_registered_by_entry_point() -> None:
    target = get_target("prefect")
    assert isinstance(target, PrefectTarget) and target.name == "prefect"


@pytest.mark.parametrize(
    ("fields", "feature"),
    [
        ({"sla": {"max_duration": "1h"}}, "sla.max_duration"),  # without a workspace: nobody would watch it
        ({"alerts": {"on_sla_miss": ["slack:x"]}}, "alerts.on_sla_miss"),
        ({"catchup": True, "schedule": {"kind": "cron", "cron": "@daily"}}, "catchup: true"),
        ({"end_date": "2030-01-01T00:00:00+00:00"}, "end_date"),
        (
            {"start_date": "2999-01-01T00:00:00+00:00", "schedule": {"kind": "cron", "cron": "@daily"}},
            "start_date with a cron schedule",
        ),
        ({"params": {"not valid": {"default": 1}}}, "param name 'not valid'"),
        ({"params": {"class": {"default": 1}}}, "param name 'class'"),
        (
            {"tasks": [{"id": "t", "action": {"kind": "airflow_operator", "operator": "x.y.Op"}}]},
            "the Airflow operator x.y.Op",
        ),
        (
            {"params": {"day": {"type": "string"}}, "schedule": {"kind": "interval", "every": "1h"}},
            "required params on a scheduled pipeline",
        ),
    ],
)
def test_unsupported_features_are_compile_errors_naming_them(fields: dict[str, Any], feature: str) -> None:
    target = get_target("prefect")
    p = pipeline(**fields)
    errors = target.check(p)
    assert [e.feature for e in errors] == [feature]
    with pytest.raises(CompileError, match="prefect cannot express"):
        target.ensure_supported(p)


def test_supported_pipeline_has_no_problems() -> None:
    p = pipeline(
        schedule={"kind": "interval", "every": "15m"},
        start_date="2030-01-01T00:00:00+00:00",
        params={"country": {"type": "string", "default": "CH"}},
        alerts={"on_failure": ["slack:data-team"]},
        max_active_runs=1,
        max_active_tasks=2,
    )
    assert get_target("prefect").check(p) == []


CRON = {"kind": "cron", "cron": "0 3 * * *"}


@pytest.mark.parametrize(
    "fields",
    [
        {"start_date": "2024-01-01T00:00:00", "catchup": False},  # naive: local to the pipeline's timezone
        {"start_date": "2024-01-01T00:00:00+00:00", "catchup": False, "timezone": "Europe/Zurich"},
    ],
)
def test_a_past_start_date_with_a_cron_schedule_and_no_catchup_passes(fields: dict[str, Any]) -> None:
    """What every imported Airflow DAG has (issue 15): Prefect's deployment starts from now, as the DAG would."""
    assert get_target("prefect").check(pipeline(schedule=CRON, **fields)) == []


def test_a_future_start_date_with_a_cron_schedule_is_refused_with_the_reason() -> None:
    (error,) = get_target("prefect").check(pipeline(schedule=CRON, start_date="2999-01-01T00:00:00"))
    assert error.feature == "start_date with a cron schedule"
    assert "start_date 2999-01-01T00:00:00 is in the future" in str(error)
    assert "a start in the past without catchup passes" in str(error)


def test_the_start_of_a_cron_schedule_counts_in_the_pipelines_timezone() -> None:
    from datetime import UTC, datetime

    from meta_prefect.capabilities import cron_start_problem

    # 2030-01-01 00:30 in Zurich is 2029-12-31 23:30 UTC: already past at 23:45 UTC, not yet at 23:15 UTC
    p = pipeline(schedule=CRON, start_date="2030-01-01T00:30:00", timezone="Europe/Zurich")
    assert cron_start_problem(p, now=datetime(2029, 12, 31, 23, 45, tzinfo=UTC)) is None
    assert "in the future" in (cron_start_problem(p, now=datetime(2029, 12, 31, 23, 15, tzinfo=UTC)) or "")


def test_a_past_cron_start_with_catchup_is_refused_twice_by_name() -> None:
    """Catchup decides which past slots run, so its start matters as well (both name what to do)."""
    errors = get_target("prefect").check(pipeline(schedule=CRON, start_date="2024-01-01T00:00:00", catchup=True))
    assert [e.feature for e in errors] == ["catchup: true", "start_date with a cron schedule"]
    assert "with catchup: true the start decides which past slots run" in str(errors[1])


ROOT = Path(__file__).resolve().parents[3]


def test_the_flagship_example_needs_the_repositorys_workspace() -> None:
    """README: `meta compile --target prefect dags/marketing_roi.yaml` works because meta.yaml places it on prefect;
    without a workspace its sla (finish_by, max_duration) is refused, each feature by name, never dropped."""
    (example,) = load_file(ROOT / "dags" / "marketing_roi.yaml")
    target = get_target("prefect")
    alone = target.check(example)
    assert [e.feature for e in alone] == ["sla.finish_by", "sla.max_duration"]
    assert all("place the pipeline on a prefect backend in a workspace (meta.yaml)" in str(e) for e in alone)
    loaded = load_workspace(ROOT / "meta.yaml")
    watched = target.supervised(Supervision.of(loaded.workspace, str(loaded.path)))
    assert watched.check(example) == []
    watched.ensure_supported(example)


def test_every_sla_feature_passes_when_watched() -> None:
    from meta.spec.workspace import Workspace

    p = pipeline(
        schedule={"kind": "cron", "cron": "0 1 * * *"},
        sla={
            "finish_by": "09:00",
            "start_by": "02:00",
            "max_duration": "1h",
            "fresh_within": "1d",
            "deadlines": [{"reference": "queued_at", "interval": "30m"}],
        },
        alerts={"on_sla_miss": ["slack:x"], "sla_escalation": {"after": "1h", "channels": ["slack:y"]}},
        tasks=[{"id": "t", "action": {"kind": "noop"}, "max_duration": "1m"}],
    )
    workspace = Workspace.model_validate(
        {
            "backends": {"pf": {"kind": "prefect", "url": "http://127.0.0.1:4200/api"}},
            "placements": [{"backend": "pf", "pipelines": ["*"]}],
        }
    )
    assert len(get_target("prefect").check(p)) == 8
    assert get_target("prefect").supervised(Supervision.of(workspace)).check(p) == []
