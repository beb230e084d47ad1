"""The authoring form (what people write in YAML or pass to the DSL) -> the model's input dict.

Authoring is friendlier than the model: tasks are a mapping keyed by id, an action is written as its kind
(``shell: "echo hi"``), schedules are strings (``"@daily"``, ``"every 15m"``), params have a shorthand
(``country: CH``). ``normalize`` translates that into ``Pipeline.model_validate`` input and reports what it cannot
translate as ``Issue``s located by their *authoring* path; the loader turns those paths into file:line:col.

A task whose action cannot be read is kept with a placeholder action so that the rest of the pipeline (upstream
references, cycles, other tasks) is still checked and every problem is reported at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meta.spec.checks import did_you_mean
from meta.spec.model import ACTION_KINDS, Param

Path = tuple[Any, ...]

PIPELINE_KEYS = (
    "pipeline",
    "description",
    "owner",
    "team",
    "tags",
    "schedule",
    "timezone",
    "start_date",
    "end_date",
    "catchup",
    "max_active_runs",
    "max_active_tasks",
    "params",
    "defaults",
    "sla",
    "alerts",
    "depends_on",
    "tasks",
)
TASK_FIELDS = (
    "upstream",
    "trigger_rule",
    "retries",
    "retry_delay",
    "retry_backoff",
    "max_retry_delay",
    "timeout",
    "pool",
    "max_active",
    "inputs",
    "outputs",
    "params",
    "description",
    "max_duration",
    "map",
)
TASK_KEYS = (*ACTION_KINDS, "with", "kwargs", *TASK_FIELDS)
DEFAULTS_KEYS = ("retries", "retry_delay", "retry_backoff", "max_retry_delay", "timeout", "pool", "trigger_rule")
SLA_KEYS = ("finish_by", "start_by", "max_duration", "fresh_within", "deadlines")
ALERT_KEYS = ("on_failure", "on_retry", "on_success", "on_sla_miss", "sla_escalation")
DEPENDENCY_KEYS = ("pipeline", "task", "backend", "align", "within", "timeout")
PARAM_KEYS = tuple(sorted({f.alias or name for name, f in Param.model_fields.items()}))
ACTION_FIELDS = {
    "shell": ("command", "env", "cwd"),
    "python": ("callable", "kwargs"),
    "branch": ("callable", "kwargs"),
    "sql": ("conn", "statement", "file", "split_statements", "parameters"),
    "airflow_operator": ("operator", "arguments"),
}
SCHEDULE_HELP = "a cron string like '0 1 * * *', a preset like '@daily', 'every 15m', null, or {datasets: [uri, ...]}"
ACTION_HELP = "exactly one of " + ", ".join(f"{k}:" for k in ACTION_KINDS)
_PLACEHOLDER = {"kind": "noop"}


# Names people bring from Airflow, Prefect or habit, and the key meta uses for the same thing.
FAMILIAR_NAMES = {
    "id": "pipeline",
    "name": "pipeline",
    "dag_id": "pipeline",
    "schedule_interval": "schedule",
    "default_args": "defaults",
    "depends_on": "upstream",
    "dependencies": "upstream",
    "deps": "upstream",
    "needs": "upstream",
    "execution_timeout": "timeout",
    "bash": "shell",
    "bash_command": "shell",
    "cmd": "shell",
    "python_callable": "python",
    "op_kwargs": "kwargs",
    "arguments": "with",
    "args": "kwargs",
    "query": "statement",
    "sql": "statement",
    "connection": "conn",
    "conn_id": "conn",
    "function": "callable",
    "fn": "callable",
}
_ALLOWED_SETS = {
    keys: frozenset(keys)
    for keys in (
        PIPELINE_KEYS,
        TASK_KEYS,
        DEFAULTS_KEYS,
        SLA_KEYS,
        ALERT_KEYS,
        DEPENDENCY_KEYS,
        PARAM_KEYS,
        *ACTION_FIELDS.values(),
    )
}


@dataclass(frozen=True)
class Issue:
    """A problem located by its authoring path from the pipeline's own mapping (``("tasks", "load", "op")``)."""

    path: Path
    message: str
    at_key: bool = False  # point at the key (unknown keys) rather than at the value

    @property
    def task(self) -> str | None:
        return str(self.path[1]) if len(self.path) >= 2 and self.path[0] == "tasks" else None


