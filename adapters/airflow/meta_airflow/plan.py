"""Pipeline -> a neutral description of an Airflow DAG (a "plan"), shared by the loader and by codegen.

Both deployment modes render the *same* plan: ``build.py`` instantiates it into ``airflow.sdk`` objects at parse
time, ``codegen.py`` prints it as Python source. So the loader and the generated files cannot drift apart.
Values in a plan are JSON-like literals, ``Call`` (instantiate a class / call a function), ``Ref`` (an imported
name) or ``Output`` (another task's result: its operator's XComArg). Nothing here imports Airflow, which keeps
planning cheap for the loader.

Results and mapping (``{{ tasks.X.result }}``, ``Task.map``): a string that is exactly one reference becomes the
upstream operator's ``.output`` (an XComArg, resolved by Airflow when the task renders its fields, so any JSON
type passes); a reference inside longer text becomes Jinja pulling the XCom (``ti.xcom_pull(task_ids='X')``). A
mapped python task is a TaskFlow task over ``meta_airflow.runtime.mapped_python``:
``task(...).partial(**kwargs).expand(**map)``, Airflow's own cross product.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from meta import (
    CompileError,
    CronSchedule,
    DatasetSchedule,
    IntervalSchedule,
    Pipeline,
    Task,
    TriggerRule,
    daily_tick,
    has_reference,
    mapped_sources,
    referenced_results,
    replace_results,
    topological_order,
    whole_reference,
)
from meta_airflow.typed_args import ISO_TYPES

TARGET = "airflow"
RUNTIME = "meta_airflow.runtime"
DEADLINE_CALLBACK = "meta_deadline.on_deadline_missed"  # a module in the Airflow plugins folder (triggerer imports it)
PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

BASH = "airflow.providers.standard.operators.bash:BashOperator"
BASH_WITH_SECRETS = "meta_airflow.operators:MetaBashOperator"  # resolves ${secret:NAME} in env when the task runs
PYTHON = "airflow.providers.standard.operators.python:PythonOperator"
BRANCH = "airflow.providers.standard.operators.python:BranchPythonOperator"
EMPTY = "airflow.providers.standard.operators.empty:EmptyOperator"
SQL = "airflow.providers.common.sql.operators.sql:SQLExecuteQueryOperator"
SQL_WITH_MAPPED_RESULTS = "meta_airflow.operators:MetaSQLExecuteQueryOperator"  # parameters get plain lists
TASKFLOW = "airflow.sdk:task"


@dataclass(frozen=True)
class Ref:
    """An importable name, ``'module:attr.attr'``."""

    path: str

    @property
    def module(self) -> str:
        return self.path.split(":", 1)[0]

    @property
    def attr(self) -> str:
        return self.path.split(":", 1)[1]


@dataclass(frozen=True)
class Call:
    """``Ref(path)(*args, **kwargs)``; kwargs keep their order (it is the order in generated code)."""

    path: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Output:
    """The result of the task ``task_id`` of the same DAG: its operator's ``.output`` (Airflow's XComArg)."""

    task_id: str


@dataclass(frozen=True)
class TaskPlan:
    task_id: str
    operator: str  # 'module:Class' (or TASKFLOW for a mapped task: 'airflow.sdk:task')
    kwargs: tuple[tuple[str, Any], ...]
    args: tuple[Any, ...] = ()  # positional arguments of ``operator`` (TaskFlow's python_callable)
    # A mapped task: ``operator(*args, task_id=..., **kwargs).partial(**partial).expand(**expand)``.
    partial: tuple[tuple[str, Any], ...] = ()
    expand: tuple[tuple[str, Any], ...] = ()

    @property
    def mapped(self) -> bool:
        return bool(self.expand)


@dataclass(frozen=True)
class DagPlan:
    dag_id: str
    kwargs: tuple[tuple[str, Any], ...]
    tasks: tuple[TaskPlan, ...]
    edges: tuple[tuple[str, str], ...]
    notes: tuple[str, ...] = field(default=())


# -------------------------------------------------------------------------------------------- helpers


def td(value: timedelta) -> Call:
    """A timedelta as ``timedelta(seconds=...)`` (or days/whole seconds when exact, for readability)."""
    seconds = value.total_seconds()
    if seconds == int(seconds):
        seconds_int = int(seconds)
        if seconds_int % 86400 == 0:
            return Call("datetime:timedelta", kwargs=(("days", seconds_int // 86400),))
        return Call("datetime:timedelta", kwargs=(("seconds", seconds_int),))
    return Call("datetime:timedelta", kwargs=(("seconds", seconds),))


def to_plan(value: Any) -> Any:
    """An imported operator argument (plain data, ``meta_airflow.typed_args.encode``) -> plan values: the typed
    forms become ``Call`` values, so the loader and codegen recreate the timedelta/datetime/date/time objects."""
    if isinstance(value, dict):
        kind = value.get("__type__")
        if kind == "datetime.timedelta":
            return td(timedelta(seconds=float(value["seconds"])))
        if kind in ISO_TYPES:
            cls = kind.rpartition(".")[2]
            return Call(f"datetime:{cls}.fromisoformat", args=(str(value["iso"]),))
        return {k: to_plan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plan(v) for v in value]
    return value


def dt(value: datetime, tz: str) -> Call:
    """A datetime as ``pendulum.datetime(...)``; naive values are in the pipeline's timezone."""
    if value.tzinfo is not None:
        offset = value.utcoffset()
        value = (value - offset).replace(tzinfo=None) if offset else value.replace(tzinfo=None)
        tz = "UTC"
    parts: list[Any] = [value.year, value.month, value.day]
    kw: list[tuple[str, Any]] = []
    for name in ("hour", "minute", "second", "microsecond"):
        if getattr(value, name):
            kw.append((name, getattr(value, name)))
    kw.append(("tz", tz))
    return Call("pendulum:datetime", args=tuple(parts), kwargs=tuple(kw))


