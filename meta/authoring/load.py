"""Load pipelines from YAML (and Python DSL) files, reporting every problem with file:line:col.

The flow for one YAML document: compose nodes (``meta.authoring.yamlpos``) -> build values -> expand ``generate:``
templates (``meta.authoring.generate``) -> translate the authoring form (``meta.authoring.form``) ->
``Pipeline.model_validate`` -> check ``op:`` names and their ``with:`` against the registered op types. Problems
from every stage are collected and raised together as one ``ValidationFailed``; a pipeline with any problem is never
returned.

``loads`` / ``load_file`` / ``load_paths`` return the pipelines; their ``*_with_sources`` twins return a ``Loaded``
that also says where each pipeline was defined (nothing about a load is kept in the process).

Which ``.py`` files run: a file the caller names is a pipeline file and is executed (``meta.authoring.dsl``); a
``.py`` file met while walking a directory is executed only when its syntax tree imports the DSL (``uses_dsl``).
"""

from __future__ import annotations

import ast
import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from yaml.nodes import Node

from meta.authoring import yamlpos
from meta.authoring.build import Loaded, Source, YamlUnit, build, in_file_order
from meta.spec.errors import Problem, ValidationFailed
from meta.spec.model import Pipeline

YAML_SUFFIXES = (".yaml", ".yml")
# JSON is YAML 1.2, so a .json spec loads the same way; directories are not searched for it because generators
# read their entries from .json files that sit next to the specs.
EXPLICIT_SUFFIXES = (*YAML_SUFFIXES, ".json")
__all__ = [
    "Loaded",
    "Source",
    "discover",
    "json_schema",
    "load_file",
    "load_file_with_sources",
    "load_paths",
    "load_paths_with_sources",
    "loads",
    "loads_with_sources",
    "pipeline_to_yaml",
    "uses_dsl",
]


# ---------------------------------------------------------------------------------------------- public API


def loads(text: str, filename: str = "<string>") -> list[Pipeline]:
    """Load every pipeline of one YAML text (one or more documents). Raises ValidationFailed listing all problems."""
    return loads_with_sources(text, filename).pipelines


def load_file(path: str | Path) -> list[Pipeline]:
    """Load a .yaml/.yml/.json file or a .py module written with ``meta.dsl``."""
    return load_file_with_sources(path).pipelines


def load_paths(paths: Iterable[str | Path]) -> list[Pipeline]:
    """Load files and directories; collect the problems of all of them and raise once."""
    return load_paths_with_sources(paths).pipelines


def loads_with_sources(text: str, filename: str = "<string>") -> Loaded:
    """``loads``, with where each pipeline was defined."""
    loaded, problems = _load_yaml(text, filename)
    if problems:
        raise ValidationFailed(problems)
    return loaded


def load_file_with_sources(path: str | Path) -> Loaded:
    """``load_file``, with where each pipeline was defined."""
    loaded, problems = _load_one(Path(path))
    if problems:
        raise ValidationFailed(problems)
    return loaded


def load_paths_with_sources(paths: Iterable[str | Path]) -> Loaded:
    """``load_paths``, with where each pipeline was defined."""
    found = Loaded()
    problems: list[Problem] = []
    for path in discover(paths, problems):
        loaded, file_problems = _load_one(path)
        problems.extend(file_problems)
        for p in loaded.pipelines:
            where = loaded.source_of(p.id) or Source(str(path), 0)
            first = found.source_of(p.id)
            if first is not None:
                problems.append(
                    Problem(
                        f"duplicate pipeline id {p.id!r}: already defined at {first.file}:{first.line}; "
                        "pipeline ids must be unique",
                        file=where.file,
                        line=where.line or None,
                        pipeline=p.id,
                    )
                )
                continue
            found.add(p, where)
    problems.extend(_cycle_problems(found))
    if problems:
        raise ValidationFailed(problems)
    return found


def _cycle_problems(found: Loaded) -> list[Problem]:
    """Pipelines that wait for each other through ``depends_on``: none of them could ever start."""
    from meta.spec.checks import dependency_cycles

    edges = {p.id: [d.pipeline for d in p.depends_on] for p in found.pipelines if p.depends_on}
    out = []
    for cycle in dependency_cycles(edges):
        where = found.source_of(cycle[0])
        out.append(
            Problem(
                f"depends_on forms a cycle: {' -> '.join(cycle)} (each waits for the one before it, so none "
                "would ever start); remove one of these dependencies",
                file=where.file if where else None,
                line=(where.line or None) if where else None,
                pipeline=cycle[0],
            )
        )
    return out


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
                if child.suffix in YAML_SUFFIXES or (child.suffix == ".py" and uses_dsl(child)):
                    out.append(child)
        elif path.is_file():
            out.append(path)
        elif problems is not None:
            problems.append(Problem("no such file or directory", file=str(path)))
        else:
            raise ValidationFailed([Problem("no such file or directory", file=str(path))])
    return out


