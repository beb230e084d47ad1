"""One authoring mapping -> a validated Pipeline, or every problem it has, each with file:line:col.

Shared by the YAML loader and the Python DSL: both hand over the authoring mapping plus a ``Unit`` that knows
where each authoring path was written (a YAML node, or the line of a DSL call), and both return ``Loaded``: the
pipelines with where each was defined (no process-wide registry, so concurrent loads never see each other's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError
from yaml.nodes import Node

from meta.authoring import form, yamlpos
from meta.spec.checks import SECRET_KEY, TaskShape, did_you_mean, graph_problems
from meta.spec.errors import Problem, ValidationFailed
from meta.spec.model import CALLABLE_PATTERN, CHANNEL_PATTERN, DATASET_PATTERN, IDENTIFIER_PATTERN, Pipeline

_PATTERN_HELP = {
    IDENTIFIER_PATTERN: "an id of letters, digits, '_', '.' and '-' (Airflow's rule)",
    CALLABLE_PATTERN: "a callable written 'package.module:function'",
    CHANNEL_PATTERN: "a channel written '<kind>:<name>', e.g. 'slack:data-team'",
    DATASET_PATTERN: "a dataset URI, e.g. 'postgres://warehouse/public.sales'",
}
Where = tuple[str, int | None, int | None, int]  # file, line, col, how many path elements were found


class Source(NamedTuple):
    """Where a pipeline was defined: its file and the line of ``pipeline:`` (or of the DSL's ``pipeline(...)``)."""

    file: str
    line: int


@dataclass
class Loaded:
    """What one load found: the pipelines in load order and where each was defined, by pipeline id (for
    ``meta list``, duplicate-id messages, and messages of later stages that point back at the spec)."""

    pipelines: list[Pipeline] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)

    def source_of(self, pipeline_id: str) -> Source | None:
        return self.sources.get(pipeline_id)

    def add(self, pipeline: Pipeline, source: Source) -> None:
        """Append ``pipeline``; a repeated id keeps the first source (the caller reports the duplicate)."""
        self.pipelines.append(pipeline)
        self.sources.setdefault(pipeline.id, source)


def in_file_order(problems: list[Problem]) -> list[Problem]:
    """Problems by file, then line and column, as an author reads the file (ties keep their order)."""
    return sorted(problems, key=lambda p: (p.file or "", p.line is None, p.line or 0, p.col or 0))


@dataclass
class Unit:
    """One pipeline's authoring mapping and, if it was generated, from what."""

    value: Any
    origin: str = ""  # e.g. " (generated for entry 1: {'country': 'DE'})"

    def where(self, path: form.Path, at_key: bool = False) -> Where:
        raise NotImplementedError

    def source(self) -> Source:
        file, line, _, _ = self.where(())
        return Source(file, line or 1)


class YamlUnit(Unit):
    """A unit read from YAML: positions come from walking its node tree (only when a problem needs one)."""

    def __init__(self, value: Any, node: Node, file: str, origin: str = "") -> None:
        super().__init__(value, origin)
        self.node, self.file = node, file

    def where(self, path: form.Path, at_key: bool = False) -> Where:
        node, key_node, depth = yamlpos.find(self.node, path)
        # A path that does not fully exist (a missing field) points at the deepest part that does.
        target = key_node if at_key and depth == len(path) and key_node is not None else node
        line, col = yamlpos.mark_of(target)
        return self.file, line, col, depth


def build(unit: Unit) -> tuple[Pipeline | None, list[Problem]]:
    """Validate one authoring mapping into a Pipeline, or return all of its problems (``unit.source()`` says where
    the pipeline was defined)."""
    model, issues = form.normalize(unit.value)
    pid = model.get("id") if isinstance(model.get("id"), str) else None
    locate = _Locator(unit, pid)
    problems = [locate.issue(i) for i in issues]
    problems.extend(locate.issue(i) for i in _op_issues(model))
    problems.extend(_read_sql_files(model, unit, locate))
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
            elif not _already_reported(err, model):
                problems.append(locate.pydantic(err, model))
        if not structural_seen:  # field errors stopped pydantic before the whole-pipeline checks: run them here
            problems.extend(locate.structural(p) for p in _raw_structure(model))
    if problems:
        return None, _dedupe(problems)
    assert pipeline is not None
    return pipeline, []