def _asset(uri: str) -> Call:
    return Call("airflow.sdk:Asset", args=(uri,))


# -------------------------------------------------------------------------------------------- checks


def problems(pipeline: Pipeline) -> list[CompileError]:
    """Every feature of ``pipeline`` Airflow cannot express (see docs/capabilities-airflow.md)."""
    out: list[CompileError] = []
    for name in pipeline.params:
        if not PARAM_NAME.match(name):
            out.append(
                CompileError(
                    TARGET,
                    pipeline.id,
                    f"param name {name!r}",
                    "shell tasks get params as META_PARAM_<NAME> variables; expected a name like 'country'",
                )
            )
    required = [name for name, p in pipeline.params.items() if p.required]
    if required and pipeline.schedule is not None:
        out.append(
            CompileError(
                TARGET,
                pipeline.id,
                "required params on a scheduled pipeline",
                f"Airflow refuses a schedule when a param has no default ({', '.join(required)}); give them defaults",
            )
        )
    for task in pipeline.tasks:
        shadowed = sorted(set(task.map) | set(getattr(task.action, "kwargs", {}))) if task.mapped else []
        shadowed = [name for name in shadowed if name in _context_keys()]
        if shadowed:
            out.append(
                CompileError(
                    TARGET,
                    pipeline.id,
                    f"arguments named like Airflow's task context ({', '.join(shadowed)}) on a mapped task",
                    "a mapped task is a TaskFlow task, whose function receives the context under those names "
                    "(Airflow refuses partial()/expand() on them); rename the callable's arguments",
                    task=task.id,
                )
            )
        for name, source in task.map.items():
            ref = whole_reference(source)
            if ref is not None and ref.kind == "param":
                out.append(
                    CompileError(
                        TARGET,
                        pipeline.id,
                        f"mapping over a param (map.{name}: '{source}')",
                        "Airflow's expand() takes a list or an upstream task's result, not a DAG param; add a python "
                        f"task that returns the param (kwargs: {{value: '{source}'}}) and map over its result "
                        f"(map: {{{name}: '{{{{ tasks.<that task>.result }}}}'}})",
                        task=task.id,
                    )
                )
    # SLAs: what Airflow enforces itself is in native_sla (Deadline Alerts); the shared check (Target.check) refuses
    # the rest unless a workspace's control plane watches the pipeline on an airflow backend.
    return out


def _context_keys() -> frozenset[str]:
    """Airflow's task context names (``ds``, ``params``, ``ti``...); imported only for pipelines with mapped tasks."""
    try:
        from airflow.sdk.definitions.context import KNOWN_CONTEXT_KEYS
    except ImportError:  # planning without Airflow installed: Airflow itself refuses such a DAG when it parses it
        return frozenset()
    return frozenset(KNOWN_CONTEXT_KEYS)


