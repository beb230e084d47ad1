"""The shadow copy of a pipeline: what ``meta migrate shadow`` deploys on the target beside the live pipeline.

It is the same pipeline, so the two runs of a logical date can be compared task by task, with what would make the
two sides interfere taken out:

* its id is ``<id>__shadow``: on the target it is a pipeline of its own, which no dependency, SLA or dashboard
  confuses with the live one;
* it has no schedule and no ``depends_on``: the control plane starts it for each live run's logical date;
* it sends no alerts and has no SLA (a shadow failing is a finding of the report, not a page), and ``alert`` op
  tasks become no-ops;
* it announces no datasets (``outputs``): a shadow write must not start the live pipeline's consumers;
* every connection a ``sql`` task or a ``warehouse_load`` uses is renamed to its shadow connection
  (``meta.yaml``: ``migrations.<id>.shadow_connections``), so the two never write the same tables. A writing task
  whose connection has no shadow, or a load with a literal ``url``, is refused: a shadow must never write to the
  live warehouse.

``python`` and ``shell`` tasks run as they are: meta cannot see where they write. ``shadow_copy`` lists them in its
notes so the person starting the shadow knows to check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meta.execution.connections import DEFAULT_WAREHOUSE
from meta.spec.errors import MetaError
from meta.spec.model import Pipeline
from meta.spec.workspace import Migration

SHADOW_SUFFIX = "__shadow"
WRITING_OPS = ("warehouse_load",)


def shadow_id(pipeline_id: str) -> str:
    return pipeline_id + SHADOW_SUFFIX


def live_id(pipeline_id: str) -> str:
    """The live pipeline a shadow copy's id names (itself for any other id)."""
    return pipeline_id.removesuffix(SHADOW_SUFFIX) if pipeline_id.endswith(SHADOW_SUFFIX) else pipeline_id


class ShadowRefused(MetaError):
    """The pipeline cannot be shadowed safely (a write with no shadow connection)."""


@dataclass(frozen=True)
class ShadowCopy:
    pipeline: Pipeline
    notes: list[str] = field(default_factory=list)


def shadow_copy(pipeline: Pipeline, migration: Migration) -> ShadowCopy:
    """The shadow copy of ``pipeline`` (see the module docstring); ShadowRefused names every unsafe task."""
    data = pipeline.model_dump(mode="json", by_alias=True)
    data["id"] = shadow_id(pipeline.id)
    for key in ("schedule", "depends_on", "sla", "alerts", "catchup", "end_date"):
        data.pop(key, None)
    renames = migration.shadow_connections
    problems: list[str] = []
    notes: list[str] = []
    tasks = []
    for task in data["tasks"]:
        task = dict(task)
        task.pop("outputs", None)
        task.pop("max_duration", None)
        action = dict(task["action"])
        kind = action.get("kind")
        where = f"{pipeline.id}: task {task['id']}"
        if kind == "sql":
            action["conn"] = _renamed(action["conn"], renames, where, problems)
        elif kind == "op" and action.get("op") in WRITING_OPS:
            options = dict(action.get("with") or {})
            if options.get("url") is not None:
                problems.append(
                    f"{where}: warehouse_load writes to a literal url; give it a connection (conn:) that "
                    "migrations.<id>.shadow_connections can redirect"
                )
            else:
                options["conn"] = _renamed(options.get("conn") or DEFAULT_WAREHOUSE, renames, where, problems)
            action["with"] = options
        elif kind == "op" and action.get("op") == "alert":
            action = {"kind": "noop"}
            notes.append(f"{where}: an alert task; the shadow copy does nothing there (no alert is sent twice)")
        elif kind in ("python", "shell"):
            notes.append(f"{where}: a {kind} task runs as it is; meta cannot redirect where it writes")
        elif kind == "airflow_operator":
            notes.append(f"{where}: an airflow_operator runs as it is; meta cannot redirect where it writes")
        task["action"] = action
        tasks.append(task)
    if problems:
        raise ShadowRefused(
            "the shadow copy would write to the live warehouse:\n  "
            + "\n  ".join(problems)
            + "\nexpected: every connection it writes through listed in meta.yaml under "
            f"migrations.{pipeline.id}.shadow_connections (live name -> shadow name)"
        )
    data["tasks"] = tasks
    return ShadowCopy(Pipeline.model_validate(data), notes)


def _renamed(name: str, renames: dict[str, str], where: str, problems: list[str]) -> str:
    shadow = renames.get(name)
    if shadow is None:
        problems.append(f"{where}: writes through connection {name!r}, which has no shadow connection")
        return name
    return shadow


def unscheduled(pipeline: Pipeline) -> Pipeline:
    """``pipeline`` as deployed on the side the control plane schedules (after a cutover): the same tasks, no
    schedule of the backend's own, so only the control plane starts its slots. Its SLA stays in the spec the control
    plane watches (slot SLAs need the schedule), not in the deployed copy."""
    data: dict[str, Any] = pipeline.model_dump(mode="json", by_alias=True)
    for key in ("schedule", "catchup", "end_date", "sla"):
        data.pop(key, None)
    alerts = dict(data.get("alerts") or {})
    for key in ("on_sla_miss", "sla_escalation"):
        alerts.pop(key, None)
    data["alerts"] = alerts
    return Pipeline.model_validate(data)
