"""Structural checks on a whole pipeline: ids, references, cycles, literal credentials.

They work on ``TaskShape``s, not on the model, so the pydantic model (``Pipeline``'s validator) and the loader (on
raw input, before the model exists) run the same checks; the YAML loader adds file positions to the problems.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meta.spec.dag import find_cycle
from meta.spec.errors import Problem

SECRET_REF = re.compile(r"^\$\{secret:[A-Za-z_][A-Za-z0-9_.\-/]*\}$")
# Keys whose values are credentials (password, token, api_key, private_key, webhook_url, ...).
SECRET_KEY = re.compile(
    r"(^|[_\-.])(password|passwd|pwd|secret|token|api[_\-]?key|apikey|private[_\-]?key|access[_\-]?key|"
    r"client[_\-]?secret|credentials?|auth|webhook([_\-]?url)?)($|[_\-.])",
    re.IGNORECASE,
)


def did_you_mean(name: str, options: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def literal_secrets(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Yield (path, value) for every credential-looking key that holds a literal instead of ``${secret:NAME}``."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = (*path, str(key))
            if SECRET_KEY.search(str(key)) and _is_literal(item):
                yield here, item
            else:
                yield from literal_secrets(item, here)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from literal_secrets(item, (*path, str(i)))


def _is_literal(value: Any) -> bool:
    if value is None or value == "" or isinstance(value, bool):
        return False
    if isinstance(value, str):
        return not SECRET_REF.match(value.strip()) and not value.strip().startswith("{{")
    return not isinstance(value, dict | list | tuple)


def secret_message(path: tuple[str, ...]) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", path[-1]).upper()
    return (
        f"{'.'.join(path)} holds a literal credential; reference a secret instead, "
        f"e.g. '${{secret:{name}}}' (the value is not shown)"
    )


@dataclass(frozen=True)
class TaskShape:
    """What the whole-pipeline checks need of a task; built from the model or, by the loader, from raw input."""

    id: str
    upstream: Sequence[str] = ()
    action: Mapping[str, Any] = field(default_factory=dict)  # the action's fields, without "kind"
    params: Mapping[str, Any] = field(default_factory=dict)


def graph_problems(pid: str | None, tasks: Sequence[TaskShape], param_defaults: Mapping[str, Any]) -> list[Problem]:
    """Duplicate ids, self and unknown upstreams (with "did you mean"), cycles as a path, literal credentials."""
    problems: list[Problem] = []
    ids = [t.id for t in tasks]
    seen: set[str] = set()
    for task_id in ids:
        if task_id in seen:
            problems.append(
                Problem(f"duplicate task id {task_id!r}; task ids must be unique", pipeline=pid, task=task_id)
            )
        seen.add(task_id)
    graph: dict[str, list[str]] = {}
    for task in tasks:
        graph[task.id] = [up for up in task.upstream if up in seen and up != task.id]
        for up in task.upstream:
            if up == task.id:
                problems.append(Problem(f"task depends on itself (cycle: {up} -> {up})", pipeline=pid, task=task.id))
            elif up not in seen:
                problems.append(
                    Problem(
                        f"upstream {up!r} is not a task of this pipeline{did_you_mean(up, ids)}",
                        pipeline=pid,
                        task=task.id,
                    )
                )
        if len(set(task.upstream)) != len(task.upstream):
            problems.append(Problem(f"upstream lists a task twice: {list(task.upstream)}", pipeline=pid, task=task.id))
        for path, _ in literal_secrets(dict(task.action)):
            problems.append(Problem(secret_message(path), pipeline=pid, task=task.id))
        for path, _ in literal_secrets(dict(task.params), ("params",)):
            problems.append(Problem(secret_message(path), pipeline=pid, task=task.id))
    for name, default in param_defaults.items():
        for path, _ in literal_secrets({name: default}, ("params",)):
            problems.append(Problem(secret_message(path), pipeline=pid))
    cycle = find_cycle(graph)
    if cycle:
        problems.append(Problem(f"dependency cycle: {' -> '.join(cycle)}", pipeline=pid, task=cycle[0]))
    return problems


def dependency_cycles(depends_on: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Each cycle of ``depends_on`` (pipeline id -> the ids it depends on) once, as the path that closes it
    (``["a", "b", "a"]``), starting at its smallest id so the message is the same on every load."""
    cycles: list[list[str]] = []
    seen_cycles: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for upstream in sorted(set(depends_on.get(node, ()))):
            if state.get(upstream) == 1:
                loop = path[path.index(upstream) :]
                members = frozenset(loop)
                if members not in seen_cycles:
                    seen_cycles.add(members)
                    start = loop.index(min(loop))
                    turned = loop[start:] + loop[:start]
                    # ``depends_on`` points upstream: report it in the order runs flow (upstream first)
                    flow = list(reversed(turned))
                    flow = flow[-1:] + flow[:-1]
                    cycles.append([*flow, flow[0]])
            elif upstream not in state and upstream in depends_on:
                visit(upstream)
        path.pop()
        state[node] = 2

    for node in sorted(depends_on):
        if node not in state:
            visit(node)
    return cycles
