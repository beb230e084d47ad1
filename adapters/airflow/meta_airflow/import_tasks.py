"""Airflow operators -> neutral tasks: the task half of the importer (see importer.py for DAGs and files).

BashOperator -> shell, PythonOperator/@task -> python, BranchPythonOperator/@task.branch -> branch, EmptyOperator ->
noop, SQLExecuteQueryOperator -> sql, meta's own runtime wrappers -> their original python/branch/op tasks, anything
else -> an ``airflow_operator`` passthrough (class path + plain-data arguments, see typed_args.py).

Results: an XComArg argument (``transform(extract())``, ``op.output``) becomes ``"{{ tasks.extract.result }}"``, and
a plain ``ti.xcom_pull(task_ids='x')`` in templated text becomes ``tasks.x.result``; other XCom constructs (keys,
``.map()``/``.zip()``/``.concat()``) are refused or noted. Dynamic mapping: ``f.partial(...).expand(...)`` of a python
task becomes a python task with ``kwargs`` (the partial ones) and ``map`` (the expanded ones); other mappings are
refused with the reason.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import re
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from meta import CALLABLE_PATTERN, RESULT_KINDS, MetaError, referenced_results, result_expression, whole_reference
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
# Operator settings meta has no field for: importing a non-default value is noted, never silently dropped.
UNMAPPED_TASK_FIELDS: dict[str, Any] = {
    "depends_on_past": False,
    "wait_for_downstream": False,
    "email": None,
    "priority_weight": 1,
    "pool_slots": 1,
    "queue": "default",
    "executor_config": None,
    "sla": None,
    "max_active_tis_per_dagrun": None,
    "map_index_template": None,
}
NEUTRAL = {
    "airflow.providers.standard.operators.bash.BashOperator": "shell",
    "airflow.providers.standard.operators.python.PythonOperator": "python",
    "airflow.providers.standard.decorators.python._PythonDecoratedOperator": "python",
    "airflow.providers.standard.operators.python.BranchPythonOperator": "branch",
    "airflow.providers.standard.decorators.branch_python._BranchPythonDecoratedOperator": "branch",
    "airflow.providers.standard.operators.empty.EmptyOperator": "noop",
    "airflow.providers.common.sql.operators.sql.SQLExecuteQueryOperator": "sql",
    # meta's own subclasses (compiled from shell/sql tasks): the same arguments
    "meta_airflow.operators.MetaBashOperator": "shell",
    "meta_airflow.operators.MetaSQLExecuteQueryOperator": "sql",
}


class ImportRefused(MetaError, ValueError):
    """A DAG whose structure has no neutral form: the reason, the task at fault (to locate it in the DAG file), what
    the DAG has (``received``) and what meta would need instead (``expected``)."""

    def __init__(
        self, reason: str, *, task: str | None = None, received: str | None = None, expected: str | None = None
    ) -> None:
        super().__init__(reason)
        self.task, self.received, self.expected = task, received, expected


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
    dags folder on sys.path). None when the function is not importable by name (a lambda, a nested function).

    A ``@task`` function's module-level name is the TaskFlow decorator, not the function (calling it outside a DAG
    makes an XComArg): its code is the decorator's ``.function``, so the reference ends in ``.function``."""
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname:
        return None
    ref = f"{module_names.get(module, module)}:{qualname}"
    if not re.match(CALLABLE_PATTERN, ref):
        return None
    named: Any = sys.modules.get(module)
    if named is None:
        return ref
    for part in qualname.split("."):
        named = getattr(named, part, None)
    if named is func:
        return ref
    if getattr(named, "function", None) is func:
        return ref + ".function"
    return None  # the name is another object now (a later definition in the module replaced it)


def seconds(value: Any) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=float(value))


# -------------------------------------------------------------------------------------------- results

XCOM_RETURN_KEY = "return_value"


