"""``meta deploy --target prefect``: create or update one deployment per pipeline through the REST API.

The flow file is generated (``codegen``) into a deploy directory that the process worker can read; the deployment
points there with a ``set_working_directory`` pull step and the entrypoint ``<file>.py:<function>``. Re-running is
idempotent: flows and deployments are upserted by name (schedules replaced), dataset triggers are owned by the
deployment and replaced as a whole.

Each deployment's ``version`` is meta's fingerprint of what deploy sent (body, flow file, automation), so
``meta deploy --dry-run`` (``compare_deployed``) tells a deployment this spec would change from one it leaves as is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meta import (
    CronSchedule,
    DatasetSchedule,
    DeployAction,
    IntervalSchedule,
    MetaError,
    Pipeline,
    PlannedDeploy,
    schedule_driven_by_control_plane,
)
from meta_prefect import events
from meta_prefect.client import PrefectClient
from meta_prefect.codegen import module_name, render, write_flows

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
    """The deployment's schedules; none for a pipeline with ``depends_on``, or with catchup or an end date (the
    target accepts those only when a workspace places it on prefect): meta's control plane starts each run."""
    if schedule_driven_by_control_plane(pipeline, "prefect"):
        return []
    schedule = pipeline.backend_schedule
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


def fingerprint(pipeline: Pipeline, pool: str, flow_dir: Path, name: str) -> str:
    """``meta-<16 hex>``: a hash of everything deploy sends for ``pipeline`` (the deployment body but the server's
    flow id, the flow file, the dataset automation); stored as the deployment's ``version``."""
    body = deployment_body(pipeline, "", pool, flow_dir, name)
    body.pop("flow_id")
    schedule = pipeline.schedule
    automation = events.automation(pipeline, schedule, "") if isinstance(schedule, DatasetSchedule) else None
    data = json.dumps({"deployment": body, "flow": render(pipeline), "automation": automation}, sort_keys=True)
    return "meta-" + hashlib.sha256(data.encode()).hexdigest()[:16]


def _check_pool(client: PrefectClient, pool: str) -> None:
    if client.read_work_pool(pool) is None:
        raise MetaError(
            f"work pool {pool!r} not found on the Prefect server; create it with "
            f"`prefect work-pool create {pool} --type process` and start `prefect worker start --pool {pool}`"
        )


def deploy_pipelines(
    client: PrefectClient,
    pipelines: Sequence[Pipeline],
    *,
    pool: str,
    deploy_dir: Path | None = None,
    name: str = DEFAULT_DEPLOYMENT_NAME,
    sources: Sequence[Path] = (),
) -> list[Deployed]:
    _check_pool(client, pool)
    flow_dir = (deploy_dir or default_deploy_dir()).resolve()
    paths = write_flows(pipelines, flow_dir, sources)
    out = []
    for pipeline, path in zip(pipelines, paths, strict=True):
        flow_id = client.ensure_flow(pipeline.id)
        body = deployment_body(pipeline, flow_id, pool, flow_dir, name)
        body["version"] = fingerprint(pipeline, pool, flow_dir, name)
        deployment_id = client.upsert_deployment(body)
        owner = f"prefect.deployment.{deployment_id}"
        automations = []
        if isinstance(pipeline.schedule, DatasetSchedule):
            automations.append(events.automation(pipeline, pipeline.schedule, deployment_id))
        client.replace_owned_automations(owner, automations)
        out.append(Deployed(pipeline.id, deployment_id, name, path))
    return out


# Deployment fields worth naming when a deployment differs from the spec (the rest is summed up by the version).
_COMPARED = ("work_pool_name", "entrypoint", "path", "tags", "description", "parameters", "parameter_openapi_schema")


def plan_deployments(
    client: PrefectClient,
    pipelines: Sequence[Pipeline],
    *,
    pool: str,
    deploy_dir: Path | None = None,
    name: str = DEFAULT_DEPLOYMENT_NAME,
) -> list[PlannedDeploy]:
    """What ``deploy_pipelines`` would do to each pipeline, reading only: no deployment of that flow and name ->
    created; the same fingerprint and flow file -> unchanged; else changed, naming what differs."""
    _check_pool(client, pool)
    flow_dir = (deploy_dir or default_deploy_dir()).resolve()
    out = []
    for pipeline in pipelines:
        found = client.request("GET", f"deployments/name/{pipeline.id}/{name}", ok=(404,))
        if not isinstance(found, dict) or "id" not in found:
            out.append(PlannedDeploy(pipeline.id, DeployAction.CREATED, f"deployment {pipeline.id}/{name} in {pool}"))
            continue
        body = deployment_body(pipeline, "", pool, flow_dir, name)
        differs = [key for key in _COMPARED if found.get(key) != body[key]]
        flow_file = flow_dir / f"{module_name(pipeline.id)}.py"
        if not flow_file.is_file():
            differs.append(f"flow file {flow_file} (missing)")
        elif flow_file.read_text(encoding="utf-8") != render(pipeline):
            differs.append(f"flow file {flow_file}")
        if found.get("version") != fingerprint(pipeline, pool, flow_dir, name) and not differs:
            differs.append("schedules, settings or triggers" if found.get("version") else "no meta version stamp")
        where = f"deployment {pipeline.id}/{name} ({found['id']})"
        if differs:
            out.append(PlannedDeploy(pipeline.id, DeployAction.CHANGED, f"{where}: {', '.join(differs)}"))
        else:
            out.append(PlannedDeploy(pipeline.id, DeployAction.UNCHANGED, where))
    return out


def compare_deployed(pipelines: Sequence[Pipeline], **options: Any) -> list[PlannedDeploy]:
    """The target's ``compare_deployed``: the options of ``deploy``."""
    pool = options.get("pool")
    if not pool:
        raise MetaError("deploying to Prefect needs a work pool: pass --pool NAME (a process pool)")
    client = PrefectClient.connect(options.get("api_url"), auth_string=options.get("auth"))
    try:
        deploy_dir = options.get("deploy_dir")
        return plan_deployments(
            client,
            pipelines,
            pool=pool,
            deploy_dir=Path(deploy_dir) if deploy_dir else None,
            name=options.get("name") or DEFAULT_DEPLOYMENT_NAME,
        )
    finally:
        client.close()


def deploy(pipelines: Sequence[Pipeline], **options: Any) -> list[str]:
    """The target's ``deploy``: options ``pool`` (required), ``api_url``, ``auth`` (``user:password``, default
    PREFECT_API_AUTH_STRING), ``deploy_dir``, ``name``, ``sources``."""
    pool = options.get("pool")
    if not pool:
        raise MetaError("deploying to Prefect needs a work pool: pass --pool NAME (a process pool)")
    client = PrefectClient.connect(options.get("api_url"), auth_string=options.get("auth"))
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
