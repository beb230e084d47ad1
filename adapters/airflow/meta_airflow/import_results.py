"""Airflow's XComs -> meta's results: an ``XComArg`` argument (``transform(extract())``, ``op.output``) becomes
``"{{ tasks.extract.result }}"``, a plain ``ti.xcom_pull(task_ids='x')`` in templated text ``tasks.x.result``; other
XCom constructs (keys, ``.map()``/``.zip()``/``.concat()``) are refused or noted."""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from typing import Any

from meta import RESULT_KINDS, referenced_results, result_expression, whole_reference
from meta_airflow.import_values import ImportRefused

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
