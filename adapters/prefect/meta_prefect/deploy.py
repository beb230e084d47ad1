"""``meta deploy --target prefect``: create or update one deployment per pipeline through the REST API.

The flow file is generated (``codegen``) into a deploy directory that the process worker can read; the deployment
points there with a ``set_working_directory`` pull step and the entrypoint ``<file>.py:<function>``. Re-running is
idempotent: flows and deployments are upserted by name (schedules replaced), dataset triggers are owned by the
deployment and replaced as a whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meta import CronSchedule, DatasetSchedule, IntervalSchedule, MetaError, Pipeline
from meta_prefect import events
from meta_prefect.client import PrefectClient
from meta_prefect.codegen import module_name, write_flows

DEFAULT_DEPLOYMENT_NAME = "meta"


@dataclass(frozen=True)
class Deployed:
    pipeline: str
    deployment_id: str
    name: str
    path: Path

    def __str__(self) -> str:
        return f"{self.pipeline}/{self.name} ({self.deployment_id}) <- {self.path}"


def default_deploy_dir() -> Path:
    from meta import state_dir

    return state_dir() / "prefect" / "flows"


def parameter_schema(pipeline: Pipeline) -> dict[str, Any]:
    """Prefect's parameter_openapi_schema: an object schema with one property per Param, in declaration order."""
    properties: dict[str, Any] = {}
    for position, (name, param) in enumerate(pipeline.params.items()):
        prop = {"title": name, "position": position, **param.json_schema()}
        if not param.required:
            prop["default"] = param.default
        properties[name] = prop
    required = [name for name, param in pipeline.params.items() if param.required]
    schema: dict[str, Any] = {"title": "Parameters", "type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def schedules(pipeline: Pipeline) -> list[dict[str, Any]]:
    schedule = pipeline.schedule
    if isinstance(schedule, CronSchedule):
        return [{"schedule": {"cron": schedule.expression, "timezone": pipeline.timezone}, "active": True}]
    if isinstance(schedule, IntervalSchedule):
        spec: dict[str, Any] = {"interval": schedule.every.total_seconds(), "timezone": pipeline.timezone}
        if pipeline.start_date is not None:
            spec["anchor_date"] = pipeline.start_date.isoformat()
        return [{"schedule": spec, "active": True}]
    return []  # no schedule, or datasets (an automation, see events.automation)


def tags(pipeline: Pipeline) -> list[str]:
    out = list(pipeline.tags)
    if pipeline.owner:
        out.append(f"owner:{pipeline.owner}")
    if pipeline.team:
        out.append(f"team:{pipeline.team}")
    return sorted(set(out))


def deployment_body(pipeline: Pipeline, flow_id: str, pool: str, flow_dir: Path, name: str) -> dict[str, Any]:
    fn = module_name(pipeline.id)
    return {
        "name": name,
        "flow_id": flow_id,
        "work_pool_name": pool,
        "entrypoint": f"{fn}.py:{fn}",
        "path": str(flow_dir),
        "pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": str(flow_dir)}}],
        "parameter_openapi_schema": parameter_schema(pipeline),
        "parameters": pipeline.default_params(),
        "enforce_parameter_schema": True,
        "tags": tags(pipeline),
        "description": pipeline.description,
        "schedules": schedules(pipeline),
        "concurrency_limit": pipeline.max_active_runs,
        "paused": False,
        "job_variables": {},
    }


def deploy_pipelines(
    client: PrefectClient,
    pipelines: Sequence[Pipeline],
    *,
    pool: str,
    deploy_dir: Path | None = None,
    name: str = DEFAULT_DEPLOYMENT_NAME,
    sources: Sequence[Path] = (),
) -> list[Deployed]:
    if client.read_work_pool(pool) is None:
        raise MetaError(
            f"work pool {pool!r} not found on the Prefect server; create it with "
            f"`prefect work-pool create {pool} --type process` and start `prefect worker start --pool {pool}`"
        )
    flow_dir = (deploy_dir or default_deploy_dir()).resolve()
    paths = write_flows(pipelines, flow_dir, sources)
    out = []
    for pipeline, path in zip(pipelines, paths, strict=True):
        flow_id = client.ensure_flow(pipeline.id)
        deployment_id = client.upsert_deployment(deployment_body(pipeline, flow_id, pool, flow_dir, name))
        owner = f"prefect.deployment.{deployment_id}"
        automations = []
        if isinstance(pipeline.schedule, DatasetSchedule):
            automations.append(events.automation(pipeline, pipeline.schedule, deployment_id))
        client.replace_owned_automations(owner, automations)
        out.append(Deployed(pipeline.id, deployment_id, name, path))
    return out


def deploy(pipelines: Sequence[Pipeline], **options: Any) -> list[str]:
    """The target's ``deploy``: options ``pool`` (required), ``api_url``, ``deploy_dir``, ``name``, ``sources``."""
    pool = options.get("pool")
    if not pool:
        raise MetaError("deploying to Prefect needs a work pool: pass --pool NAME (a process pool)")
    client = PrefectClient.connect(options.get("api_url"))
    try:
        deploy_dir = options.get("deploy_dir")
        deployed = deploy_pipelines(
            client,
            pipelines,
            pool=pool,
            deploy_dir=Path(deploy_dir) if deploy_dir else None,
            name=options.get("name") or DEFAULT_DEPLOYMENT_NAME,
            sources=options.get("sources") or (),
        )
    finally:
        client.close()
    return [str(d) for d in deployed]
