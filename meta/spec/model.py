"""The neutral pipeline model: declarative, frozen, ``extra="forbid"``, lossless on round-trip.

``Pipeline.model_validate(p.model_dump()) == p`` holds for every pipeline. Backends read this model and
either express every field or refuse it at compile time (see each target's capability list).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from meta.spec.checks import TaskShape, graph_problems
from meta.spec.durations import format_duration, parse_duration
from meta.spec.errors import Problem, ValidationFailed
from meta.spec.references import referenced_results, whole_reference
from meta.spec.states import TriggerRule


def _duration_validator(value: object) -> timedelta:
    return parse_duration(value)


# Durations accept "30s", "5m", "2h", "1d", ISO-8601 and seconds; they serialize to the short form in JSON.
Duration = Annotated[
    timedelta,
    BeforeValidator(_duration_validator),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]

# Airflow's dag_id / task_id alphabet (KEY_REGEX): letters, digits, dash, dot, underscore; at most 250 chars.
IDENTIFIER_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN, min_length=1, max_length=250)]
CALLABLE_PATTERN = (
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
)
CallableRef = Annotated[str, Field(pattern=CALLABLE_PATTERN, description="'package.module:function'")]
CHANNEL_PATTERN = r"^[a-z][a-z0-9_]*:[A-Za-z0-9_.@+\-]+$"
ChannelRef = Annotated[str, Field(pattern=CHANNEL_PATTERN, description="'<kind>:<name>', e.g. 'slack:data-team'")]
DATASET_PATTERN = r"^[a-zA-Z][a-zA-Z0-9+.\-]*://\S*$|^[^\s:]+$"
DatasetUri = Annotated[
    str,
    Field(pattern=DATASET_PATTERN, min_length=1, description="a dataset URI, e.g. 'postgres://warehouse/public.sales'"),
]


class Model(BaseModel):
    # hide_input_in_errors: a literal credential must never be echoed back in an error message.
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, hide_input_in_errors=True)


# ---------------------------------------------------------------------------------------------- actions


class ShellAction(Model):
    """A shell command, run like Airflow's BashOperator: exit 0 success, exit 99 skipped, else failed."""

    kind: Literal["shell"] = "shell"
    command: str = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None


class PythonAction(Model):
    """Call ``module:function`` with ``kwargs`` (plus any run-context names the function's signature asks for)."""

    kind: Literal["python"] = "python"
    callable: CallableRef
    kwargs: dict[str, Any] = Field(default_factory=dict)


