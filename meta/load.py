"""Load pipelines from YAML (and Python DSL) files, reporting every problem with file:line:col.

The flow for one YAML document: compose nodes (``meta.yamlpos``) -> build values -> expand ``generate:``
templates (``meta.generate``) -> translate the authoring form (``meta.authoring``) -> ``Pipeline.model_validate``
-> check ``op:`` names and their ``with:`` against the registered op types. Problems from every stage are
collected and raised together as one ``ValidationFailed``; a pipeline with any problem is never returned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from yaml.nodes import Node

from meta import authoring, yamlpos
from meta.errors import Problem, ValidationFailed
from meta.graph import find_cycle
from meta.model import CALLABLE_PATTERN, CHANNEL_PATTERN, DATASET_PATTERN, IDENTIFIER_PATTERN, Pipeline
from meta.validate import SECRET_KEY, did_you_mean, literal_secrets, secret_message

YAML_SUFFIXES = (".yaml", ".yml")
# Where each loaded pipeline was defined, for `meta list`, error messages of later stages and the dashboard.
_SOURCES: dict[str, tuple[str, int]] = {}

_PATTERN_HELP = {
    IDENTIFIER_PATTERN: "an id of letters, digits, '_', '.' and '-' (Airflow's rule)",
    CALLABLE_PATTERN: "a callable written 'package.module:function'",
    CHANNEL_PATTERN: "a channel written '<kind>:<name>', e.g. 'slack:data-team'",
    DATASET_PATTERN: "a dataset URI, e.g. 'postgres://warehouse/public.sales'",
}


@dataclass
class Unit:
    """One pipeline's authoring mapping, the node it came from (for positions) and, if generated, from what."""

    node: Node
    value: Any
    file: str
    origin: str = ""  # e.g. " (generated for entry 1: {'country': 'DE'})"


# ---------------------------------------------------------------------------------------------- public API


def loads(text: str, filename: str = "<string>") -> list[Pipeline]:
    """Load every pipeline of one YAML text (one or more documents). Raises ValidationFailed listing all problems."""
    pipelines, problems = _load_yaml(text, filename)
    if problems:
        raise ValidationFailed(problems)
    return pipelines


def load_file(path: str | Path) -> list[Pipeline]:
    """Load a .yaml/.yml file or a .py module written with ``meta.dsl``."""
    pipelines, problems = _load_one(Path(path))
    if problems:
        raise ValidationFailed(problems)
    return pipelines


def load_paths(paths: Iterable[str | Path]) -> list[Pipeline]:
    """Load files and directories; collect the problems of all of them and raise once."""
    found: list[Pipeline] = []
    problems: list[Problem] = []
    first_seen: dict[str, tuple[str, int]] = {}
    for path in discover(paths, problems):
        pipelines, file_problems = _load_one(path)
        problems.extend(file_problems)
        for p in pipelines:
            where = _SOURCES.get(p.id, (str(path), 0))
            if p.id in first_seen:
                file, line = first_seen[p.id]
                problems.append(
                    Problem(
                        f"duplicate pipeline id {p.id!r}: already defined at {file}:{line}; "
                        "pipeline ids must be unique",
                        file=where[0],
                        line=where[1] or None,
                        pipeline=p.id,
                    )
                )
                continue
            first_seen[p.id] = where
            found.append(p)
    if problems:
        raise ValidationFailed(problems)
    return found


