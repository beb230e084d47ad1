"""Deployments created through the REST API of a real (throwaway) Prefect server; idempotent on re-run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from meta_prefect import events
from meta_prefect.client import PrefectApiError, PrefectClient
from meta_prefect.deploy import deploy_pipelines, parameter_schema

from meta.spec.errors import MetaError
from meta.spec.model import Pipeline

pytestmark = pytest.mark.usefixtures("prefect_api")
POOL = "meta-unit-pool"


@pytest.fixture(scope="module")
def client(prefect_api: str) -> PrefectClient:
    c = PrefectClient.connect(prefect_api)
    c.request("POST", "work_pools/", {"name": POOL, "type": "process"}, ok=(409,))
    return c


def scheduled() -> Pipeline:
    return Pipeline.model_validate(
        {
            "id": "deploy_me",
            "description": "nightly sales",
            "owner": "growth",
            "tags": ["sales"],
            "schedule": {"kind": "cron", "cron": "@daily"},
            "timezone": "Europe/Zurich",
            "max_active_runs": 2,
            "params": {
                "country": {"type": "string", "default": "CH", "enum": ["CH", "DE"]},
                "day": {"type": "string", "default": "today"},
            },
            "tasks": [{"id": "t", "action": {"kind": "noop"}}],
        }
    )


def by_dataset(mode: str) -> Pipeline:
    return Pipeline.model_validate(
        {
            "id": f"on_data_{mode}",
            "schedule": {"kind": "datasets", "datasets": ["s3://b/x", "s3://b/y"], "mode": mode},
            "tasks": [{"id": "t", "action": {"kind": "noop"}}],
        }
    )


def test_deploy_creates_then_updates_the_same_deployment(client: PrefectClient, tmp_path: Path) -> None:
    [first] = deploy_pipelines(client, [scheduled()], pool=POOL, deploy_dir=tmp_path)
    [again] = deploy_pipelines(client, [scheduled()], pool=POOL, deploy_dir=tmp_path)
    assert first.deployment_id == again.deployment_id
    d = client.read_deployment(first.deployment_id)
    assert d["name"] == "meta" and d["work_pool_name"] == POOL and d["description"] == "nightly sales"
    assert d["entrypoint"] == "deploy_me.py:deploy_me" and (tmp_path / "deploy_me.py").is_file()
    assert d["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(tmp_path)}}]
    assert sorted(d["tags"]) == ["owner:growth", "sales"]
    assert d["parameters"] == {"country": "CH", "day": "today"}
    assert list(d["parameter_openapi_schema"]["properties"]) == ["country", "day"]
    assert d["parameter_openapi_schema"]["properties"]["country"]["enum"] == ["CH", "DE"]
    [schedule] = d["schedules"]  # replaced, not duplicated, by the second deploy
    assert schedule["schedule"]["cron"] == "0 0 * * *" and schedule["schedule"]["timezone"] == "Europe/Zurich"
    assert d["global_concurrency_limit"]["limit"] == 2  # max_active_runs


def test_parameter_schema_is_enforced_by_the_server(client: PrefectClient, tmp_path: Path) -> None:
    [deployed] = deploy_pipelines(client, [scheduled()], pool=POOL, deploy_dir=tmp_path)
    with pytest.raises(PrefectApiError) as info:
        client.create_flow_run(deployed.deployment_id, {"country": "FR", "day": "2026-01-01"})
    assert info.value.status in (409, 422)
    run = client.create_flow_run(deployed.deployment_id, {"day": "2026-01-01"}, idempotency_key="k1")
    same = client.create_flow_run(deployed.deployment_id, {"day": "2026-01-01"}, idempotency_key="k1")
    assert run["id"] == same["id"] and run["parameters"] == {"country": "CH", "day": "2026-01-01"}


@pytest.mark.parametrize("mode", ["any", "all"])
def test_dataset_schedule_becomes_one_owned_automation(client: PrefectClient, tmp_path: Path, mode: str) -> None:
    for _ in range(2):
        [deployed] = deploy_pipelines(client, [by_dataset(mode)], pool=POOL, deploy_dir=tmp_path)
    owned = client.automations_related_to(f"prefect.deployment.{deployed.deployment_id}")
    assert len(owned) == 1  # the second deploy replaced the first one's automation
    trigger: dict[str, Any] = owned[0]["trigger"]
    if mode == "any":
        assert trigger["type"] == "event" and trigger["expect"] == [events.DATASET_EVENT]
        assert trigger["match"]["prefect.resource.id"] == ["s3://b/x", "s3://b/y"]
    else:
        assert trigger["type"] == "compound" and trigger["require"] == "all"
        assert [t["match"]["prefect.resource.id"] for t in trigger["triggers"]] == ["s3://b/x", "s3://b/y"]
    assert owned[0]["actions"][0]["deployment_id"] == deployed.deployment_id


def test_missing_pool_and_errors_are_clear(client: PrefectClient, tmp_path: Path) -> None:
    with pytest.raises(MetaError, match=r"work pool 'nope' not found.*prefect work-pool create nope --type process"):
        deploy_pipelines(client, [scheduled()], pool="nope", deploy_dir=tmp_path)
    with pytest.raises(PrefectApiError, match=r"GET http://.*/api/deployments/not-a-uuid -> 404: .*Not Found"):
        client.read_deployment("not-a-uuid")


def test_parameter_schema_shape() -> None:
    required = Pipeline.model_validate(
        {"id": "r", "params": {"day": {"type": "string"}}, "tasks": [{"id": "t", "action": {"kind": "noop"}}]}
    )
    assert parameter_schema(required)["required"] == ["day"]
    schema = parameter_schema(scheduled())
    assert schema["properties"]["country"] == {
        "title": "country",
        "position": 0,
        "type": "string",
        "enum": ["CH", "DE"],
        "default": "CH",
    }
