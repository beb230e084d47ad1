"""Datasets on Prefect: a task's outputs are Prefect events, a dataset schedule is a deployment trigger on them.

A successful task emits one event ``meta.dataset.updated`` per output, on the resource whose id is the dataset URI
(the same URI Airflow uses as the Asset). A pipeline scheduled on datasets deploys with an automation that runs the
deployment when those events arrive: one reactive trigger for ``any``, a compound trigger requiring all for ``all``.
"""

from __future__ import annotations

from typing import Any

from meta import DatasetSchedule, Pipeline, RunContext, Task

DATASET_EVENT = "meta.dataset.updated"


def emit_outputs(pipeline: Pipeline, task: Task, ctx: RunContext) -> None:
    if not task.outputs:
        return
    from prefect.events import emit_event

    for uri in task.outputs:
        emit_event(
            event=DATASET_EVENT,
            resource={"prefect.resource.id": uri, "prefect.resource.role": "dataset"},
            related=[
                {"prefect.resource.id": f"meta.pipeline.{pipeline.id}", "prefect.resource.role": "pipeline"},
                {"prefect.resource.id": f"meta.task.{pipeline.id}.{task.id}", "prefect.resource.role": "task"},
                # The task's inputs, as lineage (Airflow's inlets).
                *({"prefect.resource.id": i, "prefect.resource.role": "input"} for i in task.inputs),
            ],
            payload={"pipeline": pipeline.id, "task": task.id, "run_id": ctx.run_id},
        )


def _on(uri: str | list[str]) -> dict[str, Any]:
    return {
        "type": "event",
        "match": {"prefect.resource.id": uri},
        "expect": [DATASET_EVENT],
        "posture": "Reactive",
        "threshold": 1,
        "within": 0,
    }


def trigger(schedule: DatasetSchedule) -> dict[str, Any]:
    """The automation trigger (Prefect's JSON form) that fires when ``schedule``'s datasets are updated."""
    uris = list(schedule.datasets)
    if schedule.mode == "any" or len(uris) == 1:
        return _on(uris if len(uris) > 1 else uris[0])
    # Airflow waits for every dataset since the last run, however long ago: no time window.
    return {"type": "compound", "require": "all", "within": None, "triggers": [_on(u) for u in uris]}


def automation(pipeline: Pipeline, schedule: DatasetSchedule, deployment_id: str) -> dict[str, Any]:
    """The automation body for ``POST /api/automations/``: run the deployment when the trigger fires."""
    return {
        "name": f"meta: run {pipeline.id} when its datasets are updated",
        "description": f"datasets ({schedule.mode}): {', '.join(schedule.datasets)}",
        "enabled": True,
        "trigger": trigger(schedule),
        "actions": [{"type": "run-deployment", "source": "selected", "deployment_id": deployment_id}],
        "owner_resource": f"prefect.deployment.{deployment_id}",
    }