def ensure_supported(pipeline: Pipeline) -> None:
    errors = problems(pipeline)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise CompileError(TARGET, pipeline.id, "several features", "; ".join(str(e) for e in errors))


# -------------------------------------------------------------------------------------------- schedule


def schedule_value(pipeline: Pipeline) -> Any:
    """The DAG's schedule; none for a pipeline with ``depends_on``: meta's control plane starts each run."""
    s = pipeline.backend_schedule
    if s is None:
        return None
    if isinstance(s, CronSchedule):
        return Call("airflow.sdk:CronTriggerTimetable", args=(s.cron,), kwargs=(("timezone", pipeline.timezone),))
    if isinstance(s, IntervalSchedule):
        return Call("airflow.sdk:DeltaTriggerTimetable", args=(td(s.every),))
    if isinstance(s, DatasetSchedule):
        assets = tuple(_asset(u) for u in s.datasets)
        if len(assets) == 1:
            return assets[0]
        if s.mode == "any":
            return Call("airflow.sdk:AssetAny", args=assets)
        return list(assets)  # a plain list is Airflow's "all of them"
    raise CompileError(TARGET, pipeline.id, f"schedule kind {s.kind!r}")


# -------------------------------------------------------------------------------------------- tasks


def shell_env(pipeline: Pipeline) -> dict[str, str]:
    """META_* variables as Airflow templates, so a shell task sees the same environment as on the local runner.

    Manual runs may have no logical date in Airflow 3; like the local runner, fall back to the run's ``run_after``.
    """
    ld = "(dag_run.logical_date or dag_run.run_after)"

    def tpl(expr: str) -> str:
        return "{{ " + expr + " }}"

    env = {
        "META_PIPELINE_ID": pipeline.id,
        "META_TASK_ID": tpl("task.task_id"),
        "META_RUN_ID": tpl("run_id"),
        "META_LOGICAL_DATE": tpl(f"{ld}.isoformat()"),
        "META_DS": tpl(f"{ld} | ds"),
        "META_DATA_INTERVAL_START": tpl(
            "(dag_run.data_interval_start or dag_run.logical_date or dag_run.run_after).isoformat()"
        ),
        "META_DATA_INTERVAL_END": tpl(
            "(dag_run.data_interval_end or dag_run.logical_date or dag_run.run_after).isoformat()"
        ),
        "META_TRY_NUMBER": tpl("ti.try_number"),
        "META_BACKEND": "airflow",
        "META_PARAMS": tpl("params | tojson"),
    }
    for name in pipeline.params:
        if PARAM_NAME.match(name):
            value = f"params[{name!r}]"
            env[f"META_PARAM_{name.upper()}"] = tpl(f"{value} if {value} is string else {value} | tojson")
    return env


META_ENV_KEYS = frozenset(
    {
        "META_PIPELINE_ID",
        "META_TASK_ID",
        "META_RUN_ID",
        "META_LOGICAL_DATE",
        "META_DS",
        "META_DATA_INTERVAL_START",
        "META_DATA_INTERVAL_END",
        "META_TRY_NUMBER",
        "META_BACKEND",
        "META_PARAMS",
    }
)


def bash_command(command: str) -> str:
    # BashOperator loads a command ending in .sh/.bash as a template *file*; a trailing space makes it a command.
    return command + " " if command.rstrip().endswith((".sh", ".bash")) else command


# -------------------------------------------------------------------------------------------- results

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


def result_jinja(task_id: str, mapped: bool) -> str:
    """The Jinja expression that reads ``task_id``'s result in an Airflow template (meta's ``tasks.X.result``).

    ``ti.xcom_pull(task_ids='X')`` gives the one XCom of an unmapped task (None when it pushed none). For a mapped
    task Airflow 3.3.2 gives a bare value when exactly one instance pushed one, so the id goes in a list (always a
    list back, ``[None]`` when no instance pushed one: dropped): the list of the instances' results in map-index
    order, which is what meta renders (``[1, 4, 9]``).
    """
    if mapped:
        return f"(ti.xcom_pull(task_ids=[{task_id!r}]) | reject('none') | list)"
    return f"ti.xcom_pull(task_ids={task_id!r})"


