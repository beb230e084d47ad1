"""Airflow DAGs -> neutral pipelines (``meta import airflow --dags-folder DIR [--dag-id ID]``).

This module maps the DAG (schedule, timezone, dates, params, defaults, alert callbacks, deadlines) and reads
folders; import_tasks.py maps the operators. What cannot be carried over is listed in the import's notes
(``ImportedDag.notes``); a DAG whose structure has no neutral form is refused with the reason. Importing a DAG that
meta compiled gives back the same pipeline (a fixed point; tested).
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from meta import MetaError, Pipeline
from meta_airflow.import_tasks import AIRFLOW_DEFAULTS, ImportRefused, jsonable, retry_fields, seconds, task_of

__all__ = ["ImportRefused", "ImportedDag", "import_dags", "import_folder", "pipeline_of"]

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

    @property
    def status(self) -> str:
        if self.pipeline is None:
            return "refused"
        return "partial" if self.notes else "full"


# -------------------------------------------------------------------------------------------- DAG


def schedule_of(dag: Any, notes: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """(meta schedule, timezone name) for the DAG's timetable."""
    tt = dag.timetable
    name = type(tt).__name__
    if name == "NullTimetable":
        return None, None
    if name in ("CronTriggerTimetable", "CronDataIntervalTimetable"):
        if name == "CronDataIntervalTimetable":
            notes.append("schedule: a cron *data interval* timetable becomes a trigger schedule (runs at the tick)")
        tz = getattr(tt.timezone, "name", None) or str(tt.timezone)
        return {"kind": "cron", "cron": tt.expression}, tz
    if name in ("DeltaTriggerTimetable", "DeltaDataIntervalTimetable"):
        if not isinstance(tt.delta, timedelta):
            notes.append(f"schedule: relativedelta {tt.delta!r} has no neutral form; left unscheduled")
            return None, None
        return {"kind": "interval", "every": tt.delta.total_seconds()}, None
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
    notes: list[str] = []
    try:
        return ImportedDag(dag.dag_id, _pipeline(dag, module_names, notes), notes)
    except ImportRefused as exc:
        return ImportedDag(dag.dag_id, None, notes, refused=str(exc))


def _pipeline(dag: Any, module_names: dict[str, str], notes: list[str]) -> Pipeline:
    from meta_airflow.runtime import AlertCallback

    default_args = dict(dag.default_args or {})
    baseline = dict(AIRFLOW_DEFAULTS)
    data: dict[str, Any] = {"id": dag.dag_id}
    if dag.description:
        data["description"] = dag.description
    schedule, tz = schedule_of(dag, notes)
    if schedule is not None:
        data["schedule"] = schedule
    start_tz = getattr(getattr(dag, "timezone", None), "name", None)
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
    alerts: dict[str, list[str]] = {}
    for attr, event in (("on_failure_callback", "on_failure"), ("on_success_callback", "on_success")):
        for cb in _callbacks(getattr(dag, attr, None)):
            if isinstance(cb, AlertCallback):
                alerts.setdefault(event, []).extend(cb.channels)
            else:
                notes.append(f"DAG {attr} {cb!r} is not carried over (only meta alert routes are)")
    for cb in _callbacks(default_args.get("on_retry_callback")):
        if isinstance(cb, AlertCallback):
            alerts.setdefault("on_retry", []).extend(cb.channels)
        else:
            notes.append(f"default_args on_retry_callback {cb!r} is not carried over")
    sla = sla_of(dag, schedule, notes)
    if sla:
        data["sla"] = {k: v for k, v in sla.items() if k != "channels"}
        if sla.get("channels"):
            alerts["on_sla_miss"] = sla["channels"]
    if alerts:
        data["alerts"] = alerts
    data["tasks"] = [task_of(op, dag, baseline, module_names, notes) for op in dag.task_dict.values()]
    for attr, default in UNMAPPED_DAG_FIELDS.items():
        value = getattr(dag, attr, default)
        if value not in (default, None) and value != {}:
            notes.append(f"DAG {attr}={str(value)[:80]!r} has no neutral form and is not carried over")
    try:
        return Pipeline.model_validate(data)
    except ValueError as exc:
        raise ImportRefused(f"the mapped pipeline is not valid: {exc}") from exc