def _read_sql_files(model: dict[str, Any], unit: Unit, locate: _Locator) -> list[Problem]:
    """``sql: {file: x.sql}``: read the file, relative to the spec file's folder, into ``statement`` (what every
    backend runs); a file that cannot be read is a problem at the ``file:`` line (docs/adr/0010-sql-files.md)."""
    from pathlib import Path

    problems: list[Problem] = []
    folder = Path(unit.source().file).parent
    for task in model.get("tasks") or []:
        action = task.get("action") if isinstance(task, dict) else None
        if not isinstance(action, dict) or action.get("kind") != "sql" or not action.get("file"):
            continue
        if "statement" in action:
            problems.append(
                locate.at(("tasks", task.get("id"), "sql", "file"), "give sql 'file' or 'statement', not both")
            )
            continue
        path = folder / str(action["file"])
        try:
            action["statement"] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = "no such file" if isinstance(exc, FileNotFoundError) else f"{type(exc).__name__}: {exc}"
            problems.append(
                locate.at(
                    ("tasks", task.get("id"), "sql", "file"),
                    f"sql file {action['file']!r} cannot be read ({reason}; looked for {path}, relative to the spec)",
                )
            )
    return problems


def _already_reported(err: Any, model: dict[str, Any]) -> bool:
    """Pydantic errors that only echo a problem the authoring step reported more clearly."""
    loc = tuple(err["loc"])
    if err["type"] == "missing" and loc in (("id",), ("tasks",)):
        return True  # "missing 'pipeline:'" / "missing 'tasks:'" were reported with an example
    # A tuple counts its valid items: one bad task makes pydantic add "tasks: should have at least 1 item".
    return err["type"] == "too_short" and loc == ("tasks",) and bool(model.get("tasks"))


def _dedupe(problems: list[Problem]) -> list[Problem]:
    """Drop repeats (a problem can reach us both from pydantic and from the raw-input checks)."""
    seen: set[Problem] = set()
    out = []
    for p in problems:
        if p in seen:
            continue
        seen.add(p)
        out.append(p)
    return out


