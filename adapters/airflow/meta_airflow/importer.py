"""Airflow DAGs -> neutral pipelines (``meta import airflow --dags-folder DIR [--dag-id ID]``).

This module maps the DAG (schedule, timezone, dates, params, defaults, alert callbacks, deadlines) and reads
folders; import_tasks.py maps the operators (import_results.py their XComs, import_mapping.py dynamic mapping). Each
DAG is imported on its own: what cannot be carried over is listed in its notes (``ImportedDag.notes``); a DAG whose
structure has no neutral form is refused with the reason, its file:line, what it has and what meta expects; a file
Airflow cannot import is refused as a file. ``import_dags`` gathers these into the ``meta.ImportOutcome`` that
``meta import airflow`` prints. Importing a DAG that meta compiled gives back the same pipeline (a fixed point; tested).
"""

from __future__ import annotations

import ast
import contextlib
import logging
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from meta import (
    ImportedFile,
    ImportedPipeline,
    ImportOutcome,
    ImportRefusal,
    MetaError,
    Pipeline,
    ValidationFailed,
    topological_order,
)
from meta_airflow.import_alerts import dag_alerts, merge
from meta_airflow.import_callables import CallableLifter
from meta_airflow.import_missing import MissingModule, missing_module
from meta_airflow.import_operators import DagExtras
from meta_airflow.import_results import link_results
from meta_airflow.import_tasks import AIRFLOW_DEFAULTS, retry_fields, task_of
from meta_airflow.import_values import ImportRefused, jsonable, seconds

__all__ = ["MISSING_MODULE_SUBJECT", "ImportRefused", "ImportedDag", "import_dags", "import_folder", "pipeline_of"]

# The subject of a refused DAG file whose import failed on a missing module (counted apart from broken files).
MISSING_MODULE_SUBJECT = "DAG file (missing module)"

# Param keywords that only shape Airflow's trigger form; dropping them changes no run (noted in the import).
UI_ONLY_PARAM_KEYS = ("title", "description_md", "section", "values_display", "examples")


# DAG settings meta has no field for: importing a non-default value is noted, never silently dropped.
UNMAPPED_DAG_FIELDS: dict[str, Any] = {
    "dagrun_timeout": None,
    "fail_fast": False,
    "max_consecutive_failed_dag_runs": 0,
    "doc_md": None,
    "owner_links": None,
    "access_control": None,
    "user_defined_macros": None,
    "user_defined_filters": None,
    "template_searchpath": None,
    "render_template_as_native_obj": False,
    "sla_miss_callback": None,
}


@dataclass
class ImportedDag:
    dag_id: str
    pipeline: Pipeline | None
    notes: list[str] = field(default_factory=list)
    refused: str | None = None
    location: str | None = None  # "file:line" of the DAG, or of the refused task
    received: str | None = None
    expected: str | None = None
    unexpected: bool = False  # refused because mapping it raised an error meta_airflow did not foresee (a bug)
    files: list[ImportedFile] = field(default_factory=list)  # SQL template files the pipeline names
    triggers: dict[str, str] = field(default_factory=dict)  # TriggerDagRunOperator task id -> the DAG it starts

    @property
    def status(self) -> str:
        if self.pipeline is None:
            return "refused"
        return "partial" if self.notes else "full"

    def outcome(self) -> ImportedPipeline | ImportRefusal:
        """This DAG's entry in the public ``meta.ImportOutcome``."""
        if self.pipeline is not None:
            return ImportedPipeline(self.pipeline, tuple(self.notes), self.location)
        assert self.refused is not None
        return ImportRefusal(f"DAG {self.dag_id!r}", self.refused, self.location, self.received, self.expected)


# -------------------------------------------------------------------------------------------- DAG


_MISSING = object()


def timetable_field(tt: Any, name: str) -> Any:
    """A timetable setting. ``schedule="0 5 * * *"`` builds airflow.sdk's timetables, which expose ``expression``,
    ``timezone``, ``delta``, ``interval``; the scheduler's own classes in airflow.timetables (``trigger.py``,
    ``interval.py``; also accepted as ``schedule=``) keep the same settings as ``_expression``, ``_timezone``, ...
    ``_MISSING`` when neither exists."""
    for attr in (name, f"_{name}"):
        value = getattr(tt, attr, _MISSING)
        if value is not _MISSING:
            return value
    return _MISSING


