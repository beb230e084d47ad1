"""Python authoring: the same pipelines as YAML, built with ``with pipeline(...)`` blocks and ``>>``.

```python
from meta.authoring.dsl import pipeline, shell, op

for country in ("CH", "DE"):
    with pipeline(f"sales_{country.lower()}", schedule="@daily", defaults={"retries": 2}):
        extract = shell("extract", f"python -m jobs.extract --country {country} --date {{{{ ds }}}}")
        load = op("load", "warehouse_load", with_={"table": f"sales_{country}"}, retries=3)
        extract >> load
```

Results pass between tasks as values: a task made by the DSL stands for its result wherever a value goes
(``python_task("load", load, kwargs={"rows": extract})``), and ``@task`` functions read like the code they run,
Airflow's TaskFlow style, with Airflow's ``partial``/``expand`` for dynamic mapping::

    @task
    def extract() -> list[int]: ...
    @task
    def square(x: int, power: int) -> int: ...
    @task
    def total(values: list[int]) -> int: ...

    with pipeline("numbers"):
        total(square.partial(power=2).expand(x=extract()))

Outside a ``with pipeline(...)`` block a ``@task`` function is the plain function (tests call it directly).

Every keyword is the YAML key of the same name (``schedule="every 15m"``, ``params={"country": "CH"}``), and the
result goes through the same translation and checks as YAML (``meta.authoring.build``), so both forms accept and
refuse the same things. Problems point at the file:line of the call that introduced them. A ``.py`` spec file exposes
its pipelines by creating them in ``with pipeline(...)`` blocks (collected when the file is loaded) or through a
module-level ``pipelines`` list.

The open ``with pipeline(...)`` blocks and the load collecting finished pipelines are per context (``ContextVar``),
not per process: two threads building or loading pipelines at once never see each other's builders. Tasks belong to
the innermost block open *in the same thread*.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from meta.authoring import form
from meta.authoring.build import Loaded, Source, Unit, Where, build, in_file_order
from meta.authoring.import_roots import import_roots
from meta.spec.errors import Problem, ValidationFailed
from meta.spec.model import Pipeline
from meta.spec.references import result_expression

__all__ = [
    "PipelineBuilder",
    "TaskRef",
    "airflow_operator",
    "branch",
    "load_python_file",
    "load_python_file_with_sources",
    "noop",
    "op",
    "pipeline",
    "python_task",
    "shell",
    "sql",
    "task",
]

_THIS_FILE = __file__


@dataclass
class _Collected:
    """While a spec file is being loaded: where finished pipelines and their problems go (instead of raising)."""

    loaded: Loaded = field(default_factory=Loaded)
    problems: list[Problem] = field(default_factory=list)


# The open ``with pipeline(...)`` blocks of this context, outermost first; the load collecting in this context.
_stack: ContextVar[tuple[PipelineBuilder, ...]] = ContextVar("meta_dsl_builders", default=())
_collector: ContextVar[_Collected | None] = ContextVar("meta_dsl_collector", default=None)


Site = tuple[str, int, int | None]  # file, line, column (1-based) of a user's call


def _caller() -> Site:
    """Where the user's call is: the first frame outside this module, with the call's column when known."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == _THIS_FILE:
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:  # pragma: no cover - only when called from this module itself
        return "<unknown>", 0, None
    col = None
    try:  # the column of the instruction being executed: the start of the call expression
        col = list(frame.f_code.co_positions())[frame.f_lasti // 2][2]
    except (IndexError, AttributeError):  # pragma: no cover - positions can be disabled (-X no_debug_ranges)
        pass
    return frame.f_code.co_filename, frame.f_lineno, None if col is None else col + 1


class TaskRef:
    """A task being defined. ``a >> b`` makes ``a`` upstream of ``b``; lists work on either side."""

    def __init__(self, builder: PipelineBuilder, task_id: str, fields: dict[str, Any], where: Site):
        self.builder, self.id, self.fields, self.where = builder, task_id, fields, where

    def _add_upstream(self, up: TaskRef) -> None:
        if up.builder is not self.builder:
            file, line, col = _caller()
            message = (
                f"task {up.id!r} of pipeline {up.builder.id!r} cannot be upstream of task {self.id!r} of pipeline "
                f"{self.builder.id!r}; connect pipelines through datasets (outputs: / schedule: {{datasets: ...}})"
            )
            raise ValidationFailed([Problem(message, file, line, col, pipeline=self.builder.id, task=self.id)])
        current = self.fields.get("upstream")
        ups = [current] if isinstance(current, str) else list(current or [])
        if up.id not in ups:
            ups.append(up.id)
        self.fields["upstream"] = ups

    def __rshift__(self, other: TaskRef | Iterable[TaskRef]) -> Any:
        for target in _refs(other):
            target._add_upstream(self)
        return other

    def __lshift__(self, other: TaskRef | Iterable[TaskRef]) -> Any:
        for source in _refs(other):
            self._add_upstream(source)
        return other

    def __rrshift__(self, other: Iterable[TaskRef]) -> TaskRef:  # [a, b] >> c
        for source in _refs(other):
            self._add_upstream(source)
        return self

    def __rlshift__(self, other: Iterable[TaskRef]) -> TaskRef:  # [a, b] << c
        for target in _refs(other):
            target._add_upstream(self)
        return self

    @property
    def result(self) -> str:
        """The reference to this task's result, ``"{{ tasks.<id>.result }}"`` (a TaskRef used as a value is this)."""
        return "{{ " + result_expression(self.id) + " }}"

    def __repr__(self) -> str:
        return f"TaskRef({self.id!r})"


def _results(value: Any) -> Any:
    """``value`` with every TaskRef in it replaced by the reference to that task's result."""
    if isinstance(value, TaskRef):
        return value.result
    if isinstance(value, dict):
        return {k: _results(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_results(v) for v in value]
    return value


def _refs(value: TaskRef | Iterable[TaskRef]) -> list[TaskRef]:
    items = [value] if isinstance(value, TaskRef) else list(value)
    for item in items:
        if not isinstance(item, TaskRef):
            raise TypeError(f">> and << connect tasks made with meta.dsl; received {type(item).__name__} {item!r}")
    return items


class _DslUnit(Unit):
    """Locates authoring paths at the DSL call that wrote them (the task's call, else the pipeline's)."""

    def __init__(self, value: dict[str, Any], builder: PipelineBuilder) -> None:
        super().__init__(value)
        self.builder = builder

    def where(self, path: form.Path, at_key: bool = False) -> Where:
        if len(path) >= 2 and path[0] == "tasks":
            ref = self.builder.tasks.get(str(path[1]))
            if ref is not None:
                return *ref.where, len(path)
        return *self.builder.where, len(path)


class PipelineBuilder:
    """``with pipeline(...) as p``: collects tasks made inside the block; builds and checks them on exit."""

    def __init__(self, pipeline_id: str, fields: dict[str, Any], where: Site):
        self.id, self.fields, self.where = pipeline_id, fields, where
        self.tasks: dict[str, TaskRef] = {}
        self.problems: list[Problem] = []
        self.pipeline: Pipeline | None = None

    def __enter__(self) -> PipelineBuilder:
        _stack.set((*_stack.get(), self))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None):
        _stack.set(tuple(b for b in _stack.get() if b is not self))
        if exc_type is not None:
            return None
        self.pipeline, problems = self._build()
        problems = self.problems + problems
        collected = _collector.get()
        if collected is not None:
            if self.pipeline is not None and not problems:
                collected.loaded.add(self.pipeline, self.source)
            collected.problems.extend(problems)
        elif problems:
            raise ValidationFailed(in_file_order(problems))
        return None

    @property
    def source(self) -> Source:
        """Where this pipeline was defined: the file and line of its ``pipeline(...)`` call."""
        return Source(self.where[0], self.where[1])

    def add(self, task_id: str, fields: dict[str, Any]) -> TaskRef:
        where = _caller()
        if task_id in self.tasks:
            first = self.tasks[task_id].where
            self.problems.append(
                Problem(
                    f"duplicate task id {task_id!r}: first defined at {first[0]}:{first[1]}; task ids must be unique",
                    *where,
                    pipeline=self.id,
                    task=task_id,
                )
            )
            return self.tasks[task_id]
        ref = TaskRef(self, task_id, fields, where)
        self.tasks[task_id] = ref
        return ref

    def authoring(self) -> dict[str, Any]:
        """The YAML-equivalent mapping of this pipeline."""
        return {"pipeline": self.id, **self.fields, "tasks": {tid: ref.fields for tid, ref in self.tasks.items()}}

    def _build(self) -> tuple[Pipeline | None, list[Problem]]:
        return build(_DslUnit(self.authoring(), self))


def pipeline(pipeline_id: str, **fields: Any) -> PipelineBuilder:
    """Start a pipeline; keywords are the YAML keys (schedule, timezone, params, defaults, sla, alerts, ...)."""
    where = _caller()
    for reserved in ("pipeline", "tasks"):
        if reserved in fields:
            hint = "the first argument is the id" if reserved == "pipeline" else "create tasks inside the with block"
            raise ValidationFailed(
                [Problem(f"pipeline() takes no {reserved!r} keyword: {hint}", *where, pipeline=pipeline_id)]
            )
    return PipelineBuilder(pipeline_id, fields, where)


def _current(kind: str) -> PipelineBuilder:
    open_blocks = _stack.get()
    if not open_blocks:
        message = f"{kind}() was called outside a 'with pipeline(...):' block; tasks belong to a pipeline"
        raise ValidationFailed([Problem(message, *_caller())])
    return open_blocks[-1]


def _task(kind: str, task_id: str, action: Any, extra: dict[str, Any], fields: dict[str, Any]) -> TaskRef:
    builder = _current(kind)
    out: dict[str, Any] = {kind: _results(action), **{k: _results(v) for k, v in extra.items() if v is not None}}
    for key, value in fields.items():
        if key == "upstream":
            out[key] = [u.id if isinstance(u, TaskRef) else u for u in _as_list(value)]
        else:
            out[key] = _results(value) if key == "map" else value
    return builder.add(task_id, out)


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str | TaskRef) else list(value or [])