@dataclass(frozen=True)
class Results:
    """Turns meta's result references into Airflow: whole references into ``Output`` (XComArg), references inside
    template text into ``ti.xcom_pull`` Jinja. Text outside ``{{ }}``/``{% %}`` is never touched."""

    mapped: frozenset[str]  # mapped tasks (their result is the list of their instances' results)
    sources: frozenset[str]  # tasks some task maps over (their result must be a list)

    @classmethod
    def of(cls, pipeline: Pipeline) -> Results:
        return cls(frozenset(t.id for t in pipeline.tasks if t.mapped), mapped_sources(pipeline))

    def text(self, text: str) -> str:
        if "tasks" not in text or "{" not in text:
            return text
        return _JINJA.sub(
            lambda m: replace_results(m.group(0), lambda tid: result_jinja(tid, tid in self.mapped)), text
        )

    def value(self, value: Any) -> Any:
        """A JSON-like value with each string that is exactly one result reference replaced by its ``Output``."""
        if isinstance(value, str):
            ref = whole_reference(value)
            if ref is not None and ref.kind == "result":
                return Output(ref.name)
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


def action_plan(pipeline: Pipeline, task: Task, results: Results | None = None) -> tuple[str, list[tuple[str, Any]]]:
    a = task.action
    r = results or Results.of(pipeline)
    if a.kind == "shell":
        kw: list[tuple[str, Any]] = [("bash_command", bash_command(r.text(a.command)))]
        if a.env:  # the META_* variables come from default_args; a task's own env replaces them, so repeat them
            kw.append(("env", {**shell_env(pipeline), **r.value(dict(a.env))}))
        if a.cwd is not None:
            kw.append(("cwd", r.text(a.cwd)))
        return (BASH_WITH_SECRETS if has_reference(a.env) else BASH), kw
    if a.kind == "python":
        op_kwargs: dict[str, Any] = {"target": a.callable, "kwargs": r.value(dict(a.kwargs))}
        if task.id in r.sources:
            # Its result must be a list: checked with meta's message before Airflow's UnmappableXComTypePushed.
            op_kwargs["map_source"] = True
        return PYTHON, [("python_callable", Ref(f"{RUNTIME}:call_python")), ("op_kwargs", op_kwargs)]
    if a.kind == "branch":
        op_kwargs = {"target": a.callable, "kwargs": r.value(dict(a.kwargs))}
        return BRANCH, [("python_callable", Ref(f"{RUNTIME}:call_branch")), ("op_kwargs", op_kwargs)]
    if a.kind == "noop":
        return EMPTY, []
    if a.kind == "sql":
        kw = [("conn_id", a.conn), ("sql", r.text(a.statement))]
        if a.split_statements:  # (the local and Prefect backends always run statement by statement)
            kw.append(("split_statements", True))
        if a.parameters:
            kw.append(("parameters", r.value(dict(a.parameters))))
        uses_mapped = any(ref in r.mapped for ref in referenced_results(dict(a.parameters)))
        return (SQL_WITH_MAPPED_RESULTS if uses_mapped else SQL), kw
    if a.kind == "op":
        op_kwargs = {"op": a.op, "with_args": r.value(dict(a.with_))}
        return PYTHON, [("python_callable", Ref(f"{RUNTIME}:run_op")), ("op_kwargs", op_kwargs)]
    if a.kind == "airflow_operator":
        module, _, cls = a.operator.rpartition(".")
        return f"{module}:{cls}", [(k, to_plan(v)) for k, v in a.arguments.items()]
    raise CompileError(TARGET, pipeline.id, f"task kind {a.kind!r}", task=task.id)


def retry_kwargs(source: Any) -> list[tuple[str, Any]]:
    """Retry/timeout/pool fields a task or the pipeline defaults set explicitly (unset fields inherit)."""
    kw: list[tuple[str, Any]] = []
    if source.retries is not None:
        kw.append(("retries", source.retries))
    if source.retry_delay is not None:
        kw.append(("retry_delay", td(source.retry_delay)))
    if source.retry_backoff is not None:
        # meta 1.0 = constant delay = Airflow's 0 (off); any other value is Airflow's float multiplier.
        kw.append(("retry_exponential_backoff", 0.0 if source.retry_backoff == 1.0 else float(source.retry_backoff)))
    if source.max_retry_delay is not None:
        kw.append(("max_retry_delay", td(source.max_retry_delay)))
    if source.timeout is not None:
        kw.append(("execution_timeout", td(source.timeout)))
    if source.pool is not None:
        kw.append(("pool", source.pool))
    if source.trigger_rule is not None:
        kw.append(("trigger_rule", _rule(source.trigger_rule)))
    return kw


