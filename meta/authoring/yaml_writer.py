"""Pipeline -> the friendly YAML authoring form (``meta.authoring.load.loads`` reads it back to an equal Pipeline).

Output is deterministic: keys in a fixed order, defaults left out, actions in their short form (``shell: "..."``),
params in the shorthand when it says the same thing. Strings that a YAML 1.1 *or* 1.2 reader could take for another
type (``yes``, ``10:30``, ``0o17``, ``1e3``) are quoted, so the file means the same to every YAML tool.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Any

import yaml

from meta.authoring.form import infer_type
from meta.spec.durations import format_duration
from meta.spec.model import (
    DEFAULT_DEPENDENCY_TIMEOUT,
    AirflowOperatorAction,
    BranchAction,
    CronSchedule,
    DatasetSchedule,
    Dependency,
    IntervalSchedule,
    OpAction,
    Param,
    Pipeline,
    PythonAction,
    ShellAction,
    SqlAction,
    Task,
)


class _Dumper(yaml.SafeDumper):
    """SafeDumper that also quotes what the YAML 1.2 core schema would read as non-strings."""

    def ignore_aliases(self, data: Any) -> bool:  # repeated values are written out, never as &anchors
        return True


for _tag, _regexp, _first in (
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("tag:yaml.org,2002:float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)$", "-+.0123456789"),
    ("tag:yaml.org,2002:float", r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+."),
):
    _Dumper.add_implicit_resolver(_tag, re.compile(_regexp), list(_first))


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Multi-line strings (SQL, scripts) read best as literal blocks; PyYAML falls back to quotes when it must.
    style = "|" if "\n" in value.strip("\n") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list(dumper: yaml.SafeDumper, value: list[Any] | tuple[Any, ...]) -> yaml.SequenceNode:
    # Short lists of plain values (upstream, tags, channels) read best inline: upstream: [extract, load].
    flat = all(isinstance(v, str | int | float | bool) or v is None for v in value)
    inline = flat and sum(len(str(v)) + 2 for v in value) <= 80 and not any("\n" in str(v) for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=inline)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _list)
_Dumper.add_representer(tuple, _list)


def _duration(value: timedelta) -> str:
    short = format_duration(value)
    # format_duration is exact to the millisecond; finer values are written as seconds so nothing is lost.
    return short if value.microseconds % 1000 == 0 else repr(value.total_seconds())


def _time(value: time) -> str:
    return value.isoformat(timespec="minutes" if not (value.second or value.microsecond) else "auto")


def _datetime(value: datetime) -> str:
    return value.isoformat()


def _settings(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name)
        if value is None:
            continue
        out[name] = _duration(value) if isinstance(value, timedelta) else getattr(value, "value", value)
    return out


_SETTINGS = ("retries", "retry_delay", "retry_backoff", "max_retry_delay", "timeout", "pool")


def _param(param: Param) -> Any:
    if not isinstance(param.default, dict) and not param.required:
        inferred = infer_type(param.default)
        short = {"default": param.default} if inferred is None else {"type": inferred, "default": param.default}
        if Param.model_validate(short) == param:
            return param.default
    out: dict[str, Any] = {}
    for name, field in Param.model_fields.items():
        value = getattr(param, name)
        if name in ("default", "required") or value == field.default:
            continue
        out[field.alias or name] = list(value) if isinstance(value, tuple) else value
    if param.required:
        if param.default is not None:
            out["required"] = True
            out["default"] = param.default
    else:
        out["default"] = param.default  # always written: without it the param would read back as required
    return out


def _schedule(pipeline: Pipeline) -> Any:
    s = pipeline.schedule
    if isinstance(s, CronSchedule):
        return s.cron
    if isinstance(s, IntervalSchedule):
        return f"every {_duration(s.every)}"
    if isinstance(s, DatasetSchedule):
        out: dict[str, Any] = {"datasets": list(s.datasets)}
        if s.mode != "all":
            out["mode"] = s.mode
        return out
    return None


def _action(task: Task) -> dict[str, Any]:
    a = task.action
    if isinstance(a, ShellAction):
        if not a.env and a.cwd is None:
            return {"shell": a.command}
        full: dict[str, Any] = {"command": a.command}
        if a.env:
            full["env"] = dict(a.env)
        if a.cwd is not None:
            full["cwd"] = a.cwd
        return {"shell": full}
    if isinstance(a, PythonAction | BranchAction):
        return {a.kind: a.callable, **({"kwargs": dict(a.kwargs)} if a.kwargs else {})}
    if isinstance(a, SqlAction):
        # A statement read from a file stays a file (docs/adr/0010-sql-files.md): the spec names it, as it did.
        sql: dict[str, Any] = {"conn": a.conn, **({"file": a.file} if a.file else {"statement": a.statement})}
        if a.split_statements:
            sql["split_statements"] = True
        if a.parameters:
            sql["parameters"] = dict(a.parameters)
        return {"sql": sql}
    if isinstance(a, OpAction):
        return {"op": a.op, **({"with": dict(a.with_)} if a.with_ else {})}
    if isinstance(a, AirflowOperatorAction):
        operator: dict[str, Any] = {"operator": a.operator}
        if a.arguments:
            operator["arguments"] = dict(a.arguments)
        return {"airflow_operator": operator}
    return {"noop": True}


def _task(task: Task) -> dict[str, Any]:
    out = _action(task)
    if task.description is not None:
        out["description"] = task.description
    if task.upstream:
        out["upstream"] = list(task.upstream)
    if task.trigger_rule is not None:
        out["trigger_rule"] = task.trigger_rule.value
    out.update(_settings(task, _SETTINGS))
    if task.max_active is not None:
        out["max_active"] = task.max_active
    for name in ("inputs", "outputs"):
        if getattr(task, name):
            out[name] = list(getattr(task, name))
    if task.params:
        out["params"] = dict(task.params)
    if task.max_duration is not None:
        out["max_duration"] = _duration(task.max_duration)
    if task.map:
        out["map"] = dict(task.map)
    return out


def _deadline(deadline: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"reference": deadline.reference, "interval": _duration(deadline.interval)}
    if deadline.at is not None:
        out["at"] = _datetime(deadline.at)
    if deadline.reference == "average_runtime":
        out["max_runs"] = deadline.max_runs
        if deadline.min_runs is not None:
            out["min_runs"] = deadline.min_runs
    return out


def to_authoring(pipeline: Pipeline) -> dict[str, Any]:
    """The authoring mapping of ``pipeline`` (what ``meta.authoring.form.normalize`` reads)."""
    p = pipeline
    out: dict[str, Any] = {"pipeline": p.id}
    for name in ("description", "owner", "team"):
        if getattr(p, name) is not None:
            out[name] = getattr(p, name)
    if p.tags:
        out["tags"] = list(p.tags)
    if p.schedule is not None:
        out["schedule"] = _schedule(p)
    if p.timezone != "UTC":
        out["timezone"] = p.timezone
    for name in ("start_date", "end_date"):
        if getattr(p, name) is not None:
            out[name] = _datetime(getattr(p, name))
    if p.catchup:
        out["catchup"] = True
    for name in ("max_active_runs", "max_active_tasks"):
        if getattr(p, name) is not None:
            out[name] = getattr(p, name)
    if p.params:
        out["params"] = {name: _param(param) for name, param in p.params.items()}
    defaults = _settings(p.defaults, (*_SETTINGS, "trigger_rule"))
    if defaults:
        out["defaults"] = defaults
    if p.sla is not None:
        sla: dict[str, Any] = {}
        for name in ("finish_by", "start_by"):
            if getattr(p.sla, name) is not None:
                sla[name] = _time(getattr(p.sla, name))
        if p.sla.max_duration is not None:
            sla["max_duration"] = _duration(p.sla.max_duration)
        if p.sla.fresh_within is not None:
            sla["fresh_within"] = _duration(p.sla.fresh_within)
        if p.sla.deadlines:
            sla["deadlines"] = [_deadline(d) for d in p.sla.deadlines]
        out["sla"] = sla
    alerts: dict[str, Any] = {
        name: list(getattr(p.alerts, name))
        for name in ("on_failure", "on_retry", "on_success", "on_sla_miss")
        if getattr(p.alerts, name)
    }
    if p.alerts.sla_escalation is not None:
        escalation = p.alerts.sla_escalation
        alerts["sla_escalation"] = {"after": _duration(escalation.after), "channels": list(escalation.channels)}
    if alerts:
        out["alerts"] = alerts
    if p.depends_on:
        out["depends_on"] = [_dependency(d) for d in p.depends_on]
    out["tasks"] = {t.id: _task(t) for t in p.tasks}
    return out


def _dependency(dep: Dependency) -> Any:
    if dep.model_dump(exclude={"pipeline"}) == Dependency(pipeline=dep.pipeline).model_dump(exclude={"pipeline"}):
        return dep.pipeline
    out: dict[str, Any] = {"pipeline": dep.pipeline}
    for name in ("task", "backend"):
        if getattr(dep, name) is not None:
            out[name] = getattr(dep, name)
    if dep.align != "same":
        out["align"] = dep.align
    if dep.within is not None:
        out["within"] = _duration(dep.within)
    if dep.timeout != DEFAULT_DEPENDENCY_TIMEOUT:
        out["timeout"] = _duration(dep.timeout)
    return out


def pipeline_to_yaml(pipeline: Pipeline) -> str:
    """Readable, deterministic YAML for ``pipeline``; ``loads(pipeline_to_yaml(p)) == [p]``."""
    return yaml.dump(
        to_authoring(pipeline),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