class _Locator:
    """Turns authoring paths, pydantic errors and structural problems into Problems with file:line:col."""

    def __init__(self, unit: Unit, pipeline: str | None) -> None:
        self.unit, self.pipeline = unit, pipeline

    def at(self, path: form.Path, message: str, at_key: bool = False) -> Problem:
        file, line, col, _ = self.unit.where(path, at_key)
        task = str(path[1]) if len(path) >= 2 and path[0] == "tasks" else None
        return Problem(message + self.unit.origin, file, line, col, self.pipeline, task)

    def issue(self, issue: form.Issue) -> Problem:
        return self.at(issue.path, issue.message, issue.at_key)

    def pydantic(self, err: Any, model: dict[str, Any]) -> Problem:
        path = form.authoring_path(tuple(err["loc"]), model, self.unit.value)
        # Name the field relative to its task (or the pipeline) so the message reads "retry_delay: ...".
        shown = path[2:] if len(path) >= 2 and path[0] == "tasks" else path
        label = ".".join(str(p) for p in shown)
        message = describe_error(err, secret=any(SECRET_KEY.search(str(p)) for p in path))
        return self.at(path, f"{label}: {message}" if label else message, at_key=err["type"] == "extra_forbidden")

    def structural(self, problem: Problem) -> Problem:
        task = problem.task
        path: tuple[Any, ...] = ("tasks", task) if task else ()
        if task and problem.message.startswith(("upstream", "task depends on itself")):
            path = self._upstream_item(task, _UPSTREAM_NAME.match(problem.message))
        elif task and "holds a literal credential" in problem.message:
            dotted = tuple(problem.message.split(" ", 1)[0].split("."))
            path = self._deepest([("tasks", task, *dotted), *(("tasks", task, k, *dotted) for k in _ACTIONS)])
        elif not task and "holds a literal credential" in problem.message:
            path = tuple(problem.message.split(" ", 1)[0].split("."))
        elif problem.message.startswith("end_date"):
            path = ("end_date",)
        return self.at(path, problem.message, at_key=bool(task) and len(path) == 2)

    def _upstream_item(self, task: str, named: re.Match[str] | None) -> tuple[Any, ...]:
        """Point at the offending entry of ``upstream: [...]`` when it can be found."""
        wanted = named.group(1) if named else task
        fields = ((self.unit.value or {}).get("tasks") or {}).get(task) if isinstance(self.unit.value, dict) else None
        ups = fields.get("upstream") if isinstance(fields, dict) else None
        if isinstance(ups, list):
            for i, up in enumerate(ups):
                if str(up) == wanted:
                    return ("tasks", task, "upstream", i)
        return ("tasks", task, "upstream")

    def _deepest(self, candidates: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        return max(candidates, key=lambda p: self.unit.where(p)[3])


_UPSTREAM_NAME = re.compile(r"^upstream '([^']*)'")
_ACTIONS = ("shell", "python", "sql", "branch", "airflow_operator")


def describe_error(err: Any, secret: bool = False) -> str:
    """One pydantic error as 'what is wrong; expected ...; received ...', never echoing a credential."""
    kind, msg, ctx = err["type"], err["msg"], err.get("ctx") or {}
    received = "(a value that is not shown)" if secret else repr(err.get("input"))
    if kind == "value_error":
        text = str(ctx.get("error", msg))
        return text if not secret else "invalid value (not shown)"
    if kind == "too_short" and err["loc"] and err["loc"][-1] == "tasks":
        return "a pipeline needs at least one task"
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
    msg = re.sub(r" or instance of \w+", "", msg)  # pydantic's Python-side wording means nothing in YAML
    return f"{msg}; received {received}"


# ---------------------------------------------------------------------------------------------- extra checks


def _op_issues(model: dict[str, Any]) -> list[form.Issue]:
    """``op:`` names must be registered op types; their ``with:`` must fit the op's options model."""
    op_tasks = [t for t in model.get("tasks") or () if isinstance(t, dict) and t.get("action", {}).get("kind") == "op"]
    if not op_tasks:
        return []
    from meta.plugins.manager import ops

    registry = ops()
    issues: list[form.Issue] = []
    for task in op_tasks:
        action, tid = task["action"], task["id"]
        name = action.get("op")
        op = registry.get(name) if isinstance(name, str) else None
        if op is None:
            available = ", ".join(sorted(registry)) or "none registered"
            issues.append(
                form.Issue(
                    ("tasks", tid, "op"),
                    f"unknown op type {name!r}{did_you_mean(str(name), list(registry))}; available: {available}",
                )
            )
            continue
        if op.options is not None and isinstance(action.get("with"), dict):
            issues.extend(_options_issues(op.options, action["with"], ("tasks", tid, "with")))
    return issues


def _options_issues(options: type[BaseModel], with_: dict[str, Any], base: tuple[Any, ...]) -> list[form.Issue]:
    try:
        options.model_validate(with_)
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            path = (*base, *loc)
            message = describe_error(err, secret=any(SECRET_KEY.search(str(p)) for p in loc))
            label = ".".join(str(p) for p in ("with", *loc))
            out.append(form.Issue(path, f"{label}: {message}", at_key=err["type"] == "extra_forbidden"))
        return out
    return []


def _raw_structure(model: dict[str, Any]) -> list[Problem]:
    """The whole-pipeline checks of ``meta.spec.checks`` on the raw translated input, for when field errors kept
    pydantic from reaching them (so a file with a bad cron *and* a cycle reports both)."""
    pid = model.get("id") if isinstance(model.get("id"), str) else None
    shapes = []
    for task in model.get("tasks") or ():
        if not isinstance(task, dict):
            continue
        raw_ups = task.get("upstream")
        ups = [str(u) for u in raw_ups if isinstance(u, str | int)] if isinstance(raw_ups, list) else []
        raw_action, raw_params = task.get("action"), task.get("params")
        # Field errors already report a non-mapping action or params; the whole-pipeline checks skip them.
        action = {k: v for k, v in raw_action.items() if k != "kind"} if isinstance(raw_action, dict) else {}
        params = raw_params if isinstance(raw_params, dict) else {}
        shapes.append(TaskShape(str(task["id"]), ups, action, params))
    defaults = {
        name: param["default"]
        for name, param in (model.get("params") or {}).items()
        if isinstance(param, dict) and "default" in param
    }
    return graph_problems(pid, shapes, defaults)