def _rule(rule: TriggerRule) -> str:
    return str(rule.value)


def task_plan(pipeline: Pipeline, task: Task, results: Results | None = None) -> TaskPlan:
    r = results or Results.of(pipeline)
    if task.mapped:
        return mapped_task_plan(pipeline, task, r)
    operator, kw = action_plan(pipeline, task, r)
    return TaskPlan(task.id, operator, tuple(kw + task_kwargs(task)))


def mapped_task_plan(pipeline: Pipeline, task: Task, results: Results) -> TaskPlan:
    """A mapped python task: ``task(mapped_python(target, names), ...).partial(**kwargs).expand(**map)``.

    A classic PythonOperator can expand only its own arguments (``op_kwargs`` is one), so the task is a TaskFlow
    task whose function takes the callable's kwargs by name: Airflow then builds the cross product of ``map``
    itself (last name varying fastest) and counts, retries and shows each instance.
    """
    a = task.action
    names = [*a.kwargs, *task.map]  # type: ignore[union-attr]  # the model allows map on python tasks only
    function = Call(f"{RUNTIME}:mapped_python", args=(a.callable, names))  # type: ignore[union-attr]
    partial = tuple((k, results.value(v)) for k, v in a.kwargs.items())  # type: ignore[union-attr]
    # Airflow renders the strings of a literal list like any argument (only values from XCom are not rendered again),
    # so result references inside them are translated as well.
    expand = tuple((k, results.value(v)) for k, v in task.map.items())
    kw: list[tuple[str, Any]] = [("multiple_outputs", False), *task_kwargs(task)]
    return TaskPlan(task.id, TASKFLOW, tuple(kw), args=(function,), partial=partial, expand=expand)


def task_kwargs(task: Task) -> list[tuple[str, Any]]:
    """The operator arguments every kind of task may have (retries, limits, assets, params, doc)."""
    kw = retry_kwargs(task)
    if task.max_active is not None:
        kw.append(("max_active_tis_per_dag", task.max_active))
    if task.inputs:
        kw.append(("inlets", [_asset(u) for u in task.inputs]))
    if task.outputs:
        kw.append(("outlets", [_asset(u) for u in task.outputs]))
    if task.params:
        kw.append(("params", dict(task.params)))
    if task.description is not None:
        kw.append(("doc", task.description))
    return kw


# -------------------------------------------------------------------------------------------- DAG


def _alert(channels: tuple[str, ...], event: str) -> Call:
    return Call(f"{RUNTIME}:AlertCallback", args=(list(channels), event))


def dag_kwargs(pipeline: Pipeline) -> list[tuple[str, Any]]:
    p = pipeline
    kw: list[tuple[str, Any]] = [("dag_id", p.id)]
    if p.description is not None:
        kw.append(("description", p.description))
    kw.append(("schedule", schedule_value(p)))
    if p.start_date is not None:
        kw.append(("start_date", dt(p.start_date, p.timezone)))
    if p.end_date is not None:
        kw.append(("end_date", dt(p.end_date, p.timezone)))
    kw.append(("catchup", p.catchup))
    if p.max_active_runs is not None:
        kw.append(("max_active_runs", p.max_active_runs))
    if p.max_active_tasks is not None:
        kw.append(("max_active_tasks", p.max_active_tasks))
    tags = list(p.tags) + ([f"team:{p.team}"] if p.team else [])
    if tags:
        kw.append(("tags", tags))
    default_args: dict[str, Any] = {}
    if p.owner is not None:
        default_args["owner"] = p.owner
    default_args.update(retry_kwargs(p.defaults))
    if any(t.action.kind == "shell" for t in p.tasks):
        # default_args reach only operators whose signature takes them: here BashOperator's env/append_env.
        default_args["env"] = shell_env(p)
        default_args["append_env"] = True
    if p.alerts.on_retry:
        default_args["on_retry_callback"] = _alert(p.alerts.on_retry, "retry")
    if default_args:
        kw.append(("default_args", default_args))
    if p.params:
        kw.append(("params", {name: param_value(param) for name, param in p.params.items()}))
    if p.alerts.on_failure:
        kw.append(("on_failure_callback", _alert(p.alerts.on_failure, "failure")))
    if p.alerts.on_success:
        kw.append(("on_success_callback", _alert(p.alerts.on_success, "success")))
    deadlines = deadline_alerts(p)
    if deadlines:
        kw.append(("deadline", deadlines[0] if len(deadlines) == 1 else deadlines))
    return kw