def _callable_ref(fn: str | Callable[..., Any]) -> Any:
    """'module:function' for a function object, so the runner (maybe another process) can import it. A function of
    the spec file being loaded is named by the file's own module name (``etl.py``: ``etl:extract``), found beside
    the specs like any helper module (docs/local-runner.md)."""
    if isinstance(fn, str) or not callable(fn):
        return fn
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if module in _spec_modules:
        module = _spec_modules[module]
    if not module or module == "__main__" or module.startswith(_SPEC_PREFIX) or "<locals>" in name:
        raise ValidationFailed(
            [
                Problem(
                    f"function {name or fn!r} is not importable by the runner (defined in {module or 'no module'}); "
                    "define it in an importable module or pass 'package.module:function'",
                    *_caller(),
                )
            ]
        )
    return f"{module}:{name}"


# -- task constructors: the YAML action keys, as functions ----------------------------------------------------


def shell(task_id: str, command: str, *, env: dict[str, str] | None = None, cwd: str | None = None, **fields: Any):
    """A shell task (exit 0 success, 99 skipped, else failed)."""
    action = {"command": command, "env": env, "cwd": cwd} if (env or cwd) else command
    if isinstance(action, dict):
        action = {k: v for k, v in action.items() if v is not None}
    return _task("shell", task_id, action, {}, fields)