class SqlAction(Model):
    """Run ``statement`` on the named connection (resolved by each backend; see docs/local-runner.md).

    ``file`` names the SQL file the statement was read from, relative to the spec file: a spec may give ``file``
    instead of ``statement`` and the loader reads it (docs/adr/0010-sql-files.md), so every backend still runs
    ``statement``; the YAML writer writes ``file`` back, not the text. ``split_statements``: run the text statement
    by statement (Airflow's ``split_statements=True``; the local and Prefect backends always do)."""

    kind: Literal["sql"] = "sql"
    conn: Identifier
    statement: str = Field(min_length=1)
    file: str | None = Field(default=None, min_length=1, description="the SQL file, relative to the spec file")
    split_statements: bool = False
    parameters: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _file_is_read_by_the_loader(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("file") and "statement" not in value:
            raise ValueError(
                f"sql file {value['file']!r} was not read: meta's loader reads it relative to the spec file; "
                "building the model directly, pass statement= (the file's text) too"
            )
        return value

    @model_serializer(mode="wrap")
    def _without_unset_options(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Dumps leave ``file``/``split_statements`` out while unset, so a spec without them dumps (and hashes,
        e.g. Prefect's deployment version) exactly as before they existed."""
        data: dict[str, Any] = handler(self)
        if data.get("file") is None:
            data.pop("file", None)
        if data.get("split_statements") is False:
            data.pop("split_statements", None)
        return data


class BranchAction(Model):
    """Call ``module:function``; it returns the downstream task id(s) to follow. Others are skipped (as in Airflow)."""

    kind: Literal["branch"] = "branch"
    callable: CallableRef
    kwargs: dict[str, Any] = Field(default_factory=dict)


class NoopAction(Model):
    """Does nothing (Airflow's EmptyOperator)."""

    kind: Literal["noop"] = "noop"


class OpAction(Model):
    """An op type registered by a plugin, e.g. ``warehouse_load`` or ``alert``, configured by ``with``."""

    kind: Literal["op"] = "op"
    op: Identifier
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")


class AirflowOperatorAction(Model):
    """An imported Airflow operator meta has no neutral form for. Compiles back to Airflow only."""

    kind: Literal["airflow_operator"] = "airflow_operator"
    operator: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$", description="dotted class path")]
    arguments: dict[str, Any] = Field(default_factory=dict)


Action = Annotated[
    ShellAction | PythonAction | SqlAction | BranchAction | NoopAction | OpAction | AirflowOperatorAction,
    Field(discriminator="kind"),
]
ACTION_KINDS = ("shell", "python", "sql", "branch", "noop", "op", "airflow_operator")


# ---------------------------------------------------------------------------------------------- tasks


class RetrySettings(Model):
    """Fields shared by tasks and pipeline-level task defaults. ``None`` means "inherit"."""

    retries: Annotated[int, Field(ge=0)] | None = None
    retry_delay: Duration | None = None
    retry_backoff: Annotated[float, Field(ge=1.0)] | None = Field(
        default=None,
        description="multiplier applied to the delay after each retry (2.0 doubles); 1.0 or unset: constant",
    )
    max_retry_delay: Duration | None = None
    timeout: Duration | None = None
    pool: Identifier | None = None


class TaskDefaults(RetrySettings):
    """Defaults applied to every task of a pipeline (Airflow's default_args)."""

    trigger_rule: TriggerRule | None = None


class Task(RetrySettings):
    id: Identifier
    action: Action
    upstream: tuple[Identifier, ...] = ()
    trigger_rule: TriggerRule | None = None
    max_active: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="at most this many instances of the task run at once, across runs"
    )
    inputs: tuple[DatasetUri, ...] = ()
    outputs: tuple[DatasetUri, ...] = ()
    params: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    max_duration: Duration | None = Field(
        default=None,
        description="SLA: each try of this task ends within this long after it starts (alerted while it still "
        "runs; unlike timeout, nothing is stopped)",
    )
    map: dict[str, Any] = Field(
        default_factory=dict,
        description="dynamic mapping (Airflow's expand): kwarg name -> a list, '{{ params.NAME }}' or "
        "'{{ tasks.ID.result }}'; one instance per element (the cross product for several names)",
    )

    @property
    def kind(self) -> str:
        return self.action.kind

    @property
    def mapped(self) -> bool:
        return bool(self.map)

    def result_references(self) -> list[str]:
        """Task ids whose results this task uses (in its action's fields or its ``map``)."""
        return referenced_results([_referencing_fields(self.action.model_dump(by_alias=True)), self.map])


# Task kinds whose attempts produce a result (python: the return value; shell: the last line of output, like
# BashOperator's XCom push). Other kinds have none, so a reference to them is refused.
RESULT_KINDS = ("python", "shell")
# Airflow's [core] max_map_length: more elements fail the task that produced the list.
MAX_MAP_LENGTH = 1024


def _referencing_fields(action: dict[str, Any]) -> dict[str, Any]:
    """The action fields that may hold references (an imported Airflow operator's arguments are Airflow's own)."""
    if action.get("kind") == "airflow_operator":
        return {}
    return {k: v for k, v in action.items() if k not in ("kind", "callable", "op", "conn")}


# Airflow's built-in defaults, used when neither the task nor the pipeline says otherwise.
DEFAULT_RETRY_DELAY = timedelta(seconds=300)


class TaskSettings(Model):
    """A task's effective settings after applying pipeline defaults and Airflow's built-in defaults."""

    retries: int
    retry_delay: timedelta
    retry_backoff: float | None
    max_retry_delay: timedelta | None
    timeout: timedelta | None
    pool: str | None
    trigger_rule: TriggerRule


CRON_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


class CronSchedule(Model):
    kind: Literal["cron"] = "cron"
    cron: str = Field(description="a 5-field cron expression or a preset like '@daily'")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from croniter import croniter

        value = value.strip()
        if value in CRON_PRESETS:
            return value
        if value.startswith("@"):
            raise ValueError(f"unknown cron preset {value!r}; expected one of {', '.join(CRON_PRESETS)}")
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"invalid cron expression {value!r}; expected 5 fields like '0 1 * * *'")
        return value

    @property
    def expression(self) -> str:
        """The cron expression with presets expanded (for backends that have no presets)."""
        return CRON_PRESETS.get(self.cron, self.cron)


class IntervalSchedule(Model):
    kind: Literal["interval"] = "interval"
    every: Duration

    @field_validator("every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("an interval schedule needs a positive duration")
        return value


class DatasetSchedule(Model):
    """Run when the listed datasets are updated: all of them (``all``, Airflow's default) or any one (``any``)."""

    kind: Literal["datasets"] = "datasets"
    datasets: tuple[DatasetUri, ...] = Field(min_length=1)
    mode: Literal["all", "any"] = "all"


Schedule = Annotated[CronSchedule | IntervalSchedule | DatasetSchedule, Field(discriminator="kind")]


# ---------------------------------------------------------------------------------------------- params, SLA, alerts

JsonType = Literal["string", "integer", "number", "boolean", "array", "object", "null"]
_JSON_TYPE_CHECK: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list | tuple),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


class Param(Model):
    """A run parameter, described with JSON-schema keywords (what Airflow's Param takes)."""

    type: JsonType | tuple[JsonType, ...] | None = None
    default: Any = None
    required: bool = Field(default=False, description="true when no default is given: a run must supply it")
    description: str | None = None
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = Field(default=None, alias="minLength", ge=0)
    max_length: int | None = Field(default=None, alias="maxLength", ge=0)
    pattern: str | None = None
    format: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _required_when_no_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and "default" not in data and "required" not in data:
            data = {**data, "required": True}
        return data

    @model_validator(mode="after")
    def _default_matches(self) -> Param:
        if not self.required:
            problem = self.check_value(self.default)
            if problem:
                raise ValueError(f"default {self.default!r} does not fit the param: {problem}")
        return self

    def check_value(self, value: Any) -> str | None:
        """Return why ``value`` does not fit this param, or None when it does."""
        types = (self.type,) if isinstance(self.type, str) else (self.type or ())
        if types and not any(_JSON_TYPE_CHECK[t](value) for t in types):
            return f"expected type {' or '.join(types)}, got {type(value).__name__} {value!r}"
        if self.enum is not None and value not in self.enum:
            return f"expected one of {list(self.enum)!r}, got {value!r}"
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                return f"expected at least {self.minimum}, got {value!r}"
            if self.maximum is not None and value > self.maximum:
                return f"expected at most {self.maximum}, got {value!r}"
        if isinstance(value, str):
            if self.min_length is not None and len(value) < self.min_length:
                return f"expected at least {self.min_length} characters, got {len(value)}"
            if self.max_length is not None and len(value) > self.max_length:
                return f"expected at most {self.max_length} characters, got {len(value)}"
            if self.pattern is not None and not re.search(self.pattern, value):
                return f"expected to match {self.pattern!r}, got {value!r}"
        return None

    def json_schema(self) -> dict[str, Any]:
        """The JSON-schema keywords of this param (what Airflow's Param and Prefect's parameters take)."""
        out: dict[str, Any] = {}
        if self.type is not None:
            out["type"] = self.type if isinstance(self.type, str) else list(self.type)
        for key, value in (
            ("description", self.description),
            ("enum", list(self.enum) if self.enum is not None else None),
            ("minimum", self.minimum),
            ("maximum", self.maximum),
            ("minLength", self.min_length),
            ("maxLength", self.max_length),
            ("pattern", self.pattern),
            ("format", self.format),
        ):
            if value is not None:
                out[key] = value
        return out


DeadlineReference = Literal["logical_date", "queued_at", "average_runtime", "fixed"]
DEADLINE_REFERENCES: tuple[str, ...] = get_args(DeadlineReference)


class Deadline(Model):
    """A deadline as Airflow 3's ``DeadlineAlert`` writes it: the run must have ended by ``reference + interval``.

    ``logical_date`` / ``queued_at``: the run's logical date or the time it was queued; ``average_runtime``: when the
    run was queued plus the average duration of the last ``max_runs`` finished runs (none until ``min_runs`` exist);
    ``fixed``: the instant ``at``. Kept in this shape so an imported Airflow deadline maps without loss.
    """

    reference: DeadlineReference
    interval: Duration = Field(default=timedelta(0), description="added to the reference")
    at: datetime | None = Field(default=None, description="the fixed instant (reference: fixed), with a UTC offset")
    max_runs: Annotated[int, Field(ge=1)] = Field(default=10, description="average_runtime: runs averaged at most")
    min_runs: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="average_runtime: runs needed before a deadline is set (default: max_runs)"
    )

    @model_validator(mode="after")
    def _fits_reference(self) -> Deadline:
        if self.reference == "fixed":
            if self.at is None:
                raise ValueError("a fixed deadline needs 'at', e.g. at: '2026-12-24T18:00:00+01:00'")
            if self.at.tzinfo is None:
                raise ValueError(f"'at' {self.at.isoformat()} needs a UTC offset, e.g. +01:00 or Z")
        elif self.at is not None:
            raise ValueError(f"'at' is only for reference: fixed, not {self.reference}")
        # Compared with the defaults, not with the fields set: a dumped model carries every field.
        extra = [k for k, default in (("max_runs", 10), ("min_runs", None)) if getattr(self, k) != default]
        if self.reference != "average_runtime" and extra:
            raise ValueError(f"{', '.join(extra)} only apply to reference: average_runtime")
        return self

    @property
    def name(self) -> str:
        """How misses and the status board call this deadline: ``deadline:<reference>+<interval>``."""
        return f"deadline:{self.reference}+{format_duration(self.interval)}"