def schedule_of(dag: Any, notes: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """(meta schedule, timezone name) for the DAG's timetable."""
    tt = dag.timetable
    name = type(tt).__name__
    if name == "NullTimetable":
        return None, None
    if name in ("CronTriggerTimetable", "CronDataIntervalTimetable"):
        expression, tz = timetable_field(tt, "expression"), timetable_field(tt, "timezone")
        if isinstance(expression, str) and tz is not _MISSING:
            if name == "CronDataIntervalTimetable":
                notes.append("schedule: a cron *data interval* timetable becomes a trigger schedule (runs at the tick)")
            _note_trigger_extras(tt, notes)
            return {"kind": "cron", "cron": expression}, timezone_name(tz, "the schedule's timezone")
    if name in ("DeltaTriggerTimetable", "DeltaDataIntervalTimetable"):
        delta = timetable_field(tt, "delta")
        if delta is not _MISSING and not isinstance(delta, timedelta):
            notes.append(f"schedule: relativedelta {delta!r} has no neutral form; left unscheduled")
            return None, None
        if isinstance(delta, timedelta):
            if name == "DeltaDataIntervalTimetable":
                notes.append(
                    "schedule: a delta *data interval* timetable becomes a trigger schedule (runs at the tick)"
                )
            _note_trigger_extras(tt, notes)
            return {"kind": "interval", "every": delta.total_seconds()}, None
    if name == "AssetTriggeredTimetable":
        cond = tt.asset_condition
        kind = type(cond).__name__
        if kind == "Asset":
            return {"kind": "datasets", "datasets": [cond.uri]}, None
        if kind in ("AssetAll", "AssetAny") and all(type(a).__name__ == "Asset" for a in cond.objects):
            mode = "all" if kind == "AssetAll" else "any"
            return {"kind": "datasets", "datasets": [a.uri for a in cond.objects], "mode": mode}, None
        notes.append(f"schedule: asset condition {cond!r} (nested, aliases or asset refs) has no neutral form")
        return None, None
    notes.append(f"schedule: {name} has no neutral form; the pipeline is left unscheduled")
    return None, None


def timezone_name(tz: Any, what: str) -> str:
    """The IANA name meta keeps for a timezone Airflow holds as a pendulum ``Timezone``/``FixedTimezone``, a
    ``zoneinfo.ZoneInfo``, a ``datetime.timezone`` or a name. A fixed whole-hour offset becomes ``Etc/GMT-<h>`` (the
    POSIX sign is inverted: UTC+1 is Etc/GMT-1); other fixed offsets have no IANA name and are refused."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = tz if isinstance(tz, str) else (getattr(tz, "key", None) or getattr(tz, "name", None) or str(tz))
    try:
        ZoneInfo(str(name))
        return str(name)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    offset = tz.utcoffset(None) if hasattr(tz, "utcoffset") else None
    if isinstance(offset, timedelta) and offset % timedelta(hours=1) == timedelta(0):
        hours = int(offset / timedelta(hours=1))
        return "UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"
    raise ImportRefused(
        f"{what} {tz!r} has no IANA name (meta keeps timezones by name)",
        received=f"timezone {tz!r}",
        expected="an IANA timezone such as 'Europe/Paris' (pendulum.timezone('Europe/Paris')), or a whole-hour offset",
    )


def _note_trigger_extras(tt: Any, notes: list[str]) -> None:
    """Trigger timetables' ``interval`` (a data interval before each tick) and ``run_immediately`` (a run at
    unpause when catchup is off) have no field in meta's schedule; meta compiles them to their defaults."""
    interval = timetable_field(tt, "interval")
    if interval is not _MISSING and interval != timedelta(0):
        notes.append(f"schedule: interval={interval!r} (the data interval before each run) is not carried over")
    immediately = timetable_field(tt, "run_immediately")
    if immediately is not _MISSING and immediately is not False:
        notes.append(f"schedule: run_immediately={immediately!r} is not carried over")


