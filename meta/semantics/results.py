"""Results between tasks and dynamic mapping, with Airflow's semantics (XCom, ``expand``), for every executor.

* A task's result is what its successful attempt returned; only instances that produced one count. Reading the
  result of an unmapped task that has none gives ``None`` (Airflow's ``XComArg.resolve``); reading a mapped task's
  result gives the list of its instances' results in map-index order (the reduce: Airflow's lazy XCom sequence).
* ``expand_map`` turns a mapped task's ``map`` into one kwargs dict per instance: the cross product of its names, the
  last name varying fastest (Airflow's ``DictOfListsExpandInput``). An empty list gives no instance (the task is
  skipped); a value that is not a list, or a missing one, cannot be expanded (the task is upstream_failed).
* ``render_with_results`` renders a task's fields: every whole ``"{{ tasks.X.result }}"`` is the value itself,
  references inside longer text are rendered by Jinja from the ``tasks`` variable (``template_tasks``).

Pure: no I/O. The checks a produced result must pass (JSON, size, no secret) are ``meta.execution.results``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meta.semantics.context import render
from meta.spec.model import MAX_MAP_LENGTH, Pipeline, Task
from meta.spec.references import whole_reference

UNMAPPED = -1  # Airflow's map_index of a task instance that is not (or not yet) expanded


class ExpansionError(ValueError):
    """A mapped task's ``map`` cannot be expanded; the message says which name and what it received."""


@dataclass
class RunResults:
    """Results of one run, per (task id, map index). Written by the executor as attempts succeed."""

    pipeline: Pipeline
    _values: dict[str, dict[int, Any]] = field(default_factory=dict)
    # Worked out once per run: every instance's attempt asks for them.
    _references: dict[str, list[str]] = field(init=False)
    map_sources: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self._references = {t.id: t.result_references() for t in self.pipeline.tasks}
        self.map_sources = mapped_sources(self.pipeline)

    def put(self, task_id: str, map_index: int, value: Any) -> None:
        self._values.setdefault(task_id, {})[map_index] = value

    def value_of(self, task_id: str) -> Any:
        """What a downstream task receives for ``tasks.<task_id>.result``."""
        values = self._values.get(task_id, {})
        if self.pipeline.task(task_id).mapped:
            return [values[i] for i in sorted(values) if i >= 0]
        return values.get(UNMAPPED)

    def inputs_for(self, task: Task) -> dict[str, Any]:
        """``{task id: value}`` of every result ``task`` refers to."""
        return {ref: self.value_of(ref) for ref in self._references[task.id]}

    def must_return_a_list(self, task: Task) -> bool:
        """Some task maps over ``task``'s result, and ``task`` is not mapped itself (Airflow's push-time rule)."""
        return not task.mapped and task.id in self.map_sources


def mapped_sources(pipeline: Pipeline) -> frozenset[str]:
    """Tasks whose result some task maps over: their result must be a list (Airflow checks it when the task
    pushes it, so a bad value fails the producing task, retries included)."""
    out = set()
    for task in pipeline.tasks:
        for source in task.map.values():
            ref = whole_reference(source)
            if ref is not None and ref.kind == "result":
                out.add(ref.name)
    return frozenset(out)


def mappable_problem(value: Any) -> str | None:
    """Why ``value`` cannot be mapped over (the producing task then fails), or None."""
    if value is None:
        return "returned nothing, but a downstream task maps over its result; expected a list"
    if not isinstance(value, list | tuple):
        return f"returned {_a(type(value).__name__)}, but a downstream task maps over its result; expected a list"
    if len(value) > MAX_MAP_LENGTH:
        return f"returned {len(value)} elements to map over; at most {MAX_MAP_LENGTH} (Airflow's max_map_length)"
    return None


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def expand_map(task: Task, params: Mapping[str, Any], result_of: Callable[[str], Any]) -> list[dict[str, Any]]:
    """One kwargs dict per instance of the mapped ``task``, in map-index order; raises ExpansionError."""
    names: list[str] = []
    columns: list[list[Any]] = []
    for name, source in task.map.items():
        ref = whole_reference(source)
        if ref is None:
            values: Any = source
            origin = "its literal list"
        elif ref.kind == "param":
            values, origin = params.get(ref.name), f"params.{ref.name}"
        else:
            values, origin = result_of(ref.name), f"the result of {ref.name!r}"
        if values is None:
            raise ExpansionError(f"cannot expand map.{name}: {origin} has no value (did that task succeed?)")
        if not isinstance(values, list | tuple):
            raise ExpansionError(f"cannot expand map.{name}: {origin} is {_a(type(values).__name__)}; expected a list")
        names.append(name)
        columns.append(list(values))
    combos = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*columns)]
    if len(combos) > MAX_MAP_LENGTH:
        raise ExpansionError(
            f"map expands to {len(combos)} instances; at most {MAX_MAP_LENGTH} (Airflow's max_map_length)"
        )
    return combos


def render_with_results(value: Any, variables: dict[str, Any], inputs: Mapping[str, Any]) -> Any:
    """Render every string of a JSON-like value as a template, except that a whole ``"{{ tasks.X.result }}"`` is the
    result itself. A result is never rendered again: text it holds (even ``{{ ... }}``) reaches the task as is,
    like an XComArg in Airflow."""
    if isinstance(value, str):
        ref = whole_reference(value)
        if ref is not None and ref.kind == "result" and ref.name in inputs:
            return inputs[ref.name]
        return render(value, variables)
    if isinstance(value, dict):
        return {k: render_with_results(v, variables, inputs) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(render_with_results(v, variables, inputs) for v in value)
    return value


def template_tasks(inputs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``tasks`` template variable: ``{{ tasks.extract.result }}`` inside text renders ``inputs['extract']``."""
    return {task_id: {"result": value} for task_id, value in inputs.items()}