class SLA(Model):
    """Run-level service levels. Times of day are local to the pipeline's timezone and apply to each schedule slot
    (a slot with no run at all misses them); ``fresh_within`` needs a success within the window, scheduled or not."""

    finish_by: time | None = Field(default=None, description="each slot's run has succeeded by this local time")
    start_by: time | None = Field(default=None, description="each slot's run has started by this local time")
    max_duration: Duration | None = Field(default=None, description="a run ends within this long after it is queued")
    fresh_within: Duration | None = Field(
        default=None, description="the pipeline has succeeded within this window (any schedule, or none)"
    )
    deadlines: tuple[Deadline, ...] = Field(default=(), description="Airflow-style deadlines (reference + interval)")

    @model_validator(mode="after")
    def _something_set(self) -> SLA:
        if not self.kinds():
            raise ValueError("an SLA needs at least one of finish_by, start_by, max_duration, fresh_within, deadlines")
        return self

    def kinds(self) -> tuple[str, ...]:
        """The SLA kinds this block sets, in a fixed order (each is watched and reported on its own)."""
        out = [k for k in ("finish_by", "start_by", "max_duration", "fresh_within") if getattr(self, k) is not None]
        return (*out, *(d.name for d in self.deadlines))


def known_timezone(value: str) -> str:
    """``value`` if it names an IANA timezone, else a ValueError saying what is expected."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r}; expected an IANA name like 'Europe/Zurich' or 'UTC'") from None
    return value


def slot_sla_problem(sla: SLA | None, schedule: Schedule | None, fix: str) -> str | None:
    """Why ``finish_by`` / ``start_by`` cannot apply (they need schedule slots), or None; ``fix`` says what to do."""
    if sla is None or not (sla.finish_by or sla.start_by) or isinstance(schedule, CronSchedule | IntervalSchedule):
        return None
    which = "sla.finish_by" if sla.finish_by else "sla.start_by"
    received = schedule.kind + " schedule" if schedule else "no schedule"
    return f"{which} applies to each schedule slot, but the pipeline has {received}; {fix}"


class Escalation(Model):
    """When an SLA miss is still unresolved ``after`` this long, tell ``channels`` too (once per miss)."""

    after: Duration
    channels: tuple[ChannelRef, ...] = Field(min_length=1)


class AlertRoutes(Model):
    """Which alert channels hear about which events, e.g. ``on_failure: [slack:data-team]``."""

    on_failure: tuple[ChannelRef, ...] = ()
    on_retry: tuple[ChannelRef, ...] = ()
    on_success: tuple[ChannelRef, ...] = ()
    on_sla_miss: tuple[ChannelRef, ...] = ()
    sla_escalation: Escalation | None = Field(
        default=None, description="a second set of channels told when a miss is still open after a delay"
    )


# ---------------------------------------------------------------------------------------------- dependencies

DEFAULT_DEPENDENCY_TIMEOUT = timedelta(days=1)  # Airflow's sensors wait 7 days; a day is a kinder default for pages


class Dependency(Model):
    """This pipeline waits for another one (or one task of it), wherever that runs: the control plane starts this
    pipeline on its own backends once the upstream has succeeded (``meta serve``; docs/dependencies.md).

    ``align: same``: one run per logical date of the upstream, with that logical date (and the upstream run's params
    this pipeline declares). ``align: latest``: this pipeline keeps its own schedule, driven by the control plane; each
    slot runs once the upstream has a success that ended at most ``within`` before the slot. Either way the wait
    gives up ``timeout`` after it began: the waiting run is failed and ``alerts.on_failure`` is told."""

    pipeline: Identifier = Field(description="the upstream pipeline's id (meta-built or an observed DAG/flow)")
    task: Identifier | None = Field(default=None, description="only this task of it has to succeed")
    backend: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_\-]*$", max_length=63)] | None = Field(
        default=None, description="only its runs on this backend count (default: any backend it runs on)"
    )
    align: Literal["same", "latest"] = Field(
        default="same", description="same: the upstream's logical date; latest: a recent success, per own slot"
    )
    within: Duration | None = Field(
        default=None, description="align latest: how recent the upstream success must be (default: one day)"
    )
    timeout: Duration = Field(
        default=DEFAULT_DEPENDENCY_TIMEOUT, description="how long to wait before failing the run and alerting"
    )

    @model_validator(mode="before")
    @classmethod
    def _plain_id(cls, value: Any) -> Any:
        """``"marketing_roi"`` is short for ``{pipeline: marketing_roi}`` (YAML, the DSL and Python alike)."""
        return {"pipeline": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _window_fits_alignment(self) -> Dependency:
        if self.within is not None and self.align != "latest":
            raise ValueError("'within' applies to align: latest only (align: same waits for the same logical date)")
        if self.timeout <= timedelta(0):
            raise ValueError("timeout must be positive, e.g. 6h")
        return self

    @property
    def window(self) -> timedelta:
        return self.within if self.within is not None else timedelta(days=1)

    @property
    def label(self) -> str:
        return self.pipeline + (f".{self.task}" if self.task else "") + (f" on {self.backend}" if self.backend else "")


# ---------------------------------------------------------------------------------------------- pipeline


class Pipeline(Model):
    id: Identifier
    description: str | None = None
    owner: str | None = None
    team: str | None = None
    tags: tuple[str, ...] = ()
    schedule: Schedule | None = None
    timezone: str = "UTC"
    start_date: datetime | None = None
    end_date: datetime | None = None
    catchup: bool = False
    max_active_runs: Annotated[int, Field(ge=1)] | None = None
    max_active_tasks: Annotated[int, Field(ge=1)] | None = None
    params: dict[str, Param] = Field(default_factory=dict)
    defaults: TaskDefaults = Field(default_factory=TaskDefaults)
    sla: SLA | None = None
    alerts: AlertRoutes = Field(default_factory=AlertRoutes)
    depends_on: tuple[Dependency, ...] = Field(
        default=(), description="pipelines (on any backend) this one waits for; the control plane starts it"
    )
    tasks: tuple[Task, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _references_imply_upstream(cls, data: Any) -> Any:
        """A task that uses another task's result depends on it: add the referenced tasks to ``upstream``."""
        if not isinstance(data, dict) or not isinstance(data.get("tasks"), list | tuple):
            return data
        tasks = list(data["tasks"])
        ids = {t.id if isinstance(t, Task) else t.get("id") for t in tasks if isinstance(t, Task | dict)}
        changed = False
        for i, task in enumerate(tasks):
            if isinstance(task, Task):
                refs, upstream = task.result_references(), list(task.upstream)
            elif isinstance(task, dict) and isinstance(task.get("upstream", ()), list | tuple):
                action = task.get("action")
                fields = action.model_dump(by_alias=True) if isinstance(action, BaseModel) else action
                refs = referenced_results(
                    [_referencing_fields(fields if isinstance(fields, dict) else {}), task.get("map")]
                )
                upstream = list(task.get("upstream", ()))
            else:
                continue
            missing = [
                r
                for r in refs
                if r in ids and r not in upstream and r != (task.id if isinstance(task, Task) else task.get("id"))
            ]
            if not missing:
                continue
            changed = True
            new_upstream = tuple(upstream + missing)
            tasks[i] = (
                task.model_copy(update={"upstream": new_upstream})
                if isinstance(task, Task)
                else {**task, "upstream": new_upstream}
            )
        return {**data, "tasks": tasks} if changed else data

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return known_timezone(value)

    @model_validator(mode="after")
    def _structure(self) -> Pipeline:
        problems = _structural_problems(self)
        if problems:
            raise ValidationFailed(problems)
        return self

    # -- helpers every backend uses -------------------------------------------------------------

    @property
    def task_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.tasks)

    def task(self, task_id: str) -> Task:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)

    def settings_for(self, task: Task) -> TaskSettings:
        """Effective retry/timeout/pool/trigger-rule settings: task, else pipeline defaults, else Airflow's."""
        d = self.defaults

        def pick(name: str, fallback: Any) -> Any:
            own = getattr(task, name)
            if own is not None:
                return own
            inherited = getattr(d, name)
            return inherited if inherited is not None else fallback

        return TaskSettings(
            retries=pick("retries", 0),
            retry_delay=pick("retry_delay", DEFAULT_RETRY_DELAY),
            retry_backoff=pick("retry_backoff", None),
            max_retry_delay=pick("max_retry_delay", None),
            timeout=pick("timeout", None),
            pool=pick("pool", None),
            trigger_rule=pick("trigger_rule", TriggerRule.ALL_SUCCESS),
        )

    def downstream_of(self, task_id: str) -> tuple[str, ...]:
        return tuple(t.id for t in self.tasks if task_id in t.upstream)

    def leaves(self) -> tuple[str, ...]:
        """Tasks nothing depends on; Airflow decides the run state from these."""
        has_downstream = {u for t in self.tasks for u in t.upstream}
        return tuple(t.id for t in self.tasks if t.id not in has_downstream)

    def default_params(self) -> dict[str, Any]:
        return {name: p.default for name, p in self.params.items() if not p.required}

    @property
    def backend_schedule(self) -> Schedule | None:
        """The schedule a backend should run on its own: none when ``depends_on`` hands it to the control plane
        (which starts each run once the upstream succeeded: a schedule kept on the backend too would run it twice)."""
        return None if self.depends_on else self.schedule