def finish_by_interval(tick: time, finish_by: time) -> timedelta:
    """From the scheduled tick (the run's logical date) to the next ``finish_by``; a full day when they are equal."""
    seconds = (finish_by.hour * 3600 + finish_by.minute * 60 + finish_by.second) - (tick.hour * 3600 + tick.minute * 60)
    return timedelta(seconds=seconds % 86400 or 86400)


def _deadline(p: Pipeline, reference: Ref | Call, interval: timedelta, sla: str, name: str | None = None) -> Call:
    callback = Call(
        "airflow.sdk:AsyncCallback",
        args=(DEADLINE_CALLBACK,),
        kwargs=(("kwargs", {"pipeline": p.id, "sla": sla, "channels": list(p.alerts.on_sla_miss)}),),
    )
    kwargs: tuple[tuple[str, Any], ...] = (("reference", reference), ("interval", td(interval)), ("callback", callback))
    return Call("airflow.sdk:DeadlineAlert", kwargs=kwargs + ((("name", name),) if name else ()))


def deadline_reference(deadline: Any) -> Ref | Call:
    """The Airflow 3.3 ``DeadlineReference`` of one ``sla.deadlines`` entry (a ``meta.spec.model.Deadline``)."""
    match deadline.reference:
        case "logical_date":
            return Ref("airflow.sdk:DeadlineReference.DAGRUN_LOGICAL_DATE")
        case "queued_at":
            return Ref("airflow.sdk:DeadlineReference.DAGRUN_QUEUED_AT")
        case "average_runtime":
            runs: tuple[tuple[str, Any], ...] = (("max_runs", deadline.max_runs),)
            if deadline.min_runs is not None:
                runs += (("min_runs", deadline.min_runs),)
            return Call("airflow.sdk:DeadlineReference.AVERAGE_RUNTIME", kwargs=runs)
        case "fixed":
            assert deadline.at is not None  # the model requires it for reference: fixed
            return Call("airflow.sdk:DeadlineReference.FIXED_DATETIME", args=(dt(deadline.at, "UTC"),))
    raise ValueError(f"unknown deadline reference {deadline.reference!r}")  # the model allows no other


def deadline_alerts(p: Pipeline) -> list[Call]:
    """Run-level SLAs as Deadline Alerts. ``finish_by`` is measured from the scheduled tick (the logical date): exact
    except on daylight-saving change days, when the wall clock between tick and deadline moves by the shift. Each
    ``deadlines`` entry is the Deadline Alert it was written after, named ``Deadline.name``."""
    out: list[Call] = []
    if p.sla is None:
        return out
    if p.sla.max_duration is not None:
        out.append(
            _deadline(p, Ref("airflow.sdk:DeadlineReference.DAGRUN_QUEUED_AT"), p.sla.max_duration, "max_duration")
        )
    tick = daily_tick(p)
    if p.sla.finish_by is not None and tick is not None:
        interval = finish_by_interval(tick, p.sla.finish_by)
        out.append(_deadline(p, Ref("airflow.sdk:DeadlineReference.DAGRUN_LOGICAL_DATE"), interval, "finish_by"))
    for deadline in p.sla.deadlines:
        out.append(_deadline(p, deadline_reference(deadline), deadline.interval, deadline.name, deadline.name))
    return out


def param_value(param: Any) -> Call:
    schema = param.json_schema()
    args: tuple[Any, ...] = () if param.required else (param.default,)
    return Call("airflow.sdk:Param", args=args, kwargs=tuple(schema.items()))


def plan(pipeline: Pipeline) -> DagPlan:
    ensure_supported(pipeline)
    results = Results.of(pipeline)
    # Topological order: a task's arguments may name an upstream operator's output (a reference may point to a
    # task listed later in the spec); stable, so a spec listed upstream-first keeps its order.
    by_id = {t.id: t for t in pipeline.tasks}
    order = topological_order({t.id: list(t.upstream) for t in pipeline.tasks})
    tasks = tuple(task_plan(pipeline, by_id[tid], results) for tid in order)
    edges = tuple((up, by_id[tid].id) for tid in order for up in by_id[tid].upstream)
    return DagPlan(pipeline.id, tuple(dag_kwargs(pipeline)), tasks, edges)