def param_of(p: Any) -> dict[str, Any] | None:
    from airflow.sdk.definitions._internal.types import NOTSET

    schema = dict(getattr(p, "schema", {}) or {})
    out: dict[str, Any] = {}
    if p.value is not NOTSET:
        out["default"] = p.value
    if p.description:
        out["description"] = p.description
    for key in ("type", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern", "format"):
        if key in schema:
            out[key] = schema.pop(key)
    schema.pop("description", None)
    schema.pop("default", None)
    for key in UI_ONLY_PARAM_KEYS:
        schema.pop(key, None)
    if schema:
        return None
    if "default" not in out:
        out["required"] = True
    return out


def local_naive(value: datetime | None, tz: str) -> datetime | None:
    if value is None:
        return None
    from zoneinfo import ZoneInfo

    if value.tzinfo is None:
        return value
    return value.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def pipeline_of(dag: Any, module_names: dict[str, str]) -> ImportedDag:
    """One DAG, mapped or refused; never raises, so one DAG cannot lose the others of its folder."""
    notes: list[str] = []
    extras = DagExtras()
    try:
        pipeline = _pipeline(dag, module_names, notes, extras)
    except ImportRefused as exc:
        where = location(dag, exc.task)
        return ImportedDag(dag.dag_id, None, notes, str(exc), where, exc.received, exc.expected)
    except Exception as exc:  # a DAG shape this module does not foresee: refuse it, keep importing the rest
        return ImportedDag(
            dag.dag_id,
            None,
            notes,
            f"meta_airflow could not map this DAG ({type(exc).__name__}: {exc}); please report it",
            location(dag, None),
            unexpected=True,
        )
    found = ImportedDag(dag.dag_id, pipeline, notes, location=location(dag, None))
    found.files, found.triggers = extras.files, extras.triggers
    return found


def location(dag: Any, task_id: str | None) -> str | None:
    """``file:line`` of the task (when given and found) or of the DAG in its DAG file; the file alone otherwise."""
    file = getattr(dag, "fileloc", None)
    if not file:
        return None
    try:
        tree = ast.parse(Path(file).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return str(file)
    wanted = [(task_id, "task_id"), (task_id.rsplit(".", 1)[-1], "task_id")] if task_id else []  # task groups
    for name, keyword in [*wanted, (dag.dag_id, "dag_id")]:
        line = line_of(tree, name, keyword)
        if line is not None:
            return f"{file}:{line}"
    return str(file)


def line_of(tree: ast.Module, name: str, keyword: str) -> int | None:
    """Where ``name`` is defined: Airflow keeps no line numbers, so look for the call that names it
    (``task_id="x"``; ``DAG("x")`` or ``dag_id="x"``), else a function of that name (``@dag``/``@task`` ids default
    to it), else any string literal equal to it. The first in the file wins within each kind."""
    calls, functions, literals = [], [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            named = [k.value for k in node.keywords if k.arg == keyword]
            if keyword == "dag_id" and node.args:
                named.append(node.args[0])
            if any(isinstance(v, ast.Constant) and v.value == name for v in named):
                calls.append(node.lineno)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            functions.append(node.lineno)
        elif isinstance(node, ast.Constant) and node.value == name:
            literals.append(node.lineno)
    return next((min(found) for found in (calls, functions, literals) if found), None)


def _pipeline(dag: Any, module_names: dict[str, str], notes: list[str], extras: DagExtras) -> Pipeline:
    default_args = dict(dag.default_args or {})
    baseline = dict(AIRFLOW_DEFAULTS)
    data: dict[str, Any] = {"id": dag.dag_id}
    if dag.description:
        data["description"] = dag.description
    schedule, tz = schedule_of(dag, notes)
    if schedule is not None:
        data["schedule"] = schedule
    dag_tz = getattr(dag, "timezone", None)
    start_tz = timezone_name(dag_tz, "the DAG's timezone (of its start_date)") if dag_tz is not None else None
    tz = tz or start_tz or "UTC"
    if tz != "UTC":
        data["timezone"] = tz
    if dag.start_date is not None:
        data["start_date"] = local_naive(dag.start_date, tz).isoformat()  # type: ignore[union-attr]
    if dag.end_date is not None:
        data["end_date"] = local_naive(dag.end_date, tz).isoformat()  # type: ignore[union-attr]
    if dag.catchup:
        data["catchup"] = True
    if dag.max_active_runs != 16:
        data["max_active_runs"] = dag.max_active_runs
    if dag.max_active_tasks != 16:
        data["max_active_tasks"] = dag.max_active_tasks
    tags = sorted(dag.tags or ())
    teams = [t for t in tags if t.startswith("team:")]
    if teams:
        data["team"] = teams[0][len("team:") :]
    if [t for t in tags if not t.startswith("team:")]:
        data["tags"] = [t for t in tags if not t.startswith("team:")]
    owner = default_args.get("owner")
    if owner and owner != "airflow":
        data["owner"] = owner
    defaults = retry_fields(lambda name: default_args.get(name, AIRFLOW_DEFAULTS[name]), AIRFLOW_DEFAULTS)
    if defaults:
        data["defaults"] = defaults
        for af, meta_name in (("retries", "retries"), ("pool", "pool"), ("trigger_rule", "trigger_rule")):
            if meta_name in defaults:
                baseline[af] = default_args[af] if af != "trigger_rule" else defaults[meta_name]
        for af in ("retry_delay", "max_retry_delay", "execution_timeout", "retry_exponential_backoff"):
            if af in default_args:
                baseline[af] = seconds(default_args[af]) if af != "retry_exponential_backoff" else default_args[af]
    params = {}
    for name in dag.params:
        p = dag.params.get_param(name)
        ui_keys = sorted(k for k in (p.schema or {}) if k in UI_ONLY_PARAM_KEYS)
        if ui_keys:
            notes.append(f"param {name}: trigger-form keywords {ui_keys} are Airflow UI only and were left out")
        converted = param_of(p)
        if converted is None:
            notes.append(f"param {name}: schema {p.schema!r} uses keywords meta does not know; kept the default only")
            converted = {"default": p.value} if jsonable(p.value) else {"required": True}
        params[name] = converted
    if params:
        data["params"] = params
    alerts = dag_alerts(dag, default_args, notes, module_names)
    sla = sla_of(dag, schedule, notes)
    if sla:
        data["sla"] = {k: v for k, v in sla.items() if k != "channels"}
        if sla.get("channels"):
            alerts["on_sla_miss"] = sla["channels"]
    if not dag.task_dict:
        raise ImportRefused(
            "the DAG has no tasks", received="a DAG with 0 tasks", expected="at least one task (a pipeline runs tasks)"
        )
    data["tasks"] = [task_of(op, dag, baseline, module_names, notes, extras) for op in dag.task_dict.values()]
    link_results(data["tasks"], dag, notes)
    merge(alerts, extras.alerts)
    if alerts:
        data["alerts"] = alerts
    if extras.removed and len(extras.removed) < len(data["tasks"]):  # (a DAG of sensors only keeps them, as noops)
        data["tasks"] = without_tasks(data["tasks"], set(extras.removed))
    if extras.depends_on:
        data["depends_on"] = extras.depends_on
        if "schedule" in data:  # align: same runs once per upstream logical date; a schedule would run it twice
            notes.append(
                f"schedule {data.pop('schedule')!r} is dropped: with depends_on (align: same) the control plane "
                "starts a run per logical date of the upstream, which the sensor waited for (the DAGs shared it)"
            )
    for attr, default in UNMAPPED_DAG_FIELDS.items():
        value = getattr(dag, attr, default)
        if value not in (default, None) and value != {}:
            if attr == "template_searchpath" and extras.files:
                notes.append(
                    f"DAG template_searchpath={str(value)[:80]!r}: the SQL files found through it are written beside "
                    "the spec; other template files it finds are not carried over"
                )
                continue
            notes.append(f"DAG {attr}={str(value)[:80]!r} has no neutral form and is not carried over")
    try:
        pipeline = Pipeline.model_validate(data)
    except ValueError as exc:
        raise invalid(exc, data) from exc
    return upstream_first(pipeline, data)


def upstream_first(pipeline: Pipeline, data: dict[str, Any]) -> Pipeline:
    """The pipeline with its tasks listed upstream-first (the DAG's order among independent tasks): the order a
    compiled DAG defines its operators in (a task's arguments may be an upstream operator's XComArg), so importing
    what meta compiled gives the same pipeline back."""
    order = topological_order({t.id: list(t.upstream) for t in pipeline.tasks})
    position = {tid: i for i, tid in enumerate(order)}
    upstream = {t.id: sorted(t.upstream, key=position.__getitem__) for t in pipeline.tasks}
    if order == [t.id for t in pipeline.tasks] and all(list(t.upstream) == upstream[t.id] for t in pipeline.tasks):
        return pipeline
    by_id = {t["id"]: t for t in data["tasks"]}
    tasks = [{**by_id[i], **({"upstream": upstream[i]} if upstream[i] else {})} for i in order]
    return Pipeline.model_validate({**data, "tasks": tasks})


def invalid(exc: ValueError, data: dict[str, Any]) -> ImportRefused:
    """The pipeline's validation errors as one refusal: ``[task <id>: ]field: message`` each (pydantic's own text
    carries list indexes, its input repr and a documentation URL, which say nothing about the DAG)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return ImportRefused(f"the mapped pipeline is not valid: {exc}")
    items: list[str] = []
    task: str | None = None
    received: str | None = None
    expected: str | None = None
    found = errors(include_url=False)
    for err in found:
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, ValidationFailed):  # the whole-pipeline checks (cycles, literal secrets, ...)
            items += [p.message for p in inner.problems]
            task = task or next((p.task for p in inner.problems if p.task), None)
            continue
        loc = tuple(err["loc"])
        tid = _task_at(loc, data)  # tasks.<n>.field -> "task <id>: field", as the DAG file names it
        path = ".".join(str(part) for part in (loc[2:] if tid else loc)) or ("task" if tid else "pipeline")
        items.append(f"task {tid}: {path}: {err['msg']}" if tid else f"{path}: {err['msg']}")
        task = task or tid
        if len(found) == 1:
            received, expected = f"{path}={err.get('input')!r}"[:200], err["msg"]
    return ImportRefused(
        "the mapped pipeline is not valid: " + "; ".join(items), task=task, received=received, expected=expected
    )


def _task_at(loc: tuple[Any, ...], data: dict[str, Any]) -> str | None:
    """The id of the task an error is located in (``tasks.<n>...``)."""
    tasks = data.get("tasks") or []
    if len(loc) >= 2 and loc[0] == "tasks" and isinstance(loc[1], int) and loc[1] < len(tasks):
        return str(tasks[loc[1]].get("id"))
    return None


# Airflow 3.3's DeadlineReference classes -> meta's ``Deadline.reference``.
DEADLINE_REFERENCES = {
    "DagRunLogicalDateDeadline": "logical_date",
    "DagRunQueuedAtDeadline": "queued_at",
    "AverageRuntimeDeadline": "average_runtime",
    "FixedDatetimeDeadline": "fixed",
}


def sla_of(dag: Any, schedule: dict[str, Any] | None, notes: list[str]) -> dict[str, Any]:
    """meta's run-level SLA from the DAG's Deadline Alerts. meta's own callback (``on_deadline_missed``) maps back to
    the field it was compiled from (``max_duration``, ``finish_by``, a ``deadlines`` entry); any other Deadline Alert
    with a built-in reference becomes an ``sla.deadlines`` entry (reference, interval, max/min runs, fixed instant),
    its callback replaced by the pipeline's ``alerts.on_sla_miss`` (noted)."""
    deadline = getattr(dag, "deadline", None)
    out: dict[str, Any] = {}
    deadlines: list[dict[str, Any]] = []
    for alert in deadline if isinstance(deadline, list) else ([deadline] if deadline else []):
        ref = type(alert.reference).__name__
        path = getattr(alert.callback, "path", "")
        kwargs = dict(getattr(alert.callback, "kwargs", {}) or {})
        ours = path.endswith("on_deadline_missed")
        sla = str(kwargs.get("sla") or "") if ours else ""
        if not isinstance(alert.interval, timedelta):
            notes.append(
                f"deadline alert ({ref}) with interval {alert.interval!r} (not a fixed duration) is not carried over"
            )
            continue
        if ours and ref == "DagRunQueuedAtDeadline" and sla in ("", "max_duration"):
            out["max_duration"] = alert.interval.total_seconds()
        elif ours and ref == "DagRunLogicalDateDeadline" and sla == "finish_by" and schedule:
            minute, hour = str(schedule.get("cron", "x x")).split()[:2]
            if not (minute.isdigit() and hour.isdigit()):
                notes.append(f"deadline alert ({ref}) on a schedule without a fixed daily time is not carried over")
                continue
            local = (int(hour) * 3600 + int(minute) * 60 + int(alert.interval.total_seconds())) % 86400
            out["finish_by"] = f"{local // 3600:02d}:{local % 3600 // 60:02d}:{local % 60:02d}"
        else:
            entry = _deadline_entry(alert, ref)
            if entry is None:
                notes.append(f"deadline alert with the custom reference {ref} is not carried over")
                continue
            deadlines.append(entry)
            if not ours:
                callback = path or repr(alert.callback)
                notes.append(
                    f"deadline alert ({ref}): kept as sla.deadlines; its callback {callback} is not carried over "
                    "(misses go to alerts.on_sla_miss)"
                )
        if kwargs.get("channels"):
            out["channels"] = list(kwargs["channels"])
    if deadlines:
        out["deadlines"] = deadlines
    return out


def _deadline_entry(alert: Any, ref: str) -> dict[str, Any] | None:
    """One ``sla.deadlines`` entry from a Deadline Alert with a built-in reference (None: a custom one)."""
    reference = DEADLINE_REFERENCES.get(ref)
    if reference is None:
        return None
    entry: dict[str, Any] = {"reference": reference, "interval": alert.interval.total_seconds()}
    if reference == "average_runtime":
        max_runs, min_runs = alert.reference.max_runs, alert.reference.min_runs
        entry["max_runs"] = max_runs
        if min_runs is not None and min_runs != max_runs:  # Airflow fills min_runs with max_runs, as meta reads None
            entry["min_runs"] = min_runs
    elif reference == "fixed":
        entry["at"] = alert.reference._datetime.isoformat()
    return entry


def without_tasks(tasks: list[dict[str, Any]], removed: set[str]) -> list[dict[str, Any]]:
    """``tasks`` without ``removed``: a removed task's downstream tasks take its upstream tasks instead (none: they
    start with the run), so every other ordering of the DAG is kept."""
    upstream = {t["id"]: list(t.get("upstream", ())) for t in tasks}

    def kept(ids: list[str]) -> list[str]:
        out: list[str] = []
        for i in ids:
            for j in kept(upstream.get(i, [])) if i in removed else [i]:
                if j not in out:
                    out.append(j)
        return out

    left = []
    for task in tasks:
        if task["id"] in removed:
            continue
        rest = {k: v for k, v in task.items() if k != "upstream"}
        new = kept(upstream[task["id"]])
        left.append({**rest, "upstream": new} if new else rest)
    return left


# -------------------------------------------------------------------------------------------- across DAGs


def link_triggers(results: list[ImportedDag]) -> list[ImportedDag]:
    """TriggerDagRunOperator(trigger_dag_id=Y) of pipeline X, when Y is imported too: Y gets ``depends_on: [X]``
    (align same: a run of Y per run of X, with its logical date) and the trigger task leaves X (its downstream tasks
    take its upstream ones); when Y is not in this import the trigger stays an airflow_operator passthrough."""
    by_id = {r.dag_id: r for r in results}
    for r in results:
        for task_id, target in r.triggers.items():
            if r.pipeline is None:
                break
            triggered = by_id.get(target)
            linked = _depending(triggered.pipeline, r.dag_id) if triggered and triggered.pipeline else None
            if linked is None:
                why = (
                    "is not in this import"
                    if triggered is None
                    else "is refused"
                    if triggered.pipeline is None
                    else "has its own schedule or dependencies (a depends_on of align: same would replace them)"
                )
                r.notes.append(
                    f"task {task_id}: it triggers DAG {target!r}, which {why}: kept as an airflow_operator; import "
                    f"both together to make it {target}'s depends_on"
                )
                continue
            r.pipeline = _dropping(r.pipeline, task_id)
            r.notes[:] = [n for n in r.notes if not n.startswith(f"task {task_id}: ") or "no neutral form" not in n]
            r.notes.append(
                f"task {task_id}: TriggerDagRunOperator of {target} -> {target} depends_on {r.dag_id} (align: same; "
                "it runs once this pipeline succeeded, not as soon as the trigger task ran); the trigger task is "
                "removed"
            )
            assert triggered is not None
            if linked is not triggered.pipeline:
                triggered.pipeline = linked
                triggered.notes.append(f"depends_on {r.dag_id}: its task {task_id} triggered this DAG")
    return results


def _depending(pipeline: Pipeline, upstream: str) -> Pipeline | None:
    """``pipeline`` with ``depends_on: [upstream]`` (align same), itself if it has it already; None when it cannot
    have it: a schedule of its own, or dependencies aligned otherwise (the model's rules, docs/dependencies.md)."""
    if any(d.pipeline == upstream and d.task is None for d in pipeline.depends_on):
        return pipeline
    if pipeline.schedule is not None:
        return None
    data = pipeline.model_dump(by_alias=True)
    data["depends_on"] = [*data["depends_on"], {"pipeline": upstream}]
    try:
        return Pipeline.model_validate(data)
    except ValueError:
        return None


def _dropping(pipeline: Pipeline, task_id: str) -> Pipeline:
    """``pipeline`` without the task (its downstream tasks take its upstream ones); a noop when it is the only one."""
    data = pipeline.model_dump(by_alias=True)
    if len(data["tasks"]) == 1:
        data["tasks"] = [{**data["tasks"][0], "action": {"kind": "noop"}}]
    else:
        data["tasks"] = without_tasks(data["tasks"], {task_id})
    return Pipeline.model_validate(data)


def sql_files(results: list[ImportedDag]) -> tuple[ImportedFile, ...]:
    """The SQL template files of the imported pipelines (``sql/<dag id>/...``: one per path)."""
    seen: dict[str, ImportedFile] = {}
    for r in results:
        if r.pipeline is not None:
            for f in r.files:
                seen.setdefault(f.path, f)
    return tuple(seen.values())


# -------------------------------------------------------------------------------------------- files


@contextlib.contextmanager
def output_on_stderr() -> Iterator[None]:
    """While Airflow parses DAG files, send its output to stderr: stdout is meta's output channel (``meta import``
    lists only the files it wrote there). DAG files may print; Airflow's log handlers were bound to the stdout of
    the moment ``airflow`` was first imported (``airflow.logging_config.configure_logging``), so redirecting
    ``sys.stdout`` alone does not move its "Failed to import" tracebacks: the handlers are re-pointed, then restored."""
    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        import airflow.settings  # noqa: F401 - configures Airflow's logging now, inside the redirect

        moved: list[tuple[logging.StreamHandler[Any], Any]] = []
        for logger in [logging.getLogger(), *list(logging.Logger.manager.loggerDict.values())]:
            for handler in getattr(logger, "handlers", ()):  # (placeholders in loggerDict have none)
                stream = getattr(handler, "stream", None)
                if not isinstance(handler, logging.StreamHandler) or stream is None or stream is sys.stderr:
                    continue
                if stream is stdout or stream is sys.__stdout__ or getattr(stream, "name", None) == "<stdout>":
                    moved.append((handler, handler.setStream(sys.stderr)))
        try:
            yield
        finally:
            for handler, stream in moved:
                handler.setStream(stream)


@dataclass
class FileError:
    """A DAG file Airflow could not import (so none of its DAGs exist)."""

    file: str
    line: int | None
    message: str
    missing: MissingModule | None = None  # the error is a module not installed here (a provider, usually)

    def refusal(self) -> ImportRefusal:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.missing is not None:
            return ImportRefusal(
                MISSING_MODULE_SUBJECT,
                self.missing.reason,
                where,
                received=f"import of {self.missing.module} ({self.message})",
                expected="the module installed where meta import runs (Airflow imports the DAG file to read it)",
            )
        return ImportRefusal(
            "DAG file",
            f"Airflow could not import it: {self.message}",
            where,
            expected="a file Airflow can import (Airflow's traceback is in the log above)",
        )


def file_error(folder: Path, rel: str, text: str) -> FileError:
    """``bag.import_errors`` entry -> where and what: the last traceback frame in the file, the exception line."""
    root = folder if folder.is_dir() else folder.parent
    file = str(root / rel) if not Path(rel).is_absolute() else rel
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    message = lines[-1].strip() if lines else "unknown error"
    line_no = None
    for match in re.finditer(r'File "([^"]+)", line (\d+)', str(text)):
        if match.group(1).endswith(rel):
            line_no = int(match.group(2))
    return FileError(file, line_no, message, missing_module(str(text), Path(file), line_no, root))


def parse_folder(folder: Path) -> tuple[dict[str, Any], list[FileError], dict[str, str]]:
    """(dags by id, files that did not import, Airflow module name -> importable module name) for a dags folder."""
    if not folder.exists():
        raise MetaError(f"dags folder {folder} does not exist")
    root = folder if folder.is_dir() else folder.parent
    with output_on_stderr():
        from airflow.dag_processing.dagbag import BundleDagBag

        bag = BundleDagBag(dag_folder=str(folder), bundle_path=root, safe_mode=False, load_op_links=False)
    errors = [file_error(folder, rel, text) for rel, text in sorted(bag.import_errors.items())]
    # Airflow imports each DAG file under a private module name; callables defined there are importable by the
    # file's own name, because Airflow puts the dags folder on sys.path.
    files = {str(Path(d.fileloc)) for d in bag.dags.values()}
    module_names: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file in files:
            try:
                rel_path = Path(file).relative_to(root).with_suffix("")
            except ValueError:
                continue
            module_names[name] = ".".join(rel_path.parts)
    return dict(bag.dags), errors, module_names


def _import(folder: Path, dag_id: str | None) -> tuple[list[ImportedDag], list[FileError], list[ImportedFile]]:
    dags, errors, module_names = parse_folder(folder)
    if dag_id is not None and dag_id not in dags:
        detail = "; files that did not import: " + "; ".join(f"{e.file}: {e.message}" for e in errors)
        raise MetaError(
            f"no DAG {dag_id!r} in {folder}; found: {', '.join(sorted(dags)) or 'none'}{detail if errors else ''}"
        )
    ids = [dag_id] if dag_id else sorted(dags)
    # Callables of a DAG file are lifted into a module beside the specs (import_callables.py), so the pipelines do
    # not import the DAG file they replace; what a refused DAG lifted is dropped again.
    lifter = CallableLifter(folder, dags.values(), module_names)
    results = []
    for i in ids:
        callables = lifter.for_dag(dags[i])
        result = pipeline_of(dags[i], callables)
        lifter.settle(callables, result)
        results.append(result)
    link_triggers(results)  # TriggerDagRunOperator -> the triggered DAG's depends_on (both in this import)
    # With --dag-id, the other files' import errors are not that DAG's problem.
    return results, ([] if dag_id else errors), lifter.finish()


def import_folder(folder: Path, dag_id: str | None = None) -> list[ImportedDag]:
    """Every DAG of the folder (or only ``dag_id``), each mapped or refused on its own (the modules of lifted
    callables their pipelines reference are in ``import_dags``' outcome)."""
    return _import(folder, dag_id)[0]


def import_dags(folder: Path, dag_id: str | None = None) -> ImportOutcome:
    """The importer behind ``meta import airflow``: the DAGs that map, a refusal for each DAG that does not and for
    each file Airflow could not import, and the modules of callables lifted out of the DAG files (``files``, to
    write beside the specs). Raises only for the folder itself or an unknown ``dag_id``."""
    results, errors, files = _import(folder, dag_id)
    outcomes = [r.outcome() for r in results]
    return ImportOutcome(
        imported=tuple(o for o in outcomes if isinstance(o, ImportedPipeline)),
        refused=tuple([e.refusal() for e in errors] + [o for o in outcomes if isinstance(o, ImportRefusal)]),
        files=tuple(files) + sql_files(results),
    )