def _structural_problems(pipeline: Pipeline) -> list[Problem]:
    shapes = [
        TaskShape(t.id, t.upstream, t.action.model_dump(by_alias=True, exclude={"kind"}), t.params)
        for t in pipeline.tasks
    ]
    problems = graph_problems(pipeline.id, shapes, {name: p.default for name, p in pipeline.params.items()})
    if pipeline.start_date and pipeline.end_date and pipeline.end_date < pipeline.start_date:
        problems.append(
            Problem(f"end_date {pipeline.end_date} is before start_date {pipeline.start_date}", pipeline=pipeline.id)
        )
    slot_problem = slot_sla_problem(
        pipeline.sla,
        pipeline.schedule,
        "expected a cron or interval schedule, or sla.fresh_within for unscheduled and dataset-scheduled pipelines",
    )
    if slot_problem:
        problems.append(Problem(slot_problem, pipeline=pipeline.id))
    problems.extend(_dependency_problems(pipeline))
    problems.extend(_result_problems(pipeline))
    return problems


def _result_problems(pipeline: Pipeline) -> list[Problem]:
    """References to results that cannot exist, and ``map`` entries that cannot be expanded."""
    from meta.spec.checks import did_you_mean

    by_id = {t.id: t for t in pipeline.tasks}
    out: list[Problem] = []

    def problem(task: Task, message: str) -> None:
        out.append(Problem(message, pipeline=pipeline.id, task=task.id))

    for task in pipeline.tasks:
        for ref in task.result_references():
            if ref == task.id:
                problem(
                    task, f"uses its own result ({{{{ tasks.{ref}.result }}}}); a task can use upstream results only"
                )
            elif ref not in by_id:
                problem(
                    task,
                    f"uses the result of {ref!r}, which is not a task of this pipeline{did_you_mean(ref, list(by_id))}",
                )
            elif by_id[ref].kind not in RESULT_KINDS:
                problem(
                    task,
                    f"uses the result of {ref!r}, a {by_id[ref].kind} task, which has none; only "
                    f"{' and '.join(RESULT_KINDS)} tasks have results (a python task's return value, a shell task's "
                    "last line of output)",
                )
        if not task.map:
            continue
        if task.kind != "python":
            problem(
                task, f"map applies to python tasks (its names are kwargs of the callable); received a {task.kind} task"
            )
            continue
        kwargs = task.action.kwargs  # type: ignore[union-attr]
        if pipeline.settings_for(task).trigger_rule == TriggerRule.ALWAYS and any(
            (found := whole_reference(v)) is not None and found.kind == "result" for v in task.map.values()
        ):
            problem(
                task,
                "trigger_rule always on a task mapped over a result: it would start before the result exists "
                "(Airflow refuses it too); use all_done",
            )
        for name, source in task.map.items():
            where = f"map.{name}"
            if not name.isidentifier():
                problem(task, f"{where}: {name!r} is not a valid keyword argument name")
            if name in kwargs:
                problem(task, f"{where}: {name!r} is also in kwargs; a name is either fixed (kwargs) or mapped (map)")
            reference = whole_reference(source)
            if isinstance(source, list | tuple):
                # An element that is a whole reference would be the value itself here but text on Airflow (which
                # renders the list's strings as templates); references inside text are the same everywhere.
                inside = [ref.name for ref in map(whole_reference, source) if ref is not None and ref.kind == "result"]
                if inside:
                    problem(
                        task,
                        f"{where}: a literal list holds results ({', '.join(inside)}); map over a result itself "
                        f"('{{{{ tasks.{inside[0]}.result }}}}'), or have a task return the list",
                    )
                if len(source) > MAX_MAP_LENGTH:
                    problem(
                        task, f"{where} has {len(source)} elements; at most {MAX_MAP_LENGTH} (Airflow's max_map_length)"
                    )
            elif reference is None:
                problem(
                    task,
                    f"{where} must be a list, '{{{{ params.NAME }}}}' or '{{{{ tasks.ID.result }}}}'; "
                    f"received {source!r}",
                )
            elif reference.kind == "param":
                param = pipeline.params.get(reference.name)
                if param is None:
                    problem(
                        task,
                        f"{where} maps over params.{reference.name}, which the pipeline does not declare"
                        f"{did_you_mean(reference.name, list(pipeline.params))}",
                    )
                elif param.type is not None and "array" not in (
                    (param.type,) if isinstance(param.type, str) else param.type
                ):
                    problem(
                        task, f"{where} maps over params.{reference.name}, whose type is {param.type}; expected array"
                    )
    return out