def reference(arg: Any, tid: str, where: str) -> str:
    """``"{{ tasks.X.result }}"`` for an XComArg naming task X's return value; ImportRefused for any other XComArg
    (a key, ``.map()``/``.zip()``/``.concat()``), naming the construct and what to write instead."""
    from airflow.sdk.definitions.xcom_arg import PlainXComArg

    if isinstance(arg, PlainXComArg):
        source = arg.operator.task_id
        if arg.key == XCOM_RETURN_KEY:
            return "{{ " + result_expression(source) + " }}"
        raise ImportRefused(
            f"task {tid}: {where} takes the XCom {arg.key!r} of task {source} (multiple_outputs or a pushed key); "
            "meta passes a task's whole result only",
            task=tid,
            received=f"{where}={source}[{arg.key!r}]",
            expected=f"the whole result of {source} ({{{{ tasks.{source}.result }}}}), the key read inside the task",
        )
    construct = type(arg).__name__.replace("XComArg", "").lower() or "xcom"
    raise ImportRefused(
        f"task {tid}: {where} is an XComArg .{construct}() ({arg!r:.100}); meta has no form for transforming a result "
        "between tasks",
        task=tid,
        received=f"{where}=<XComArg .{construct}()>",
        expected="a plain result reference ({{ tasks.ID.result }}); do the transformation in the consuming task",
    )


