"""SQL operators -> ``sql`` tasks. A ``sql="file.sql"`` template file (found as Airflow finds it: the DAG file's
folder, then the DAG's ``template_searchpath``) stays a file: the task names it (``file: sql/<dag id>/file.sql``,
relative to the spec) and the import returns it as a ``meta.ImportedFile`` written beside the spec (docs/adr/0010).
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path, PurePosixPath
from typing import Any

from meta import ImportedFile
from meta_airflow.import_results import with_references
from meta_airflow.import_values import ImportRefused, init_kwargs, jsonable

# Template names meta renders in a sql task (meta.semantics.context.RunContext.template_vars).
META_TEMPLATE_NAMES = frozenset(
    {
        "pipeline_id",
        "dag_id",
        "task_id",
        "run_id",
        "logical_date",
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "data_interval_start",
        "data_interval_end",
        "params",
        "try_number",
        "backend",
        "tasks",
    }
)
# The first name of each ``{{ ... }}``; ``ti.xcom_pull`` is import_results.py's (a result reference, or a note).
_EXPRESSION = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)(\.xcom_pull)?")
# SQLExecuteQueryOperator arguments meta's sql task has no field for, with Airflow's defaults.
UNMAPPED_SQL_ARGS = {"autocommit": False, "database": None, "return_last": True, "hook_params": None, "handler": None}


def template_file(op: Any, dag: Any, cache: dict[str, dict[str, str]] | None = None) -> tuple[str, Path] | None:
    """(the name, the file) of the ``.sql`` template file a SQL operator's ``sql`` was read from, or None (inline).

    Airflow reads template files while parsing and keeps only their text (in ``op.sql`` and in the operator's init
    arguments alike), so the file is found as Airflow's Jinja loader found it (the DAG file's folder, then
    ``template_searchpath``) among the ``.sql`` files there whose text is exactly ``op.sql``; the ``sql="..."``
    literal of the task's call in the DAG file decides between several."""
    text = op.sql
    if not isinstance(text, str):
        return None
    searchpath = getattr(dag, "template_searchpath", None) or []
    folders = [getattr(dag, "folder", None), *([searchpath] if isinstance(searchpath, str) else list(searchpath))]
    named = _sql_literal(getattr(dag, "fileloc", None), op.task_id)
    for folder in [f for f in folders if f]:
        if named and (Path(folder) / named).is_file() and _read(Path(folder) / named) == text:
            return named, Path(folder) / named
    for folder in [f for f in folders if f]:
        cache = cache if cache is not None else {}
        if str(folder) not in cache:
            cache[str(folder)] = _sql_files(str(folder))
        found = cache[str(folder)].get(text)
        if found:
            return found, Path(folder) / found
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")  # as Jinja's loader reads it (no newline translation)
    except (OSError, UnicodeDecodeError):
        return None


def _sql_files(folder: str, limit: int = 5000) -> dict[str, str]:
    """The text of each ``.sql`` file under ``folder`` -> its path relative to it (the first in sorted order)."""
    out: dict[str, str] = {}
    for path in sorted(itertools.islice(Path(folder).rglob("*.sql"), limit)):
        text = _read(path)
        if text is not None:
            out.setdefault(text, path.relative_to(folder).as_posix())
    return out


def _sql_literal(fileloc: str | None, task_id: str) -> str | None:
    """The ``sql="x.sql"`` literal of the call with ``task_id="<task_id>"`` in the DAG file."""
    if not fileloc:
        return None
    try:
        tree = ast.parse(Path(fileloc).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        tid, sql = kw.get("task_id"), kw.get("sql")
        if isinstance(tid, ast.Constant) and tid.value == task_id and isinstance(sql, ast.Constant):
            return str(sql.value) if str(sql.value).endswith(".sql") else None
    return None


def spec_path(dag_id: str, name: str) -> str:
    """Where the imported SQL file goes, relative to the spec folder: ``sql/<dag id>/<name>`` (DAG ids are unique,
    so two DAGs' ``query.sql`` never collide); a name leaving its folder (absolute, ``..``) keeps its file name."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        pure = PurePosixPath(pure.name)
    return str(PurePosixPath("sql", dag_id, pure))


def jinja_notes(tid: str, sql: str, notes: list[str]) -> None:
    """Templates meta does not render (macros, ``var``, ``ti``, Jinja statements) are noted: they reach the database
    as they are on the local and Prefect backends (Airflow still renders them)."""
    unknown = sorted({m for m, pull in _EXPRESSION.findall(sql) if m not in META_TEMPLATE_NAMES and not pull})
    if unknown or "{%" in sql:
        what = ", ".join(unknown) + (" and Jinja statements ({% ... %})" if "{%" in sql else "")
        notes.append(
            f"task {tid}: the SQL uses templates meta renders on Airflow only ({what.strip(', ')}); meta's own are "
            "{{ ds }}, {{ params.x }}, {{ tasks.X.result }} and the other run names (docs/results-and-mapping.md)"
        )


def sql_parameters(given: Any, tid: str) -> dict[str, Any]:
    """A SQL operator's ``parameters`` as the sql task's (results of other tasks as references), or refused."""
    parameters = with_references(given, tid, "parameters")
    if not isinstance(parameters, dict) or not jsonable(parameters):
        raise ImportRefused(
            f"task {tid}: SQL parameters {given!r} are not a JSON mapping",
            task=tid,
            received=f"parameters={given!r}"[:200],
            expected="a mapping of names to JSON values",
        )
    return parameters


def sql_action(op: Any, dag: Any, notes: list[str], extras: Any) -> dict[str, Any]:
    """SQLExecuteQueryOperator (or a provider's subclass) -> a ``sql`` task; its connection is ``conn_id``."""

    tid = op.task_id
    given = init_kwargs(op)
    conn = getattr(op, "conn_id", None)
    if not conn:
        raise ImportRefused(
            f"task {tid}: {type(op).__name__} without a connection id",
            task=tid,
            received="conn_id=None",
            expected="conn_id= the connection the SQL runs on (meta's sql task names it as conn)",
        )
    statement = op.sql if isinstance(op.sql, str) else ";\n".join(op.sql)
    action: dict[str, Any] = {"kind": "sql", "conn": conn, "statement": statement}
    found = template_file(op, dag, extras.sql_texts)
    if found is not None:
        name, source = found
        path = spec_path(dag.dag_id, name)
        action["file"] = path
        extras.files.append(ImportedFile(path, op.sql, str(source)))
    if getattr(op, "split_statements", None):
        action["split_statements"] = True
    jinja_notes(tid, statement, notes)
    if op.parameters:
        action["parameters"] = sql_parameters(op.parameters, tid)
    for key, default in UNMAPPED_SQL_ARGS.items():
        if key in given and given[key] != default:
            notes.append(f"task {tid}: {key}={given[key]!r:.60} has no field in meta's sql task; not carried over")
    return action
