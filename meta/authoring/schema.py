"""JSON Schema (draft 2020-12) of the YAML authoring form, printed by ``meta schema`` for editors and CI.

Built from the same key lists the loader checks (``meta.authoring.form``) and the model's patterns and enums, so the
schema and the loader cannot drift apart silently (tests compare them). The loader remains the authority: some
checks (cron syntax, cycles, op ``with:`` options) are beyond JSON Schema.
"""

from __future__ import annotations

from typing import Any

from meta.authoring import form
from meta.spec.durations import EXPECTED as DURATION_HELP
from meta.spec.model import ACTION_KINDS, CALLABLE_PATTERN, CHANNEL_PATTERN, DEADLINE_REFERENCES, IDENTIFIER_PATTERN
from meta.spec.states import TriggerRule

SCHEMA_ID = "https://meta-orchestrator.dev/schema/pipeline.json"


def _obj(props: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    out.update(extra)
    return out


def json_schema() -> dict[str, Any]:
    ref = {name: {"$ref": f"#/$defs/{name}"} for name in ("identifier", "duration", "callable", "channel", "param")}
    str_map = {"type": "object", "additionalProperties": {"type": "string"}}
    any_map = {"type": "object"}
    settings = {
        "retries": {"type": "integer", "minimum": 0},
        "retry_delay": ref["duration"],
        "retry_backoff": {"type": "number", "minimum": 1},
        "max_retry_delay": ref["duration"],
        "timeout": ref["duration"],
        "pool": ref["identifier"],
        "trigger_rule": {"$ref": "#/$defs/trigger_rule"},
    }
    call = {"anyOf": [ref["callable"], _obj({"callable": ref["callable"], "kwargs": any_map}, ("callable",))]}
    actions: dict[str, Any] = {
        "shell": {
            "anyOf": [
                {"type": "string", "minLength": 1},
                _obj(
                    {"command": {"type": "string", "minLength": 1}, "env": str_map, "cwd": {"type": "string"}},
                    ("command",),
                ),
            ]
        },
        "python": call,
        "branch": call,
        "sql": {
            "allOf": [
                _obj(
                    {
                        "conn": ref["identifier"],
                        "statement": {"type": "string", "minLength": 1},
                        "file": {"type": "string", "minLength": 1},
                        "split_statements": {"type": "boolean"},
                        "parameters": any_map,
                    },
                    ("conn",),
                ),
                {"anyOf": [{"required": ["statement"]}, {"required": ["file"]}]},
            ]
        },
        "noop": {"enum": [True, None, {}]},
        "op": ref["identifier"],
        "airflow_operator": {
            "anyOf": [
                {"type": "string"},
                _obj({"operator": {"type": "string"}, "arguments": any_map}, ("operator",)),
            ]
        },
    }
    uris = {"type": "array", "items": {"type": "string", "minLength": 1}}
    task_props = {
        **actions,
        "with": any_map,
        "kwargs": any_map,
        "upstream": {"anyOf": [ref["identifier"], {"type": "array", "items": ref["identifier"]}]},
        **settings,
        "max_active": {"type": "integer", "minimum": 1},
        "max_duration": ref["duration"],
        "inputs": uris,
        "outputs": uris,
        "params": any_map,
        "description": {"type": "string"},
        "map": {
            "type": "object",
            "description": "kwarg name -> a list, '{{ params.NAME }}' or '{{ tasks.ID.result }}' (python tasks)",
            "additionalProperties": {"anyOf": [{"type": "array"}, {"type": "string"}]},
        },
    }
    task = {
        **_obj(task_props),
        "oneOf": [{"required": [kind]} for kind in ACTION_KINDS],  # exactly one action
        "dependentRequired": {"with": ["op"]},
    }
    json_type = {"$ref": "#/$defs/json_type"}
    param_spec = _obj(
        {
            "type": {"anyOf": [json_type, {"type": "array", "items": json_type}]},
            "default": {},
            "required": {"type": "boolean"},
            "description": {"type": "string"},
            "enum": {"type": "array"},
            "minimum": {"type": "number"},
            "maximum": {"type": "number"},
            "minLength": {"type": "integer", "minimum": 0},
            "maxLength": {"type": "integer", "minimum": 0},
            "pattern": {"type": "string"},
            "format": {"type": "string"},
        }
    )
    schedule = {
        "anyOf": [
            {"type": "null"},
            {"type": "string", "description": form.SCHEDULE_HELP},
            _obj({"cron": {"type": "string"}}, ("cron",)),
            _obj({"every": ref["duration"]}, ("every",)),
            _obj({"datasets": {**uris, "minItems": 1}, "mode": {"enum": ["all", "any"]}}, ("datasets",)),
        ]
    }
    pipeline_props = {
        "pipeline": ref["identifier"],
        "description": {"type": "string"},
        "owner": {"type": "string"},
        "team": {"type": "string"},
        "tags": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "schedule": schedule,
        "timezone": {"type": "string", "description": "an IANA timezone like 'Europe/Zurich'"},
        "start_date": {"type": "string", "description": "ISO date or date-time"},
        "end_date": {"type": "string", "description": "ISO date or date-time"},
        "catchup": {"type": "boolean"},
        "max_active_runs": {"type": "integer", "minimum": 1},
        "max_active_tasks": {"type": "integer", "minimum": 1},
        "params": {"type": "object", "additionalProperties": ref["param"]},
        "defaults": _obj(dict(settings)),
        "sla": _obj(
            {
                "finish_by": {"type": "string", "description": "local time of day, 'HH:MM'"},
                "start_by": {"type": "string", "description": "local time of day, 'HH:MM'"},
                "max_duration": ref["duration"],
                "fresh_within": ref["duration"],
                "deadlines": {
                    "type": "array",
                    "items": _obj(
                        {
                            "reference": {"enum": list(DEADLINE_REFERENCES)},
                            "interval": ref["duration"],
                            "at": {"type": "string", "description": "ISO date-time with a UTC offset (fixed)"},
                            "max_runs": {"type": "integer", "minimum": 1},
                            "min_runs": {"type": "integer", "minimum": 1},
                        },
                        ("reference",),
                    ),
                },
            }
        ),
        "alerts": _obj(
            {
                **{k: {"type": "array", "items": ref["channel"]} for k in form.ALERT_KEYS if k != "sla_escalation"},
                "sla_escalation": _obj(
                    {"after": ref["duration"], "channels": {"type": "array", "items": ref["channel"], "minItems": 1}},
                    ("after", "channels"),
                ),
            }
        ),
        "depends_on": {
            "type": "array",
            "description": "pipelines (on any backend) this one waits for; the control plane starts it",
            "items": {
                "anyOf": [
                    {"type": "string", "description": "an upstream pipeline id"},
                    _obj(
                        {
                            "pipeline": {"type": "string"},
                            "task": {"type": "string"},
                            "backend": {"type": "string"},
                            "align": {"enum": ["same", "latest"]},
                            "within": ref["duration"],
                            "timeout": ref["duration"],
                        },
                        ("pipeline",),
                    ),
                ]
            },
        },
        "tasks": {"type": "object", "minProperties": 1, "additionalProperties": {"$ref": "#/$defs/task"}},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "meta pipeline file",
        "description": "One pipeline, a list under 'pipelines:', or 'generate:' + 'template:' (see docs/yaml.md).",
        "anyOf": [
            {"$ref": "#/$defs/pipeline"},
            _obj({"pipelines": {"type": "array", "items": {"$ref": "#/$defs/pipeline"}}}, ("pipelines",)),
            _obj(
                {
                    "generate": {
                        "type": "object",
                        "properties": {"for_each": {"type": "array"}, "from": {"type": "string"}},
                        "additionalProperties": False,
                        "oneOf": [{"required": ["for_each"]}, {"required": ["from"]}],
                    },
                    # Template values may be ${{ ... }} strings standing for any type: checked after rendering.
                    "template": {"type": "object", "required": ["pipeline", "tasks"]},
                },
                ("generate", "template"),
            ),
        ],
        "$defs": {
            "pipeline": _obj(pipeline_props, ("pipeline", "tasks")),
            "task": task,
            "param": {"anyOf": [param_spec, {"not": {"type": "object"}}]},
            "identifier": {"type": "string", "pattern": IDENTIFIER_PATTERN, "maxLength": 250},
            "callable": {"type": "string", "pattern": CALLABLE_PATTERN},
            "channel": {"type": "string", "pattern": CHANNEL_PATTERN},
            "duration": {"anyOf": [{"type": "string"}, {"type": "number", "minimum": 0}], "description": DURATION_HELP},
            "trigger_rule": {"enum": [r.value for r in TriggerRule]},
            "json_type": {"enum": ["string", "integer", "number", "boolean", "array", "object", "null"]},
        },
    }


WORKSPACE_SCHEMA_ID = "https://meta-orchestrator.dev/schema/workspace.json"


def workspace_json_schema() -> dict[str, Any]:
    """JSON Schema of the workspace file (``meta.yaml``), printed by ``meta schema --workspace``.

    Generated from the pydantic model (``meta.spec.workspace``), so it cannot drift from what the loader accepts;
    durations are described as the loader reads them ("10s", "5m", seconds), not as pydantic's ISO 8601 default.
    Cross-field checks (placements name defined backends, one OpenLineage namespace per Airflow) stay the loader's.
    """
    from meta.spec.workspace import Workspace

    schema = Workspace.model_json_schema(mode="validation")
    duration = {"anyOf": [{"type": "string"}, {"type": "number", "minimum": 0}], "description": DURATION_HELP}
    control = schema["$defs"]["ControlPlane"]["properties"]
    control["poll_interval"] = {**duration, "default": "10s", "title": "Poll Interval"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": WORKSPACE_SCHEMA_ID,
        "title": "meta workspace file (meta.yaml)",
        **{k: v for k, v in schema.items() if k != "title"},
    }
