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
from meta_airflow.import_callables import CallableLifter
from meta_airflow.import_results import link_results
from meta_airflow.import_tasks import AIRFLOW_DEFAULTS, retry_fields, task_of
from meta_airflow.import_values import ImportRefused, jsonable, seconds

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
    location: str | None = None  # "file:line" of the DAG, or of the refused task
    received: str | None = None
    expected: str | None = None
    unexpected: bool = False  # refused because mapping it raised an error meta_airflow did not foresee (a bug)

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
            return {"kind": "cron", "cron": expression}, getattr(tz, "name", None) or str(tz)
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
    try:
        pipeline = _pipeline(dag, module_names, notes)
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
    return ImportedDag(dag.dag_id, pipeline, notes, location=location(dag, None))


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
    if not dag.task_dict:
        raise ImportRefused(
            "the DAG has no tasks", received="a DAG with 0 tasks", expected="at least one task (a pipeline runs tasks)"
        )
    data["tasks"] = [task_of(op, dag, baseline, module_names, notes) for op in dag.task_dict.values()]
    link_results(data["tasks"], dag, notes)
    for attr, default in UNMAPPED_DAG_FIELDS.items():
        value = getattr(dag, attr, default)
        if value not in (default, None) and value != {}:
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


def _callbacks(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


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

    def refusal(self) -> ImportRefusal:
        where = f"{self.file}:{self.line}" if self.line else self.file
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
    return FileError(file, line_no, message)


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
        lifter.settle(callables, imported=result.pipeline is not None)
        if result.pipeline is not None:
            result.notes.extend(callables.notes)
        results.append(result)
    # With --dag-id, the other files' import errors are not that DAG's problem.
    return results, ([] if dag_id else errors), lifter.imported_files()


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
        files=tuple(files),
    )