def discover(paths: Iterable[str | Path], problems: list[Problem] | None = None) -> list[Path]:
    """Pipeline files under ``paths``: YAML files, and .py files that use ``meta.dsl``; directories recursively."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path).parts
                if any(part.startswith((".", "__")) for part in rel) or not child.is_file():
                    continue
                if child.suffix in YAML_SUFFIXES or (child.suffix == ".py" and _uses_dsl(child)):
                    out.append(child)
        elif path.is_file():
            out.append(path)
        elif problems is not None:
            problems.append(Problem("no such file or directory", file=str(path)))
        else:
            raise ValidationFailed([Problem("no such file or directory", file=str(path))])
    return out


def source_of(pipeline_id: str) -> tuple[str, int] | None:
    """(file, line) where a pipeline loaded in this process was defined."""
    return _SOURCES.get(pipeline_id)


def record_source(pipeline_id: str, file: str, line: int) -> None:
    _SOURCES[pipeline_id] = (file, line)


def pipeline_to_yaml(pipeline: Pipeline) -> str:
    from meta.yaml_export import pipeline_to_yaml as export

    return export(pipeline)


def json_schema() -> dict[str, Any]:
    from meta.schema import json_schema as schema

    return schema()


# ---------------------------------------------------------------------------------------------- files


def _uses_dsl(path: Path) -> bool:
    try:
        return "meta.dsl" in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _load_one(path: Path) -> tuple[list[Pipeline], list[Problem]]:
    if path.suffix == ".py":
        from meta.dsl import load_python_file

        try:
            return load_python_file(path), []
        except ValidationFailed as exc:
            return [], exc.problems
    if path.suffix not in YAML_SUFFIXES:
        return [], [Problem(f"unsupported file type {path.suffix!r}; expected .yaml, .yml or .py", file=str(path))]
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Problem(f"cannot read file: {exc}", file=str(path))]
    return _load_yaml(text, str(path))


def _load_yaml(text: str, file: str) -> tuple[list[Pipeline], list[Problem]]:
    docs, problems = yamlpos.compose_all(text, file)
    pipelines: list[Pipeline] = []
    for doc in docs:
        builder = yamlpos.Builder(file)
        value = builder.value(doc.node)
        problems.extend(builder.problems)
        for unit in _units(doc.node, value, file, problems):
            pipeline, unit_problems = build(unit)
            problems.extend(unit_problems)
            if pipeline is not None:
                pipelines.append(pipeline)
    if not docs and not problems:
        problems.append(Problem("the file holds no pipeline (it is empty)", file=file, line=1, col=1))
    return pipelines, problems


def _units(node: Node, value: Any, file: str, problems: list[Problem]) -> list[Unit]:
    """Split one document into pipelines: a single pipeline, ``pipelines: [...]``, or ``generate:`` + ``template:``."""
    if isinstance(value, dict) and ("generate" in value or "template" in value):
        from meta.generate import expand

        units, gen_problems = expand(node, value, file)
        problems.extend(gen_problems)
        return units
    if isinstance(value, dict) and "pipelines" in value:
        extra = [k for k in value if k != "pipelines"]
        if extra:
            key_node, _, _ = yamlpos.find(node, [extra[0]])
            line, col = yamlpos.mark_of(key_node)
            problems.append(
                Problem(f"a file with 'pipelines:' holds only that list; found also {extra}", file, line, col)
            )
        items = value["pipelines"]
        seq, _, _ = yamlpos.find(node, ["pipelines"])
        if not isinstance(items, list):
            line, col = yamlpos.mark_of(seq)
            problems.append(Problem("'pipelines:' must be a list of pipeline mappings", file, line, col))
            return []
        return [Unit(seq.value[i], item, file) for i, item in enumerate(items)]
    return [Unit(node, value, file)]


# ---------------------------------------------------------------------------------------------- one pipeline


def build(unit: Unit) -> tuple[Pipeline | None, list[Problem]]:
    """Validate one authoring mapping into a Pipeline, or return all of its problems."""
    model, issues = authoring.normalize(unit.value)
    pid = model.get("id") if isinstance(model.get("id"), str) else None
    locate = _Locator(unit, pid)
    problems = [locate.issue(i) for i in issues]
    problems.extend(locate.issue(i) for i in _op_issues(model))
    pipeline: Pipeline | None = None
    try:
        pipeline = Pipeline.model_validate(model)
    except ValidationError as exc:
        structural_seen = False
        for err in exc.errors():
            inner = (err.get("ctx") or {}).get("error")
            if isinstance(inner, ValidationFailed):
                structural_seen = True
                problems.extend(locate.structural(p) for p in inner.problems)
            else:
                problems.append(locate.pydantic(err, model))
        if not structural_seen:  # field errors stopped pydantic before the whole-pipeline checks: run them here
            problems.extend(locate.structural(p) for p in _raw_structure(model))
    if problems:
        return None, _dedupe(problems)
    assert pipeline is not None
    line, _ = yamlpos.mark_of(unit.node)
    record_source(pipeline.id, unit.file, line or 1)
    return pipeline, []


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    out = []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


class _Locator:
    """Turns authoring paths, pydantic errors and structural problems into Problems with file:line:col."""

    def __init__(self, unit: Unit, pipeline: str | None) -> None:
        self.unit, self.pipeline = unit, pipeline

    def at(self, path: authoring.Path, message: str, at_key: bool = False) -> Problem:
        node, key_node, depth = yamlpos.find(self.unit.node, path)
        # A path that does not fully exist (a missing field) points at the deepest part that does.
        target = key_node if at_key and depth == len(path) and key_node is not None else node
        line, col = yamlpos.mark_of(target)
        task = str(path[1]) if len(path) >= 2 and path[0] == "tasks" else None
        return Problem(message + self.unit.origin, self.unit.file, line, col, self.pipeline, task)

    def issue(self, issue: authoring.Issue) -> Problem:
        return self.at(issue.path, issue.message, issue.at_key)

    def pydantic(self, err: Any, model: dict[str, Any]) -> Problem:
        path = authoring.authoring_path(tuple(err["loc"]), model, self.unit.value)
        # Name the field relative to its task (or the pipeline) so the message reads "retry_delay: ...".
        shown = path[2:] if len(path) >= 2 and path[0] == "tasks" else path
        label = ".".join(str(p) for p in shown)
        message = describe_error(err, secret=any(SECRET_KEY.search(str(p)) for p in path))
        return self.at(path, f"{label}: {message}" if label else message, at_key=err["type"] == "extra_forbidden")

    def structural(self, problem: Problem) -> Problem:
        task = problem.task
        path: tuple[Any, ...] = ("tasks", task) if task else ()
        if task and problem.message.startswith("upstream"):
            path = ("tasks", task, "upstream")
        elif task and "holds a literal credential" in problem.message:
            dotted = tuple(problem.message.split(" ", 1)[0].split("."))
            path = self._deepest([("tasks", task, *dotted), *(("tasks", task, k, *dotted) for k in _ACTIONS)])
        elif not task and "holds a literal credential" in problem.message:
            path = tuple(problem.message.split(" ", 1)[0].split("."))
        elif problem.message.startswith("end_date"):
            path = ("end_date",)
        return self.at(path, problem.message, at_key=bool(task) and len(path) == 2)

    def _deepest(self, candidates: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        return max(candidates, key=lambda p: yamlpos.find(self.unit.node, p)[2])


_ACTIONS = ("shell", "python", "sql", "branch", "airflow_operator")


def describe_error(err: Any, secret: bool = False) -> str:
    """One pydantic error as 'what is wrong; expected ...; received ...', never echoing a credential."""
    kind, msg, ctx = err["type"], err["msg"], err.get("ctx") or {}
    received = "(a value that is not shown)" if secret else repr(err.get("input"))
    if kind == "value_error":
        text = str(ctx.get("error", msg))
        return text if not secret else "invalid value (not shown)"
    if kind == "missing":
        return "missing required field"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "string_pattern_mismatch":
        expected = _PATTERN_HELP.get(ctx.get("pattern", ""), f"to match {ctx.get('pattern')!r}")
        return f"expected {expected}; received {received}"
    if kind == "enum" or kind == "literal_error":
        return f"expected one of {ctx.get('expected')}; received {received}"
    msg = re.sub(r"^Input should be ", "expected ", msg)
    return f"{msg}; received {received}"


# ---------------------------------------------------------------------------------------------- extra checks


def _op_issues(model: dict[str, Any]) -> list[authoring.Issue]:
    """``op:`` names must be registered op types; their ``with:`` must fit the op's options model."""
    op_tasks = [t for t in model.get("tasks") or () if isinstance(t, dict) and t.get("action", {}).get("kind") == "op"]
    if not op_tasks:
        return []
    from meta.plugins import ops

    registry = ops()
    issues: list[authoring.Issue] = []
    for task in op_tasks:
        action, tid = task["action"], task["id"]
        name = action.get("op")
        op = registry.get(name) if isinstance(name, str) else None
        if op is None:
            available = ", ".join(sorted(registry)) or "none registered"
            issues.append(
                authoring.Issue(
                    ("tasks", tid, "op"),
                    f"unknown op type {name!r}{did_you_mean(str(name), list(registry))}; available: {available}",
                )
            )
            continue
        if op.options is not None and isinstance(action.get("with"), dict):
            issues.extend(_options_issues(op.options, action["with"], ("tasks", tid, "with")))
    return issues