def pipeline_to_yaml(pipeline: Pipeline) -> str:
    from meta.authoring.yaml_writer import pipeline_to_yaml as export

    return export(pipeline)


def json_schema() -> dict[str, Any]:
    from meta.authoring.schema import json_schema as schema

    return schema()


# ---------------------------------------------------------------------------------------------- files


# The modules a DSL spec file imports the DSL from (``meta.dsl`` is the public one).
DSL_MODULES = frozenset({"meta.dsl", "meta.authoring.dsl"})


def uses_dsl(path: Path) -> bool:
    """Does this ``.py`` file import the DSL (``from meta.dsl import ...``, ``import meta.dsl as d``,
    ``from meta import dsl``, or the same from ``meta.authoring``)? Decided from its syntax tree, so a comment or a
    string that mentions ``meta.dsl`` does not make a directory walk execute a file.

    A file that does not parse cannot run any code; it counts when its text names the DSL, so the author sees the
    syntax error instead of the file being silently skipped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    try:
        tree = ast.parse(text, filename=str(path))
    except (SyntaxError, ValueError):  # ValueError: null bytes
        return "meta.dsl" in text or "meta import dsl" in text
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(alias.name in DSL_MODULES for alias in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            if node.module in DSL_MODULES:
                return True
            if any(f"{node.module}.{alias.name}" in DSL_MODULES for alias in node.names):
                return True
    return False


def _load_one(path: Path) -> tuple[Loaded, list[Problem]]:
    if path.suffix == ".py":
        from meta.authoring.dsl import load_python_file_with_sources

        try:
            return load_python_file_with_sources(path), []
        except ValidationFailed as exc:
            return Loaded(), exc.problems
    if path.is_dir():
        hint = "is a directory; load_paths (or `meta validate DIR`) searches directories"
        return Loaded(), [Problem(hint, str(path))]
    if path.suffix not in EXPLICIT_SUFFIXES:
        expected = "expected .yaml, .yml, .json or .py"
        return Loaded(), [Problem(f"unsupported file type {path.suffix!r}; {expected}", file=str(path))]
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark is not part of the YAML
    except (OSError, UnicodeDecodeError) as exc:
        return Loaded(), [Problem(f"cannot read file: {exc}", file=str(path))]
    return _load_yaml(text, str(path))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a file is parsed and validated.

    Loading allocates many short-lived containers (nodes, dicts, models) and none of them form reference cycles,
    so reference counting frees them; the collector would only re-scan them (and every pipeline loaded so far)
    again and again. Pausing it makes loading ~30% faster (bench/bench_load.py). Python code of DSL spec files
    never runs while it is paused.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load_yaml(text: str, file: str) -> tuple[Loaded, list[Problem]]:
    with _gc_paused():
        loaded, problems = _load_yaml_text(text, file)
    return loaded, in_file_order(problems)


def _load_yaml_text(text: str, file: str) -> tuple[Loaded, list[Problem]]:
    docs, problems = yamlpos.compose_all(text, file)
    pipelines: list[Pipeline] = []
    first_line: dict[str, int] = {}
    for doc in docs:
        builder = yamlpos.Builder(file)
        value = builder.value(doc.node)
        problems.extend(builder.problems)
        for unit in _units(doc.node, value, file, problems):
            pipeline, unit_problems = build(unit)
            problems.extend(unit_problems)
            if pipeline is None:
                continue
            _, line = unit.source()
            if pipeline.id in first_line:
                problems.append(
                    Problem(
                        f"duplicate pipeline id {pipeline.id!r}: first defined at line {first_line[pipeline.id]}; "
                        f"pipeline ids must be unique{unit.origin}",
                        file,
                        line,
                        pipeline=pipeline.id,
                    )
                )
                continue
            first_line[pipeline.id] = line
            pipelines.append(pipeline)
    if not docs and not problems:
        problems.append(Problem("the file holds no pipeline (it is empty)", file=file, line=1, col=1))
    # The valid pipelines come back even beside problems: load_paths still reports their ids clashing across files.
    return Loaded(pipelines, {p.id: Source(file, first_line[p.id]) for p in pipelines}), problems


def _units(node: Node, value: Any, file: str, problems: list[Problem]) -> list[YamlUnit]:
    """Split one document into pipelines: a single pipeline, ``pipelines: [...]``, or ``generate:`` + ``template:``."""
    if isinstance(value, dict) and ("generate" in value or "template" in value):
        from meta.authoring.generate import expand

        units, gen_problems = expand(node, value, file)
        problems.extend(gen_problems)
        return units
    if isinstance(value, dict) and "pipelines" in value:
        extra = [k for k in value if k != "pipelines"]
        if extra:
            _, key_node, _ = yamlpos.find(node, [extra[0]])
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
        return [YamlUnit(item, seq.value[i], file) for i, item in enumerate(items)]
    return [YamlUnit(value, node, file)]