def with_references(value: Any, tid: str, where: str) -> Any:
    """``value`` with every XComArg (nested in dicts, lists, tuples) replaced by its result reference."""
    from airflow.sdk.definitions._internal.expandinput import MappedArgument
    from airflow.sdk.definitions.xcom_arg import XComArg

    if isinstance(value, XComArg):
        return reference(value, tid, where)
    if isinstance(value, MappedArgument):
        raise mapped_group_refusal(tid)
    if isinstance(value, dict):
        return {
            k: with_references(v, tid, f"argument {k}" if where == "argument" else f"{where}.{k}")
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [with_references(v, tid, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def has_xcom(value: Any) -> bool:
    from airflow.sdk.definitions.xcom_arg import XComArg

    if isinstance(value, XComArg):
        return True
    if isinstance(value, dict):
        return any(has_xcom(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_xcom(v) for v in value)
    return False


def mapped_group_refusal(tid: str) -> ImportRefused:
    return ImportRefused(
        f"task {tid}: the task belongs to a mapped task group (@task_group ... .expand()); meta maps single python "
        "tasks, not groups",
        task=tid,
        received=f"task {tid} inside an expanded task group",
        expected="each task of the group mapped on its own (f.expand(x=...) over the previous task's result), or "
        "one python task doing the group's work, mapped over the values",
    )


_PULL = re.compile(r"\b(?:ti|task_instance)\s*\.\s*xcom_pull\s*\(")
_BLOCK = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)  # Jinja expressions and statements


def _call_end(text: str, start: int) -> int | None:
    """Index just past the ``)`` closing the call whose ``(`` is at ``start - 1``; None when unbalanced."""
    depth, quote = 1, ""
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


@dataclass(frozen=True)
class DagTasks:
    """What turning XCom pulls into result references needs to know of the DAG's tasks."""

    dag_id: str
    kinds: dict[str, str]  # task id -> meta kind
    mapped: frozenset[str]

    def has_result(self, task_id: str) -> bool:
        return self.kinds.get(task_id) in RESULT_KINDS


def plain_pull(call: str, dag_id: str) -> tuple[str | None, bool, str]:
    """(the task id, whether task_ids was a one-id list, "") when ``call`` (``ti.xcom_pull(...)``) pulls one task's
    return value of this DAG run; (None, False, why not) otherwise."""
    try:
        node = ast.parse(call.strip(), mode="eval").body
    except SyntaxError:
        return None, False, "not a Python call"
    if not isinstance(node, ast.Call) or len(node.args) > 4 or any(k.arg is None for k in node.keywords):
        return None, False, "unexpected arguments"
    given: dict[str, ast.expr] = dict(
        zip(("task_ids", "dag_id", "key", "include_prior_dates"), node.args, strict=False)
    )
    given.update({str(k.arg): k.value for k in node.keywords})
    values: dict[str, Any] = {}
    for name, expr in given.items():
        try:
            values[name] = ast.literal_eval(expr)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            return None, False, f"{name} is an expression"
    if values.get("include_prior_dates") is False:
        del values["include_prior_dates"]  # the default, written out
    unknown = sorted(set(values) - {"task_ids", "dag_id", "key"})
    if unknown:
        return None, False, f"it sets {', '.join(unknown)}"
    task_ids = values.get("task_ids")
    listed = isinstance(task_ids, list) and len(task_ids) == 1
    if listed:
        task_ids = task_ids[0]  # type: ignore[index]
    if not isinstance(task_ids, str):
        return None, False, "task_ids is not one task id"
    if values.get("dag_id", dag_id) != dag_id:
        return None, False, f"it pulls from another DAG ({values['dag_id']!r})"
    if values.get("key", XCOM_RETURN_KEY) != XCOM_RETURN_KEY:
        return None, False, f"it pulls the key {values['key']!r}, not the return value"
    return task_ids, listed, ""


# meta's own form for a mapped task's result (plan.result_jinja): the instances' results in map-index order.
_MAPPED_LIST = re.compile(r"\s*\|\s*reject\(\s*['\"]none['\"]\s*\)\s*\|\s*list\s*\)")


def pulls_to_references(text: str, dag: DagTasks) -> tuple[str, list[str], list[str]]:
    """``text`` with each plain ``ti.xcom_pull(task_ids='x')`` inside ``{{ }}`` or ``{% %}`` replaced by
    ``tasks.x.result``; why each other pull was kept as it is; and notes on the pulls that changed meaning slightly."""
    kept: list[str] = []
    changed: list[str] = []

    def block(match: re.Match[str]) -> str:
        part = match.group(0)
        out, pos = [], 0
        for pull in _PULL.finditer(part):
            if pull.start() < pos:
                continue
            end = _call_end(part, pull.end())
            if end is None:
                continue
            start, call = pull.start(), part[pull.start() : end]
            task_id, listed, why = plain_pull(call, dag.dag_id)
            if task_id is not None and not dag.has_result(task_id):
                why = f"{task_id!r} is not a python or shell task of this DAG (only those have a result in meta)"
                task_id = None
            if task_id is not None and listed:
                wrapped = _MAPPED_LIST.match(part, end)
                opening = part.rfind("(", pos, start)
                if task_id in dag.mapped and wrapped and opening >= 0 and not part[opening + 1 : start].strip():
                    start, end = opening, wrapped.end()  # (ti.xcom_pull(task_ids=['x']) | reject('none') | list)
                else:
                    task_id, why = None, "task_ids is a list: the pull gives a list of values"
            if task_id is None:
                kept.append(f"{' '.join(call.split())} ({why})")
                continue
            if task_id in dag.mapped and not listed:
                changed.append(
                    f"ti.xcom_pull(task_ids={task_id!r}) of the mapped task {task_id} becomes tasks.{task_id}.result, "
                    "always the list of its instances' results (Airflow gives a bare value when one instance pushed)"
                )
            out += [part[pos:start], result_expression(task_id)]
            pos = end
        return "".join(out) + part[pos:]

    return _BLOCK.sub(block, text), kept, changed


def text_references(value: Any, whole_as_text: bool, dag: DagTasks) -> tuple[Any, list[str], list[str]]:
    """``pulls_to_references`` over every string of ``value``. Airflow renders a template to text, whereas a string
    that is exactly one meta reference stands for the value itself: with ``whole_as_text`` such a string gets
    ``| string``, so the task still receives text."""
    if isinstance(value, str):
        if "xcom_pull" not in value:
            return value, [], []
        text, kept, changed = pulls_to_references(value, dag)
        whole = whole_reference(text) if whole_as_text and text != value else None
        if whole is not None:
            text = "{{ " + result_expression(whole.name) + " | string }}"
        return text, kept, changed
    kept, changed = [], []
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out[k], more, other = text_references(v, whole_as_text, dag)
            kept, changed = kept + more, changed + other
        return out, kept, changed
    if isinstance(value, list | tuple):
        items = []
        for v in value:
            item, more, other = text_references(v, whole_as_text, dag)
            items.append(item)
            kept, changed = kept + more, changed + other
        return items, kept, changed
    return value, kept, changed


# Action fields that may hold templates with XCom pulls: field -> whether a whole-string template is text there.
TEMPLATED_FIELDS = {
    "shell": {"command": False, "env": True, "cwd": False},
    "sql": {"statement": False, "parameters": True},
    "python": {"kwargs": True},
    "branch": {"kwargs": True},
    "op": {"with": True},
}


def link_results(tasks: list[dict[str, Any]], dag: Any, notes: list[str]) -> None:
    """After every task is mapped: turn plain XCom pulls in templated text into result references, note the pulls
    kept as they are, and refuse references to tasks that have no result in meta."""
    known = DagTasks(
        dag.dag_id,
        {t["id"]: t["action"]["kind"] for t in tasks},
        frozenset(t["id"] for t in tasks if t.get("map")),
    )
    for task in tasks:
        tid, action = task["id"], task["action"]
        fields = TEMPLATED_FIELDS.get(action["kind"], {})
        for name, whole_as_text in fields.items():
            if name not in action:
                continue
            before = referenced_results(action[name])
            action[name], kept, changed = text_references(action[name], whole_as_text, known)
            for pull in kept:
                notes.append(
                    f"task {tid}: {name}: {pull} is kept as it is; it renders under Airflow only (meta passes "
                    "a task's return value as {{ tasks.ID.result }})"
                )
            notes.extend(f"task {tid}: {name}: {text}" for text in dict.fromkeys(changed))
            upstream = set(task.get("upstream", ()))
            for ref in referenced_results(action[name]):
                if ref not in before and ref not in upstream and ref in known.kinds:
                    notes.append(
                        f"task {tid}: {name} pulls the result of {ref}, which it did not depend on; meta adds the "
                        "dependency (a reference implies it)"
                    )
        sources = [action.get(k) for k in fields] + list(task.get("map", {}).values())
        for ref in referenced_results(sources):
            if ref in known.kinds and not known.has_result(ref):
                raise ImportRefused(
                    f"task {tid}: takes the result of {ref}, which becomes a {known.kinds[ref]} task; only python and "
                    "shell tasks have a result in meta",
                    task=tid,
                    received=f"{tid} <- result of {ref} ({known.kinds[ref]})",
                    expected="results of python (@task, PythonOperator) or shell (BashOperator) tasks",
                )


def xcom_in_callable(func: Any) -> bool:
    """Whether the function's source pulls or pushes XComs itself (``ti.xcom_pull``, ``ti.xcom_push``)."""
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return False
    return "xcom_pull" in source or "xcom_push" in source


def keyword_args(func: Any, op_args: Any, op_kwargs: dict[str, Any], tid: str) -> dict[str, Any]:
    """Positional ``op_args`` as keyword arguments, named by the callable's parameters (``f(a, b)`` calls the same
    function as ``f(x=a, y=b)``); ImportRefused when a position has no name (``*args``, positional-only)."""
    args = list(op_args or ())
    if not args:
        return op_kwargs
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    out: dict[str, Any] = {}
    for i, value in enumerate(args):
        if i >= len(parameters) or parameters[i].kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
            raise ImportRefused(
                f"task {tid}: positional argument {i} ({value!r:.80}) has no parameter name to pass it by "
                "(*args or a positional-only parameter)",
                task=tid,
                received=f"op_args={args!r}"[:200],
                expected="arguments the callable accepts by name (meta calls it with keyword arguments)",
            )
        out[parameters[i].name] = value
    clash = sorted(set(out) & set(op_kwargs))
    if clash:
        raise ImportRefused(
            f"task {tid}: {clash} given both by position and by name",
            task=tid,
            received=f"op_args={args!r}, op_kwargs keys {sorted(op_kwargs)}"[:200],
            expected="each argument once",
        )
    return {**out, **op_kwargs}


# -------------------------------------------------------------------------------------------- tasks


def _init_kwargs(op: Any) -> dict[str, Any]:
    return dict(getattr(op, "_BaseOperator__init_kwargs", {}) or {})


def action_of(op: Any, dag: Any, module_names: dict[str, str], notes: list[str]) -> dict[str, Any]:
    path = class_path(op)
    kind = NEUTRAL.get(path)
    tid = op.task_id
    if (
        kind == "shell"
        and tuple(op.skip_on_exit_code or ()) == (99,)
        and isinstance(command := with_references(op.bash_command, tid, "bash_command"), str)
    ):
        if command.endswith(" ") and command.rstrip().endswith((".sh", ".bash")):
            command = command[:-1]  # meta adds this space when compiling (BashOperator's template-file rule)
        action: dict[str, Any] = {"kind": "shell", "command": command}
        env = {k: v for k, v in (op.env or {}).items() if k not in META_ENV_KEYS and not k.startswith("META_PARAM_")}
        if env:
            action["env"] = with_references(env, tid, "env")
        if op.env is not None and not op.append_env and not _is_meta_env(op.env):
            notes.append(f"task {tid}: env without append_env replaces the whole environment; meta appends")
        if op.cwd:
            action["cwd"] = op.cwd
        given = _init_kwargs(op)
        if given.get("multiple_outputs"):
            notes.append(
                f"task {tid}: multiple_outputs=True: meta keeps a shell task's result whole; the per-key XComs are "
                "not carried over"
            )
        if "output_processor" in given:
            notes.append(
                f"task {tid}: output_processor is not carried over: meta's result of a shell task is its last line "
                "of output, as text"
            )
        return action
    if kind in ("python", "branch"):
        func = op.python_callable
        op_kwargs = dict(op.op_kwargs or {})
        runtime_name = f"{getattr(func, '__module__', '')}:{getattr(func, '__qualname__', '')}"
        if runtime_name == f"{RUNTIME}:call_python" or runtime_name == f"{RUNTIME}:call_branch":
            kwargs = with_references(op_kwargs.get("kwargs", {}), tid, "kwargs")
            return {"kind": kind, "callable": op_kwargs["target"], "kwargs": kwargs}
        if runtime_name == f"{RUNTIME}:run_op":
            return {
                "kind": "op",
                "op": op_kwargs["op"],
                "with": with_references(op_kwargs.get("with_args", {}), tid, "with"),
            }
        ref = python_callable_ref(func, tid, module_names)
        kwargs = with_references(keyword_args(func, op.op_args, op_kwargs, tid), tid, "argument")
        plain_kwargs(kwargs, tid)
        python_notes(op, func, notes)
        return {"kind": kind, "callable": ref, "kwargs": kwargs}
    if kind == "noop":
        return {"kind": "noop"}
    if kind == "sql" and not has_xcom(op.sql):
        sql = op.sql
        statement = sql if isinstance(sql, str) else ";\n".join(sql)
        action = {"kind": "sql", "conn": op.conn_id, "statement": statement}
        if op.parameters:
            parameters = with_references(op.parameters, tid, "parameters")
            if not isinstance(parameters, dict) or not jsonable(parameters):
                raise ImportRefused(
                    f"task {tid}: SQL parameters {op.parameters!r} are not a JSON mapping",
                    task=tid,
                    received=f"parameters={op.parameters!r}"[:200],
                    expected="a mapping of names to JSON values",
                )
            action["parameters"] = parameters
        return action
    return passthrough(op, notes, module_names, dag)


def python_callable_ref(func: Any, tid: str, module_names: dict[str, str]) -> str:
    ref = callable_ref(func, module_names)
    if ref is None:
        name = getattr(func, "__qualname__", func)
        raise ImportRefused(
            f"task {tid}: its callable {name!r} is not importable by name ({not_importable_why(func)})",
            task=tid,
            received=f"python_callable {name}",
            expected="a function defined at module level (meta references callables as module:function)",
        )
    return ref


def not_importable_why(func: Any) -> str:
    qualname = str(getattr(func, "__qualname__", ""))
    if "<lambda>" in qualname:
        return "a lambda; define it with def at module level"
    if "<locals>" in qualname:
        return "a function nested in another (e.g. TaskFlow inside @dag); move it to module level"
    return (
        f"the module-level name {qualname} is another object by now (a later definition, e.g. in a loop, replaced "
        "it); give each function its own module-level name"
    )


def plain_kwargs(kwargs: dict[str, Any], tid: str, what: str = "arguments") -> None:
    if not jsonable(kwargs):
        raise ImportRefused(
            f"task {tid}: {what} hold values that are not plain data (objects, callables)",
            task=tid,
            received=f"{what} " + ", ".join(f"{k}={v!r}"[:100] for k, v in kwargs.items() if not jsonable(v)),
            expected="JSON data (strings, numbers, booleans, lists, mappings) or results of other tasks (XComArgs)",
        )


def python_notes(op: Any, func: Any, notes: list[str]) -> None:
    """What a python task's XComs do in Airflow that its meta result does not."""
    tid = op.task_id
    if getattr(op, "multiple_outputs", False):
        notes.append(
            f"task {tid}: multiple_outputs=True: meta keeps the returned mapping as one result; the per-key XComs "
            "are not carried over"
        )
    if xcom_in_callable(func):
        notes.append(
            f"task {tid}: its callable pulls or pushes XComs itself (ti.xcom_pull/xcom_push); that works under "
            "Airflow only (meta passes return values, as {{ tasks.ID.result }} arguments)"
        )


def _is_meta_env(env: dict[str, Any]) -> bool:
    return "META_RUN_ID" in env


def passthrough(op: Any, notes: list[str], module_names: dict[str, str], dag: Any) -> dict[str, Any]:
    cls = type(op)
    path = f"{module_names.get(cls.__module__, cls.__module__)}.{cls.__qualname__}"
    if "<locals>" in path:
        raise ImportRefused(
            f"task {op.task_id}: operator class {path} is defined inside a function",
            task=op.task_id,
            received=f"class {path}",
            expected="an operator class defined at module level (importable by its path)",
        )
    arguments: dict[str, Any] = {}
    dropped: dict[str, str] = {}
    results: dict[str, str] = {}
    inherited = dict(dag.default_args or {})
    for key, value in sorted(_init_kwargs(op).items()):
        if key in BASE_ARGS or (key in inherited and inherited[key] == value):  # default_args are not its own
            continue
        if has_xcom(value):
            results[key] = f"{value!r:.100}"
            continue
        try:
            arguments[key] = encode(value)
        except NotPlain:
            dropped[key] = type(value).__name__
    if results:
        raise ImportRefused(
            f"task {op.task_id}: {path} arguments {list(results)} take results of other tasks (XComArgs); an "
            "airflow_operator passthrough holds plain data only, and only python, shell and sql tasks take results",
            task=op.task_id,
            received=", ".join(f"{k}={v}" for k, v in results.items()),
            expected="a python task (@task) that takes the result as an argument, or plain-data arguments",
        )
    if dropped:
        # Leaving an argument out would compile to a different (or broken) operator: refuse instead.
        raise ImportRefused(
            f"task {op.task_id}: {path} arguments {list(dropped)} are not plain data (callables, objects); an "
            "airflow_operator passthrough keeps JSON-like arguments plus timedelta/datetime/date/time",
            task=op.task_id,
            received=", ".join(f"{k}: {t}" for k, t in dropped.items()),
            expected="JSON-like values, timedelta, datetime, date or time",
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
    if op.get_closest_mapped_task_group() is not None:
        raise mapped_group_refusal(op.task_id)
    task: dict[str, Any] = {"id": op.task_id}
    if getattr(op, "is_mapped", False) or class_path(op).endswith("MappedOperator"):
        task["action"], task["map"] = mapped_action(op, module_names, notes)
    else:
        task["action"] = action_of(op, dag, module_names, notes)
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
    for cb in (
        "on_failure_callback",
        "on_retry_callback",
        "on_success_callback",
        "on_execute_callback",
        "on_skipped_callback",
    ):
        if getattr(op, cb, None) and cb not in (dag.default_args or {}):
            notes.append(f"task {op.task_id}: {cb} is not carried over (meta alerts are pipeline-level)")
    for attr, default in UNMAPPED_TASK_FIELDS.items():
        value = getattr(op, attr, default)
        if value not in (default, None) and value != {}:
            notes.append(f"task {op.task_id}: {attr}={value!r} has no neutral form and is not carried over")
    return task


# -------------------------------------------------------------------------------------------- dynamic mapping


def mapped_action(op: Any, module_names: dict[str, str], notes: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(python action, ``map``) for ``f.partial(**kwargs).expand(**map)`` of a @task or a PythonOperator; ImportRefused
    for every other mapping (``expand_kwargs``, a non-python operator, a ``.map()``-ed result, ...)."""
    tid = op.task_id
    cls = op.operator_class
    path = f"{cls.__module__}.{cls.__qualname__}"
    kind = NEUTRAL.get(path)
    expand_input = op.op_kwargs_expand_input if hasattr(op, "op_kwargs_expand_input") else op.expand_input
    names = list(expand_input.value) if isinstance(expand_input.value, dict) else []
    if kind != "python":
        what = cls.__name__ + (" (a branch)" if kind == "branch" else "")
        raise ImportRefused(
            f"task {tid}: dynamic mapping of {what} has no neutral form: meta maps python tasks only (map names "
            "keyword arguments of a callable)",
            task=tid,
            received=f"{cls.__name__}.partial(...).expand({', '.join(f'{n}=...' for n in names) or '...'})",
            expected="a python task (@task or PythonOperator) mapped over keyword arguments, or one task per value "
            "written out in the DAG file",
        )
    if type(expand_input).__name__ == "ListOfDictsExpandInput":
        raise ImportRefused(
            f"task {tid}: expand_kwargs (one whole set of arguments per instance) has no neutral form: meta maps each "
            "argument name over a list of its own (the cross product of several names)",
            task=tid,
            received=f"{tid}.expand_kwargs({expand_input.value!r:.120})",
            expected="f.partial(fixed=...).expand(name=[...]) over each varying argument",
        )
    partial = dict(op.partial_kwargs)
    if hasattr(op, "op_kwargs_expand_input"):  # @task: f.partial(**kwargs).expand(**map)
        func = op.python_callable
        target = meta_mapped_target(func)
        fixed = keyword_args(func, partial.get("op_args"), dict(partial.get("op_kwargs") or {}), tid)
        mapped = dict(expand_input.value)
    else:  # PythonOperator.partial(python_callable=f, ...).expand(op_kwargs=[...] | op_args=[...])
        func = partial.get("python_callable")
        expanded = dict(expand_input.value)
        unmappable = sorted(set(expanded) - {"op_kwargs", "op_args"})
        if unmappable or func is None:
            raise ImportRefused(
                f"task {tid}: PythonOperator mapped over {unmappable or ['python_callable']}; meta maps the callable's "
                "arguments only",
                task=tid,
                received=f"PythonOperator.partial(...).expand({', '.join(f'{n}=...' for n in expanded)})",
                expected="expand(op_kwargs=[...]) over literal argument sets, or @task f.expand(name=...)",
            )
        fixed, mapped = python_operator_map(func, partial, expanded, tid)
        target = None
    ref = target or python_callable_ref(func, tid, module_names)
    kwargs = with_references(fixed, tid, "argument")
    plain_kwargs(kwargs, tid)
    map_: dict[str, Any] = {}
    for name, source in mapped.items():
        if isinstance(source, dict):
            raise ImportRefused(
                f"task {tid}: expand({name}=<a dict>) maps over a mapping's items; meta maps over lists",
                task=tid,
                received=f"{name}={source!r:.120}",
                expected=f"a list ({name}=list(d.items()) to map over the pairs)",
            )
        if isinstance(source, list | tuple) and has_xcom(source):
            raise ImportRefused(
                f"task {tid}: expand {name} is a list holding results of other tasks; meta maps over a literal list "
                "or over one task's result",
                task=tid,
                received=f"{name}={source!r:.120}",
                expected=f"{name}=<a task that returns the list> (its result), or a list of plain values",
            )
        map_[name] = with_references(source, tid, f"expand {name}")
        if isinstance(map_[name], list) and not jsonable(map_[name]):
            raise ImportRefused(
                f"task {tid}: expand {name} holds values that are not plain data",
                task=tid,
                received=f"{name}={source!r:.120}",
                expected="a list of JSON values, or the result of another task",
            )
    if target is None:
        python_notes(op, func, notes)
    return {"kind": "python", "callable": ref, "kwargs": kwargs}, map_


def meta_mapped_target(func: Any) -> str | None:
    """The ``module:function`` of a mapped python task meta compiled (``runtime.mapped_python(target, names)``)."""
    if getattr(func, "__module__", None) != RUNTIME:
        return None
    if isinstance(getattr(func, "meta_target", None), str):
        return str(func.meta_target)
    try:
        target = inspect.getclosurevars(func).nonlocals.get("target")
    except (TypeError, ValueError):
        return None
    return target if isinstance(target, str) else None


def python_operator_map(
    func: Any, partial: dict[str, Any], expanded: dict[str, Any], tid: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(kwargs, map) for ``PythonOperator.partial(...).expand(op_kwargs=[{...}, ...])``: each element is a whole set
    of arguments. Arguments equal in every set are fixed (kwargs); the rest must vary as a cross product does (the
    last name fastest, as Airflow expands several names), or the sets have no ``map`` form."""
    from airflow.sdk.definitions.xcom_arg import XComArg

    if len(expanded) > 1:
        raise ImportRefused(
            f"task {tid}: PythonOperator mapped over both op_args and op_kwargs has no neutral form",
            task=tid,
            received="expand(op_args=..., op_kwargs=...)",
            expected="expand(op_kwargs=[...]) alone",
        )
    ((field, sets),) = expanded.items()
    if isinstance(sets, XComArg):
        raise ImportRefused(
            f"task {tid}: expand({field}=<the result of a task>) maps over whole argument sets decided at run time; "
            "meta maps each argument name over a list of its own",
            task=tid,
            received=f"expand({field}={sets!r:.100})",
            expected="@task f.expand(name=<the result of a task>) over one argument",
        )
    if not isinstance(sets, list | tuple) or not sets:
        raise ImportRefused(
            f"task {tid}: expand({field}=...) needs a non-empty literal list to be read at import",
            task=tid,
            received=f"{field}={sets!r:.100}",
            expected="a list of argument sets",
        )
    fixed_op_kwargs = dict(partial.get("op_kwargs") or {})
    if field == "op_args":
        rows = [keyword_args(func, list(s), {}, tid) for s in sets]
    elif all(isinstance(s, dict) for s in sets):
        rows = [dict(s) for s in sets]
    else:
        rows = []
    if not rows or len({tuple(sorted(r)) for r in rows}) != 1:
        raise ImportRefused(
            f"task {tid}: expand({field}=...) sets of different names have no neutral form",
            task=tid,
            received=f"{field}={list(sets)!r:.160}",
            expected="argument sets (mappings) with the same names",
        )
    names = list(rows[0])
    distinct: dict[str, list[Any]] = {}
    for name in names:
        seen: list[Any] = []
        for row in rows:
            if row[name] not in seen:
                seen.append(row[name])
        distinct[name] = seen
    varying = [n for n in names if len(distinct[n]) > 1]
    if not varying and len(rows) == 1 and names:  # one instance: still a mapped task (its result is a list)
        varying = names[:1]
    fixed = {**fixed_op_kwargs, **{n: v[0] for n, v in distinct.items() if n not in varying}}
    product = [dict(zip(varying, combo, strict=True)) for combo in itertools.product(*(distinct[n] for n in varying))]
    if product != [{n: row[n] for n in varying} for row in rows]:
        raise ImportRefused(
            f"task {tid}: expand({field}=...) varies {varying} together (one set per instance, not every "
            "combination); meta's map is the cross product of its names",
            task=tid,
            received=f"{field}={list(sets)!r:.160}",
            expected="sets that are every combination of the varying values, or a single varying argument",
        )
    return fixed, {n: distinct[n] for n in varying}