def _options_issues(options: type[BaseModel], with_: dict[str, Any], base: tuple[Any, ...]) -> list[authoring.Issue]:
    try:
        options.model_validate(with_)
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            path = (*base, *loc)
            message = describe_error(err, secret=any(SECRET_KEY.search(str(p)) for p in loc))
            label = ".".join(str(p) for p in ("with", *loc))
            out.append(authoring.Issue(path, f"{label}: {message}", at_key=err["type"] == "extra_forbidden"))
        return out
    return []


def _raw_structure(model: dict[str, Any]) -> list[Problem]:
    """The whole-pipeline checks of ``meta.validate`` on the raw translated input, for when field errors kept
    pydantic from reaching them (so a file with a bad cron *and* a cycle reports both)."""
    pid = model.get("id") if isinstance(model.get("id"), str) else None
    tasks = [t for t in model.get("tasks") or () if isinstance(t, dict)]
    ids = [str(t["id"]) for t in tasks]
    known = set(ids)
    graph: dict[str, list[str]] = {}
    problems: list[Problem] = []
    for task in tasks:
        tid = str(task["id"])
        ups = [str(u) for u in task.get("upstream") or () if isinstance(u, str | int)]
        graph[tid] = [u for u in ups if u in known and u != tid]
        for up in ups:
            if up == tid:
                problems.append(Problem(f"task depends on itself (cycle: {up} -> {up})", pipeline=pid, task=tid))
            elif up not in known:
                problems.append(
                    Problem(
                        f"upstream {up!r} is not a task of this pipeline{did_you_mean(up, ids)}", pipeline=pid, task=tid
                    )
                )
        action = {k: v for k, v in (task.get("action") or {}).items() if k != "kind"}
        for path, _ in literal_secrets(action):
            problems.append(Problem(secret_message(path), pipeline=pid, task=tid))
        for path, _ in literal_secrets(task.get("params") or {}, ("params",)):
            problems.append(Problem(secret_message(path), pipeline=pid, task=tid))
    for name, param in (model.get("params") or {}).items():
        if isinstance(param, dict) and "default" in param:
            for path, _ in literal_secrets({name: param["default"]}, ("params",)):
                problems.append(Problem(secret_message(path), pipeline=pid))
    cycle = find_cycle(graph)
    if cycle:
        problems.append(Problem(f"dependency cycle: {' -> '.join(cycle)}", pipeline=pid, task=cycle[0]))
    return problems