def infer_type(value: Any) -> str | None:
    """The JSON-schema type a shorthand param default implies (``country: CH`` -> string)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return None


def _ident(value: Any) -> Any:
    # A bare number as id (``pipeline: 2024``) is meant as text; anything else goes to pydantic as-is.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class _Normalizer:
    def __init__(self) -> None:
        self.issues: list[Issue] = []

    def issue(self, path: Path, message: str, at_key: bool = False) -> None:
        self.issues.append(Issue(tuple(path), message, at_key))

    def check_keys(self, mapping: dict[Any, Any], allowed: tuple[str, ...], path: Path, what: str) -> None:
        if mapping.keys() <= _ALLOWED_SETS.get(allowed, frozenset()):  # the common case: nothing to report
            return
        for key in mapping:
            if key not in allowed:
                alias = FAMILIAR_NAMES.get(str(key))
                hint = f"; write {alias!r} instead" if alias in allowed else did_you_mean(str(key), allowed)
                self.issue(
                    (*path, key),
                    f"unknown key {key!r} in {what}{hint}; expected one of: {', '.join(allowed)}",
                    at_key=True,
                )

    def mapping(self, value: Any, path: Path, what: str, example: str) -> dict[Any, Any] | None:
        if isinstance(value, dict):
            return value
        self.issue(path, f"{what} must be a mapping, e.g. {example}; received {type(value).__name__} {value!r}")
        return None

    # -- pipeline ---------------------------------------------------------------------------------

    def pipeline(self, doc: Any) -> dict[str, Any]:
        if not isinstance(doc, dict):
            self.issue((), f"expected a pipeline mapping with 'pipeline:' and 'tasks:'; received {type(doc).__name__}")
            return {}
        self.check_keys(doc, PIPELINE_KEYS, (), "a pipeline")
        out: dict[str, Any] = {}
        if "pipeline" in doc:
            out["id"] = _ident(doc["pipeline"])
        else:
            self.issue((), "missing 'pipeline:' (the pipeline id), e.g. pipeline: marketing_roi")
        for key in ("description", "owner", "team", "timezone", "start_date", "end_date", "catchup"):
            if key in doc:
                out[key] = doc[key]
        for key in ("max_active_runs", "max_active_tasks", "defaults", "sla", "alerts"):
            if key in doc and doc[key] is not None:
                out[key] = doc[key]
        for key, allowed, what in (
            ("defaults", DEFAULTS_KEYS, "defaults"),
            ("sla", SLA_KEYS, "sla"),
            ("alerts", ALERT_KEYS, "alerts"),
        ):
            if isinstance(doc.get(key), dict):
                self.check_keys(doc[key], allowed, (key,), what)
                out[key] = {k: v for k, v in doc[key].items() if k in allowed}
        if doc.get("depends_on") is not None:
            out["depends_on"] = self.depends_on(doc["depends_on"])
        if "tags" in doc:
            tags = doc["tags"]
            out["tags"] = [tags] if isinstance(tags, str) else ([] if tags is None else tags)
        if "schedule" in doc:
            schedule = self.schedule(doc["schedule"])
            if schedule is not None:
                out["schedule"] = schedule
        if doc.get("params") is not None:
            out["params"] = self.params(doc["params"], ("params",))
        if "tasks" not in doc:
            self.issue((), "missing 'tasks:' (a mapping of task id -> task), e.g. tasks: {hello: {shell: 'echo hi'}}")
        else:
            out["tasks"] = self.tasks(doc["tasks"])
        return out

    def schedule(self, value: Any) -> dict[str, Any] | None:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
            return None
        if isinstance(value, str):
            text = value.strip()
            if text.lower().startswith("every "):
                return {"kind": "interval", "every": text[6:].strip()}
            return {"kind": "cron", "cron": text}
        if isinstance(value, dict):
            self.check_keys(value, ("cron", "every", "datasets", "mode"), ("schedule",), "schedule")
            kinds = [k for k in ("cron", "every", "datasets") if k in value]
            if len(kinds) != 1:
                self.issue(("schedule",), f"a schedule mapping needs exactly one of cron, every, datasets; got {kinds}")
                return None
            kind = kinds[0]
            if kind == "datasets":
                out = {"kind": "datasets", "datasets": value["datasets"]}
                if "mode" in value:
                    out["mode"] = value["mode"]
                return out
            if "mode" in value:
                self.issue(("schedule", "mode"), "'mode' only applies to dataset schedules", at_key=True)
            return {"kind": "interval" if kind == "every" else "cron", kind: value[kind]}
        self.issue(("schedule",), f"expected {SCHEDULE_HELP}; received {type(value).__name__} {value!r}")
        return None

    def depends_on(self, value: Any) -> list[Any]:
        """A list of upstreams: each a pipeline id (``- marketing_roi``) or a mapping (``{pipeline: x, task: y}``;
        ids may hold dots, so a task is never read out of a plain string)."""
        items = [value] if isinstance(value, str | dict) else value
        if not isinstance(items, list):
            self.issue(("depends_on",), f"expected a list of pipeline ids or mappings; received {type(value).__name__}")
            return []
        out: list[Any] = []
        for i, item in enumerate(items):
            if isinstance(item, str):
                out.append({"pipeline": item})
            elif isinstance(item, dict):
                self.check_keys(item, DEPENDENCY_KEYS, ("depends_on", i), "a dependency")
                out.append({k: v for k, v in item.items() if k in DEPENDENCY_KEYS})
            else:
                self.issue(
                    ("depends_on", i),
                    f"expected a pipeline id or a mapping like {{pipeline: marketing_roi, timeout: 6h}}; "
                    f"received {type(item).__name__} {item!r}",
                )
        return out

    def params(self, value: Any, path: Path) -> dict[str, Any]:
        mapping = self.mapping(value, path, "params", "{country: {type: string, default: CH}} or {country: CH}")
        out: dict[str, Any] = {}
        for name, spec in (mapping or {}).items():
            if isinstance(spec, dict):
                self.check_keys(spec, PARAM_KEYS, (*path, name), f"param {name!r}")
                out[str(name)] = {k: v for k, v in spec.items() if k in PARAM_KEYS}
            else:  # shorthand: the value is the default, its type is inferred
                inferred = infer_type(spec)
                out[str(name)] = {"default": spec} if inferred is None else {"type": inferred, "default": spec}
        return out

    # -- tasks ------------------------------------------------------------------------------------

    def tasks(self, value: Any) -> list[dict[str, Any]]:
        if isinstance(value, list):
            self.issue(
                ("tasks",),
                "tasks must be a mapping of task id -> task, e.g. tasks: {extract: {shell: 'echo hi'}}; "
                "received a list",
            )
            return []
        mapping = self.mapping(value, ("tasks",), "tasks", "tasks: {extract: {shell: 'echo hi'}}")
        return [self.task(str(tid), fields) for tid, fields in (mapping or {}).items()]

    def task(self, tid: str, fields: Any) -> dict[str, Any]:
        path: Path = ("tasks", tid)
        out: dict[str, Any] = {"id": tid}
        if fields is None:
            fields = {}
        if not isinstance(fields, dict):
            self.issue(
                path, f"a task must be a mapping with {ACTION_HELP}; received {type(fields).__name__} {fields!r}"
            )
            return {**out, "action": _PLACEHOLDER}
        self.check_keys(fields, TASK_KEYS, path, f"task {tid!r}")
        kinds = [k for k in ACTION_KINDS if k in fields]
        if not kinds:
            self.issue(path, f"task has no action; expected {ACTION_HELP}", at_key=True)
            out["action"] = _PLACEHOLDER
        elif len(kinds) > 1:
            self.issue(
                (*path, kinds[1]),
                f"task has {len(kinds)} actions ({', '.join(kinds)}); expected {ACTION_HELP}",
                at_key=True,
            )
            out["action"] = _PLACEHOLDER
        else:
            out["action"] = self.action(kinds[0], fields, path)
        for key in TASK_FIELDS:
            if key in fields:
                out[key] = fields[key]
        upstream = fields.get("upstream")
        if upstream is None:
            out.pop("upstream", None)
        elif isinstance(upstream, str | int):
            out["upstream"] = [str(upstream)]
        elif isinstance(upstream, list):
            out["upstream"] = [_ident(u) for u in upstream]
        else:
            self.issue((*path, "upstream"), f"upstream must be a task id or a list of task ids; received {upstream!r}")
            out.pop("upstream", None)
        for key in ("params", "inputs", "outputs"):
            if key in out and out[key] is None:
                del out[key]
        return out

    def action(self, kind: str, fields: dict[str, Any], path: Path) -> dict[str, Any]:
        value = fields[kind]
        if "with" in fields and kind != "op":
            hint = " (python and branch tasks take kwargs:)" if kind in ("python", "branch") else ""
            self.issue((*path, "with"), f"'with' only applies to op tasks{hint}", at_key=True)
        if "kwargs" in fields and kind not in ("python", "branch"):
            self.issue((*path, "kwargs"), "'kwargs' only applies to python and branch tasks", at_key=True)
        if kind == "noop":
            if value not in (None, True, {}):
                self.issue((*path, "noop"), f"write 'noop: true' or 'noop: {{}}'; received {value!r}")
            return {"kind": "noop"}
        if kind == "op":
            if not isinstance(value, str):
                self.issue(
                    (*path, "op"), f"op must name a registered op type, e.g. op: warehouse_load; received {value!r}"
                )
                return _PLACEHOLDER
            with_ = fields.get("with")
            return {"kind": "op", "op": value, "with": {} if with_ is None else with_}
        allowed = ACTION_FIELDS[kind]
        primary = allowed[0]
        if isinstance(value, dict):
            self.check_keys(value, allowed, (*path, kind), f"{kind}")
            out = {"kind": kind, **{k: v for k, v in value.items() if k in allowed}}
            if "kwargs" in fields:
                if "kwargs" in value:
                    self.issue((*path, "kwargs"), f"kwargs given twice: next to {kind}: and inside it", at_key=True)
                else:
                    out["kwargs"] = fields["kwargs"]
            if primary not in value:
                self.issue((*path, kind), f"{kind} needs '{primary}'; expected keys: {', '.join(allowed)}")
                return _PLACEHOLDER
            return out
        if kind == "sql":
            self.issue(
                (*path, kind), f"sql needs a mapping {{conn: <connection>, statement: <sql>}}; received {value!r}"
            )
            return _PLACEHOLDER
        if not isinstance(value, str):
            self.issue(
                (*path, kind), f"{kind} needs a string or a mapping with {', '.join(allowed)}; received {value!r}"
            )
            return _PLACEHOLDER
        out = {"kind": kind, primary: value}
        if kind in ("python", "branch") and fields.get("kwargs") is not None:
            out["kwargs"] = fields["kwargs"]
        return out


def normalize(doc: Any) -> tuple[dict[str, Any], list[Issue]]:
    """Translate one authoring mapping into ``Pipeline.model_validate`` input, plus what could not be translated."""
    n = _Normalizer()
    model = n.pipeline(doc)
    return model, n.issues


def authoring_path(loc: tuple[Any, ...], model: dict[str, Any], doc: Any) -> Path:
    """Map a pydantic error location (model terms) back to the authoring path of the value it is about."""
    if not loc:
        return ()
    head, rest = loc[0], loc[1:]
    if head == "id":
        return ("pipeline", *rest)
    if head == "schedule":  # drop the union tag (cron / interval / datasets); a string schedule is one value
        return ("schedule", *rest[1:]) if isinstance(doc, dict) and isinstance(doc.get("schedule"), dict) else (head,)
    if head == "tasks" and rest and isinstance(rest[0], int):
        tasks = model.get("tasks") or []
        if rest[0] >= len(tasks):
            return ("tasks",)
        tid = tasks[rest[0]]["id"]
        sub = rest[1:]
        if sub[:1] != ("action",):
            return ("tasks", tid, *sub)
        kind, field = (sub[1] if len(sub) > 1 else None), sub[2:]
        raw = (doc.get("tasks") or {}).get(tid) if isinstance(doc, dict) else None
        raw = raw if isinstance(raw, dict) else {}
        if field and field[0] in ("kwargs", "with") and field[0] in raw:
            return ("tasks", tid, *field)
        if (field and field[0] == "op") or (kind and not isinstance(raw.get(kind), dict)):
            return ("tasks", tid, kind or "op")
        return ("tasks", tid, kind, *field) if kind else ("tasks", tid)
    return (head, *rest)
