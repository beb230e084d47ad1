"""Airflow DAGs -> neutral pipelines (``meta import airflow --dags-folder DIR [--dag-id ID]``).

BashOperator -> shell, PythonOperator/@task -> python, BranchPythonOperator/@task.branch -> branch, EmptyOperator ->
noop, SQLExecuteQueryOperator -> sql, meta's own runtime wrappers -> their original python/branch/op tasks, anything
else -> an ``airflow_operator`` passthrough (class path + JSON-serializable arguments). What cannot be carried over
is listed in the import's notes (``ImportedDag.notes``); a DAG whose structure has no neutral form is refused with
the reason. Importing a DAG that meta compiled gives back the same pipeline (a fixed point; tested).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from meta.errors import MetaError
from meta.model import CALLABLE_PATTERN, Pipeline
from meta_airflow.plan import META_ENV_KEYS, RUNTIME
from meta_airflow.typed_args import NotPlain, encode

AIRFLOW_DEFAULTS: dict[str, Any] = {
    "retries": 0,
    "retry_delay": timedelta(seconds=300),
    "retry_exponential_backoff": 0,
    "max_retry_delay": None,
    "execution_timeout": None,
    "pool": "default_pool",
    "trigger_rule": "all_success",
}
# BaseOperator arguments mapped to meta fields (or deliberately ignored); never copied into passthrough arguments.
BASE_ARGS = frozenset(
    {
        "task_id",
        "owner",
        "retries",
        "retry_delay",
        "retry_exponential_backoff",
        "max_retry_delay",
        "execution_timeout",
        "pool",
        "trigger_rule",
        "max_active_tis_per_dag",
        "inlets",
        "outlets",
        "params",
        "doc",
        "doc_md",
        "dag",
        "default_args",
        "task_group",
        "on_failure_callback",
        "on_retry_callback",
        "on_success_callback",
        "on_execute_callback",
        "on_skipped_callback",
        "start_date",
        "end_date",
        "depends_on_past",
        "wait_for_downstream",
        "email",
        "email_on_failure",
        "email_on_retry",
        "queue",
        "priority_weight",
        "weight_rule",
        "pool_slots",
        "executor_config",
        "do_xcom_push",
        "multiple_outputs",
    }
)
NEUTRAL = {
    "airflow.providers.standard.operators.bash.BashOperator": "shell",
    "airflow.providers.standard.decorators.bash._BashDecoratedOperator": "unsupported",
    "airflow.providers.standard.operators.python.PythonOperator": "python",
    "airflow.providers.standard.decorators.python._PythonDecoratedOperator": "python",
    "airflow.providers.standard.operators.python.BranchPythonOperator": "branch",
    "airflow.providers.standard.decorators.branch_python._BranchPythonDecoratedOperator": "branch",
    "airflow.providers.standard.operators.empty.EmptyOperator": "noop",
    "airflow.providers.common.sql.operators.sql.SQLExecuteQueryOperator": "sql",
}


# Param keywords that only shape Airflow's trigger form; dropping them changes no run (noted in the import).
UI_ONLY_PARAM_KEYS = ("title", "description_md", "section", "values_display", "examples")


class ImportRefused(MetaError, ValueError):
    """A DAG whose structure has no neutral form."""


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


# -------------------------------------------------------------------------------------------- values


def jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def class_path(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def callable_ref(func: Any, module_names: dict[str, str]) -> str | None:
    """``module:qualname`` for an importable function; DAG-file modules map to their file name (Airflow puts the
    dags folder on sys.path). None when the function is not importable by name (a lambda, a nested function)."""
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname:
        return None
    ref = f"{module_names.get(module, module)}:{qualname}"
    return ref if re.match(CALLABLE_PATTERN, ref) else None


def seconds(value: Any) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=float(value))


# -------------------------------------------------------------------------------------------- tasks


def _init_kwargs(op: Any) -> dict[str, Any]:
    return dict(getattr(op, "_BaseOperator__init_kwargs", {}) or {})


def action_of(op: Any, dag: Any, module_names: dict[str, str], notes: list[str]) -> dict[str, Any]:
    path = class_path(op)
    kind = NEUTRAL.get(path)
    tid = op.task_id
    if kind == "shell" and isinstance(op.bash_command, str) and tuple(op.skip_on_exit_code or ()) == (99,):
        command = op.bash_command
        if command.endswith(" ") and command.rstrip().endswith((".sh", ".bash")):
            command = command[:-1]  # meta adds this space when compiling (BashOperator's template-file rule)
        action: dict[str, Any] = {"kind": "shell", "command": command}
        env = {k: v for k, v in (op.env or {}).items() if k not in META_ENV_KEYS and not k.startswith("META_PARAM_")}
        if env:
            action["env"] = env
        if op.env is not None and not op.append_env and not _is_meta_env(op.env):
            notes.append(f"task {tid}: env without append_env replaces the whole environment; meta appends")
        if op.cwd:
            action["cwd"] = op.cwd
        return action
    if kind in ("python", "branch"):
        func = op.python_callable
        op_kwargs = dict(op.op_kwargs or {})
        runtime_name = f"{getattr(func, '__module__', '')}:{getattr(func, '__qualname__', '')}"
        if runtime_name == f"{RUNTIME}:call_python" or runtime_name == f"{RUNTIME}:call_branch":
            return {"kind": kind, "callable": op_kwargs["target"], "kwargs": op_kwargs.get("kwargs", {})}
        if runtime_name == f"{RUNTIME}:run_op":
            return {"kind": "op", "op": op_kwargs["op"], "with": op_kwargs.get("with_args", {})}
        ref = callable_ref(func, module_names)
        if ref is None:
            raise ImportRefused(
                f"task {tid}: its callable {getattr(func, '__qualname__', func)!r} is not importable "
                "by name (a lambda or a function nested in another); move it to module level"
            )
        if op.op_args:
            raise ImportRefused(f"task {tid}: positional op_args {list(op.op_args)!r} have no neutral form")
        if not jsonable(op_kwargs):
            raise ImportRefused(
                f"task {tid}: op_kwargs hold values that are not plain data (e.g. XCom results of "
                "other tasks); meta tasks do not pass data between tasks"
            )
        if path.endswith("DecoratedOperator"):
            notes.append(f"task {tid}: @task return values (XCom) are not passed to downstream tasks by meta")
        return {"kind": kind, "callable": ref, "kwargs": op_kwargs}
    if kind == "noop":
        return {"kind": "noop"}
    if kind == "sql":
        sql = op.sql
        statement = sql if isinstance(sql, str) else ";\n".join(sql)
        action = {"kind": "sql", "conn": op.conn_id, "statement": statement}
        if op.parameters:
            if not isinstance(op.parameters, dict) or not jsonable(op.parameters):
                raise ImportRefused(f"task {tid}: SQL parameters {op.parameters!r} are not a JSON mapping")
            action["parameters"] = dict(op.parameters)
        return action
    return passthrough(op, notes, module_names, dag)


def _is_meta_env(env: dict[str, Any]) -> bool:
    return "META_RUN_ID" in env


def passthrough(op: Any, notes: list[str], module_names: dict[str, str], dag: Any) -> dict[str, Any]:
    cls = type(op)
    path = f"{module_names.get(cls.__module__, cls.__module__)}.{cls.__qualname__}"
    if "<locals>" in path:
        raise ImportRefused(f"task {op.task_id}: operator class {path} is defined inside a function")
    arguments: dict[str, Any] = {}
    dropped = []
    inherited = dict(dag.default_args or {})
    for key, value in sorted(_init_kwargs(op).items()):
        if key in BASE_ARGS or (key in inherited and inherited[key] == value):  # default_args are not its own
            continue
        try:
            arguments[key] = encode(value)
        except NotPlain:
            dropped.append(key)
    if dropped:
        # Leaving an argument out would compile to a different (or broken) operator: refuse instead.
        raise ImportRefused(
            f"task {op.task_id}: {path} arguments {dropped} are not plain data (callables, objects); an "
            "airflow_operator passthrough keeps JSON-like arguments plus timedelta/datetime/date/time"
        )
    notes.append(f"task {op.task_id}: {path} has no neutral form; kept as an airflow_operator (Airflow only)")
    return {"kind": "airflow_operator", "operator": path, "arguments": arguments}


def retry_fields(get: Any, baseline: dict[str, Any]) -> dict[str, Any]:
    """meta retry/timeout/pool/trigger-rule fields whose Airflow value differs from ``baseline``."""
    out: dict[str, Any] = {}
    for af, meta_name in (
        ("retries", "retries"),
        ("retry_delay", "retry_delay"),
        ("retry_exponential_backoff", "retry_backoff"),
        ("max_retry_delay", "max_retry_delay"),
        ("execution_timeout", "timeout"),
        ("pool", "pool"),
        ("trigger_rule", "trigger_rule"),
    ):
        value = get(af)
        if af in ("retry_delay", "max_retry_delay", "execution_timeout"):
            value = seconds(value)
        if af == "trigger_rule" and value is not None:
            value = str(getattr(value, "value", value))
        if value == baseline.get(af):
            continue
        if af == "retry_exponential_backoff":
            value = 1.0 if not value else float(value)
            if value == 1.0 and not baseline.get(af):
                continue
        out[meta_name] = value
    return out


def task_params(op: Any, dag: Any) -> dict[str, Any]:
    """Params the task sets itself: Airflow merges the DAG's params into every task's, so subtract those."""
    from airflow.sdk.definitions._internal.types import NOTSET

    dag_values = {k: dag.params.get_param(k).value for k in dag.params}
    out = {}
    for key in op.params or {}:
        value = op.params.get_param(key).value
        if value is NOTSET or (key in dag_values and dag_values[key] == value):
            continue
        out[key] = value
    return out


def task_of(
    op: Any, dag: Any, baseline: dict[str, Any], module_names: dict[str, str], notes: list[str]
) -> dict[str, Any]:
    if getattr(op, "is_mapped", False) or class_path(op).endswith("MappedOperator"):
        raise ImportRefused(f"task {op.task_id}: dynamic task mapping (expand) has no neutral form")
    task: dict[str, Any] = {"id": op.task_id, "action": action_of(op, dag, module_names, notes)}
    upstream = [t for t in dag.task_dict if t in op.upstream_task_ids]
    if upstream:
        task["upstream"] = upstream
    task.update(retry_fields(lambda name: getattr(op, name, None), baseline))
    if op.max_active_tis_per_dag is not None:
        task["max_active"] = op.max_active_tis_per_dag
    for af, meta_name in (("inlets", "inputs"), ("outlets", "outputs")):
        uris = []
        for item in getattr(op, af) or ():
            uri = getattr(item, "uri", None)
            if uri is None or type(item).__name__ != "Asset":
                notes.append(f"task {op.task_id}: {af} item {item!r} is not an Asset and was left out")
            else:
                uris.append(uri)
        if uris:
            task[meta_name] = uris
    values = task_params(op, dag)
    if values:
        if jsonable(values):
            task["params"] = values
        else:
            notes.append(f"task {op.task_id}: params are not plain data and were left out")
    doc = getattr(op, "doc", None)
    if doc:
        task["description"] = doc
    for cb in ("on_failure_callback", "on_retry_callback", "on_success_callback", "on_execute_callback"):
        if getattr(op, cb, None) and cb not in (dag.default_args or {}):
            notes.append(f"task {op.task_id}: {cb} is not carried over (meta alerts are pipeline-level)")
    return task


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
    for cb_name in ("sla_miss_callback",):
        if getattr(dag, cb_name, None):
            notes.append(f"{cb_name} is not carried over (Airflow 3 removed SLAs)")
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


def now() -> datetime:
    return datetime.now(UTC)
