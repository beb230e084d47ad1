"""Registration through the ``meta.plugins`` entry point and the capability checks."""

from __future__ import annotations

from typing import Any

import pytest
from meta_prefect.plugin import PrefectTarget

from meta.plugins.manager import get_target
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
        ({"sla": {"max_duration": "1h"}}, "sla"),
        ({"alerts": {"on_sla_miss": ["slack:x"]}}, "alerts.on_sla_miss"),
        ({"catchup": True, "schedule": {"kind": "cron", "cron": "@daily"}}, "catchup: true"),
        ({"end_date": "2030-01-01T00:00:00+00:00"}, "end_date"),
        (
            {"start_date": "2030-01-01T00:00:00+00:00", "schedule": {"kind": "cron", "cron": "@daily"}},
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