def _dependency_problems(pipeline: Pipeline) -> list[Problem]:
    """``depends_on`` entries that cannot mean anything: on itself, mixed alignments, a schedule that contradicts the
    alignment (align same is started by its upstream: a schedule of its own would run it twice)."""
    deps = pipeline.depends_on
    if not deps:
        return []
    out = []
    for i, dep in enumerate(deps):
        if dep.pipeline == pipeline.id:
            out.append(Problem(f"depends_on[{i}]: a pipeline cannot depend on itself", pipeline=pipeline.id))
    aligns = sorted({d.align for d in deps})
    if len(aligns) > 1:
        out.append(
            Problem(
                "depends_on mixes align: same and align: latest; one pipeline's dependencies share one alignment "
                "(split the pipeline, or use the same alignment)",
                pipeline=pipeline.id,
            )
        )
    elif aligns == ["same"] and pipeline.schedule is not None:
        out.append(
            Problem(
                f"depends_on with align: same starts this pipeline once per upstream logical date, but it also has "
                f"a {pipeline.schedule.kind} schedule, which would run it a second time; remove 'schedule', or use "
                "align: latest to keep the schedule and wait for a recent upstream success in each slot",
                pipeline=pipeline.id,
            )
        )
    elif aligns == ["latest"] and not isinstance(pipeline.schedule, CronSchedule | IntervalSchedule):
        received = f"a {pipeline.schedule.kind} schedule" if pipeline.schedule else "no schedule"
        out.append(
            Problem(
                f"depends_on with align: latest waits in each schedule slot, but the pipeline has {received}; "
                "give it a cron or interval schedule, or use align: same",
                pipeline=pipeline.id,
            )
        )
    return out