def python_task(task_id: str, fn: str | Callable[..., Any], *, kwargs: dict[str, Any] | None = None, **fields: Any):
    """Call ``fn`` (a function or 'package.module:function') with ``kwargs``."""
    return _task("python", task_id, _callable_ref(fn), {"kwargs": kwargs}, fields)


def branch(task_id: str, fn: str | Callable[..., Any], *, kwargs: dict[str, Any] | None = None, **fields: Any):
    """Call ``fn``; it returns the downstream task id(s) to follow, the others are skipped."""
    return _task("branch", task_id, _callable_ref(fn), {"kwargs": kwargs}, fields)


def sql(task_id: str, conn: str, statement: str, *, parameters: dict[str, Any] | None = None, **fields: Any):
    """Run ``statement`` on connection ``conn``."""
    action: dict[str, Any] = {"conn": conn, "statement": statement}
    if parameters:
        action["parameters"] = parameters
    return _task("sql", task_id, action, {}, fields)


def noop(task_id: str, **fields: Any) -> TaskRef:
    """A task that does nothing (a join point, like Airflow's EmptyOperator)."""
    return _task("noop", task_id, True, {}, fields)


def op(task_id: str, op_type: str, with_: dict[str, Any] | None = None, **fields: Any) -> TaskRef:
    """A registered op type (``warehouse_load``, ``alert``, ...) configured by ``with_``."""
    return _task("op", task_id, op_type, {"with": with_}, fields)