def sla_of(dag: Any, schedule: dict[str, Any] | None, notes: list[str]) -> dict[str, Any]:
    """meta's run-level SLA from the DAG's Deadline Alerts that call meta's deadline callback."""
    deadline = getattr(dag, "deadline", None)
    out: dict[str, Any] = {}
    for alert in deadline if isinstance(deadline, list) else ([deadline] if deadline else []):
        ref = type(alert.reference).__name__
        path = getattr(alert.callback, "path", "")
        kwargs = dict(getattr(alert.callback, "kwargs", {}) or {})
        ours = path.endswith("on_deadline_missed") and isinstance(alert.interval, timedelta)
        if ours and ref == "DagRunQueuedAtDeadline":
            out["max_duration"] = alert.interval.total_seconds()
        elif ours and ref == "DagRunLogicalDateDeadline" and kwargs.get("sla") == "finish_by" and schedule:
            minute, hour = str(schedule.get("cron", "x x")).split()[:2]
            if not (minute.isdigit() and hour.isdigit()):
                notes.append(f"deadline alert ({ref}) on a schedule without a fixed daily time is not carried over")
                continue
            local = (int(hour) * 3600 + int(minute) * 60 + int(alert.interval.total_seconds())) % 86400
            out["finish_by"] = f"{local // 3600:02d}:{local % 3600 // 60:02d}:{local % 60:02d}"
        else:
            notes.append(f"deadline alert ({ref}, callback {path}) is not carried over")
            continue
        if kwargs.get("channels"):
            out["channels"] = list(kwargs["channels"])
    return out


def _callbacks(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


# -------------------------------------------------------------------------------------------- files


def parse_folder(folder: Path) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """(dags by id, import errors by file, Airflow module name -> importable module name) for a dags folder."""
    if not folder.exists():
        raise MetaError(f"dags folder {folder} does not exist")
    from airflow.dag_processing.dagbag import BundleDagBag

    root = folder if folder.is_dir() else folder.parent
    # Airflow logs "Filling up the DagBag" (and DAG files may print) on stdout, which is meta's output channel.
    with contextlib.redirect_stdout(sys.stderr):
        bag = BundleDagBag(dag_folder=str(folder), bundle_path=root, safe_mode=False, load_op_links=False)
    # Airflow imports each DAG file under a private module name; callables defined there are importable by the
    # file's own name, because Airflow puts the dags folder on sys.path.
    root = folder if folder.is_dir() else folder.parent
    files = {str(Path(d.fileloc)) for d in bag.dags.values()}
    module_names: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file in files:
            try:
                rel = Path(file).relative_to(root).with_suffix("")
            except ValueError:
                continue
            module_names[name] = ".".join(rel.parts)
    return dict(bag.dags), dict(bag.import_errors), module_names


def import_folder(folder: Path, dag_id: str | None = None) -> list[ImportedDag]:
    dags, errors, module_names = parse_folder(folder)
    if dag_id is not None and dag_id not in dags:
        detail = f"; import errors: {errors}" if errors else ""
        raise MetaError(f"no DAG {dag_id!r} in {folder}; found: {', '.join(sorted(dags)) or 'none'}{detail}")
    ids = [dag_id] if dag_id else sorted(dags)
    return [pipeline_of(dags[i], module_names) for i in ids]


def import_dags(folder: Path, dag_id: str | None = None) -> list[Pipeline]:
    """The importer behind ``meta import airflow``: refused DAGs raise with their reason."""
    results = import_folder(folder, dag_id)
    refused = [r for r in results if r.pipeline is None]
    if refused:
        raise MetaError("cannot import: " + "; ".join(f"DAG {r.dag_id!r}: {r.refused}" for r in refused))
    return [r.pipeline for r in results if r.pipeline is not None]
