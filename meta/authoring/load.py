"""Load pipelines from YAML (and Python DSL) files, reporting every problem with file:line:col.

The flow for one YAML document: compose nodes (``meta.authoring.yamlpos``) -> build values -> expand ``generate:``
templates (``meta.authoring.generate``) -> translate the authoring form (``meta.authoring.form``) ->
``Pipeline.model_validate``
-> check ``op:`` names and their ``with:`` against the registered op types. Problems from every stage are
collected and raised together as one ``ValidationFailed``; a pipeline with any problem is never returned.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from yaml.nodes import Node

from meta.authoring import yamlpos
from meta.authoring.build import YamlUnit, build, record_source, source_of
from meta.spec.errors import Problem, ValidationFailed
from meta.spec.model import Pipeline

YAML_SUFFIXES = (".yaml", ".yml")
# JSON is YAML 1.2, so a .json spec loads the same way; directories are not searched for it because generators
# read their entries from .json files that sit next to the specs.
EXPLICIT_SUFFIXES = (*YAML_SUFFIXES, ".json")
__all__ = [
    "discover",
    "json_schema",
    "load_file",
    "load_paths",
    "loads",
    "pipeline_to_yaml",
    "record_source",
    "source_of",
]


# ---------------------------------------------------------------------------------------------- public API


def loads(text: str, filename: str = "<string>") -> list[Pipeline]:
    """Load every pipeline of one YAML text (one or more documents). Raises ValidationFailed listing all problems."""
    pipelines, problems = _load_yaml(text, filename)
    if problems:
        raise ValidationFailed(problems)
    return pipelines


def load_file(path: str | Path) -> list[Pipeline]:
    """Load a .yaml/.yml/.json file or a .py module written with ``meta.authoring.dsl``."""
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
            where = source_of(p.id) or (str(path), 0)
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


def pipeline_to_yaml(pipeline: Pipeline) -> str:
    from meta.authoring.yaml_writer import pipeline_to_yaml as export

    return export(pipeline)


def json_schema() -> dict[str, Any]:
    from meta.authoring.schema import json_schema as schema

    return schema()


# ---------------------------------------------------------------------------------------------- files


def _uses_dsl(path: Path) -> bool:
    try:
        return "meta.dsl" in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _load_one(path: Path) -> tuple[list[Pipeline], list[Problem]]:
    if path.suffix == ".py":
        from meta.authoring.dsl import load_python_file

        try:
            return load_python_file(path), []
        except ValidationFailed as exc:
            return [], exc.problems
    if path.is_dir():
        return [], [Problem("is a directory; load_paths (or `meta validate DIR`) searches directories", str(path))]
    if path.suffix not in EXPLICIT_SUFFIXES:
        expected = "expected .yaml, .yml, .json or .py"
        return [], [Problem(f"unsupported file type {path.suffix!r}; {expected}", file=str(path))]
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark is not part of the YAML
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Problem(f"cannot read file: {exc}", file=str(path))]
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


def _load_yaml(text: str, file: str) -> tuple[list[Pipeline], list[Problem]]:
    with _gc_paused():
        pipelines, problems = _load_yaml_text(text, file)
    return pipelines, in_file_order(problems)


def in_file_order(problems: list[Problem]) -> list[Problem]:
    """Problems by file, then line and column, as an author reads the file (ties keep their order)."""
    return sorted(problems, key=lambda p: (p.file or "", p.line is None, p.line or 0, p.col or 0))


def _load_yaml_text(text: str, file: str) -> tuple[list[Pipeline], list[Problem]]:
    docs, problems = yamlpos.compose_all(text, file)
    pipelines: list[Pipeline] = []
    first_line: dict[str, int] = {}
    for doc in docs:
        builder = yamlpos.Builder(file)
        value = builder.value(doc.node)
        problems.extend(builder.problems)
        for unit in _units(doc.node, value, file, problems):
            pipeline, unit_problems = build(unit, record=False)
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
    if not problems:
        for p in pipelines:
            record_source(p.id, file, first_line[p.id])
    if not docs and not problems:
        problems.append(Problem("the file holds no pipeline (it is empty)", file=file, line=1, col=1))
    return pipelines, problems


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