def airflow_operator(task_id: str, operator: str, arguments: dict[str, Any] | None = None, **fields: Any):
    """An Airflow operator by dotted class path; compiles to Airflow only."""
    action: dict[str, Any] = {"operator": operator}
    if arguments:
        action["arguments"] = arguments
    return _task("airflow_operator", task_id, action, {}, fields)


# -- @task: TaskFlow-style python tasks ------------------------------------------------------------------------


class TaskFunction:
    """A function made a python task by ``@task``. Called inside a ``with pipeline(...)`` block it adds a task (id:
    the function's name, ``name__1``, ``name__2`` when used again, as Airflow names them) and returns it, so it can be
    passed on as a result; ``expand``/``partial`` map it. Outside a block it is the plain function."""

    def __init__(self, fn: Callable[..., Any], fields: dict[str, Any], fixed: dict[str, Any] | None = None):
        self.fn, self.fields, self.fixed = fn, fields, dict(fixed or {})
        self.__wrapped__ = fn
        self.__name__ = getattr(fn, "__name__", "task")
        self.__doc__ = fn.__doc__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not _stack.get():
            return self.fn(*args, **kwargs)
        return self._add(self._bind(args, kwargs), None)

    def override(self, **fields: Any) -> TaskFunction:
        """The same task with other task fields (``task_id``, ``retries``, ``trigger_rule``, ...), as Airflow's."""
        return TaskFunction(self.fn, {**self.fields, **fields}, self.fixed)

    def partial(self, **kwargs: Any) -> TaskFunction:
        """Arguments every mapped instance gets (Airflow's ``partial``); map with ``expand``."""
        return TaskFunction(self.fn, self.fields, {**self.fixed, **kwargs})

    def expand(self, **mapped: Any) -> TaskRef:
        """One instance per element (the cross product for several names): each value a list, another task (its
        result), or ``"{{ params.NAME }}"``."""
        return self._add(dict(self.fixed), mapped)

    map = expand  # Prefect's word for the same thing

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        import inspect

        try:
            bound = inspect.signature(self.fn).bind_partial(*args, **{**self.fixed, **kwargs})
        except TypeError as exc:
            raise ValidationFailed([Problem(f"{self.__name__}(): {exc}", *_caller())]) from None
        return dict(bound.arguments)

    def _add(self, kwargs: dict[str, Any], mapped: dict[str, Any] | None) -> TaskRef:
        builder = _current(self.__name__)
        fields = dict(self.fields)
        task_id = str(fields.pop("task_id", None) or self.__name__)
        base, n = task_id, 1
        while task_id in builder.tasks:
            task_id, n = f"{base}__{n}", n + 1
        if mapped is not None:
            fields["map"] = mapped
        return python_task(task_id, self.fn, kwargs=kwargs or None, **fields)


def task(fn: Callable[..., Any] | None = None, **fields: Any) -> Any:
    """``@task`` or ``@task(retries=2, ...)``: the function becomes a python task each time it is called inside a
    ``with pipeline(...)`` block (see ``TaskFunction``). The function must be importable by the runner."""
    if fn is None:
        return lambda f: TaskFunction(f, fields)
    return TaskFunction(fn, fields)


# -- loading .py spec files -------------------------------------------------------------------------------------

_SPEC_PREFIX = "meta_spec_"
# Module name a spec file is loaded under -> the name it is importable by beside the specs (its stem), when that is
# a Python identifier: ``@task`` functions defined in the spec file itself are called through it at run time.
_spec_modules: dict[str, str] = {}


@contextmanager
def _collecting() -> Iterator[_Collected]:
    collected = _Collected()
    token = _collector.set(collected)
    try:
        yield collected
    finally:
        _collector.reset(token)


def load_python_file(path: str | Path) -> list[Pipeline]:
    """Import a DSL spec file under an isolated module name; return its pipelines or raise every problem at once."""
    return load_python_file_with_sources(path).pipelines


def load_python_file_with_sources(path: str | Path) -> Loaded:
    """``load_python_file``, with where each pipeline was defined.

    The file runs as a module of its own unique name (``meta_spec_<hash>_<stem>``, registered in ``sys.modules``
    only while it runs). It may import helper modules that sit next to it: its folder is an import root for this
    context while it runs (``meta.authoring.import_roots``), not an entry of ``sys.path``, so a concurrent load in
    another thread does not search this folder, and nothing is left behind.
    """
    path = Path(path).resolve()
    digest = hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:10]
    name = f"{_SPEC_PREFIX}{digest}_{path.stem}".replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValidationFailed([Problem("cannot import this file as Python", str(path))])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses, pickling and relative lookups expect the module to be registered
    if path.stem.isidentifier():
        _spec_modules[name] = path.stem
    try:
        with import_roots([path.parent]), _collecting() as collected:
            try:
                spec.loader.exec_module(module)
            except ValidationFailed as exc:
                collected.problems.extend(exc.problems)
            except Exception as exc:  # the user's module failed to import: report where, like a syntax error
                collected.problems.append(_import_problem(exc, path))
    finally:
        sys.modules.pop(name, None)
    loaded, problems = collected.loaded, collected.problems
    for item in getattr(module, "pipelines", None) or ():
        found = item.pipeline if isinstance(item, PipelineBuilder) else item
        if isinstance(found, Pipeline) and all(found is not p for p in loaded.pipelines):
            loaded.add(found, item.source if isinstance(item, PipelineBuilder) else Source(str(path), 0))
        elif not isinstance(found, Pipeline | None):
            problems.append(
                Problem(f"'pipelines' must list pipelines; received {type(found).__name__} {found!r}", str(path))
            )
    first: dict[str, Pipeline] = {}
    for p in loaded.pipelines:
        if p.id in first and first[p.id] is not p:
            problems.append(Problem(f"duplicate pipeline id {p.id!r}; pipeline ids must be unique", str(path)))
        first.setdefault(p.id, p)
    if problems:
        raise ValidationFailed(in_file_order(problems))
    if not loaded.pipelines:
        raise ValidationFailed([Problem("this file defines no pipeline (no 'with pipeline(...)' block)", str(path))])
    return loaded


def _import_problem(exc: Exception, path: Path) -> Problem:
    if isinstance(exc, SyntaxError) and exc.lineno:
        return Problem(f"Python syntax error: {exc.msg}", str(path), exc.lineno, exc.offset)
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == path:
            line = frame.lineno
    return Problem(f"importing the file failed: {type(exc).__name__}: {exc}", str(path), line)
