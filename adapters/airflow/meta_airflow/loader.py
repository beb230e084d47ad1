"""Build Airflow DAGs from every pipeline spec in a folder (what ``dags/meta_loader.py`` calls at parse time).

Parse time matters in Airflow: this reads files and builds objects only (no network, no subprocess), imports
Airflow classes lazily and once, and validates meta-written ``.json`` specs directly (YAML goes through
``meta.load_file``). A broken spec is logged with its file and problem and skipped, so one bad file does not hide
every other DAG; ``META_LOADER_STRICT=1`` raises instead (Airflow then shows it as an import error of the loader
file).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("meta.loader")
SPEC_SUFFIXES = (".json", ".yaml", ".yml")


def read_spec(path: Path) -> list[Any]:
    """The pipelines of one spec file.

    JSON written by meta (``meta deploy``, ``meta run``: the model's own dump) is validated directly, the fast path
    for parse time; anything else (meta's YAML format, hand-written JSON) goes through ``meta.load_file``, which
    reports problems with file:line.
    """
    from meta import Pipeline

    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("tasks"), list) and "id" in data:
            return [Pipeline.model_validate(data)]
    from meta import load_file

    return list(load_file(path))


def spec_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file())


def load_dags(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """``{dag_id: DAG}`` for every valid pipeline under ``folder``."""
    from meta_airflow.build import build_dag

    strict = os.environ.get("META_LOADER_STRICT", "") not in ("", "0", "false")
    dags: dict[str, Any] = {}
    root = Path(folder)
    if not root.is_dir():
        log.warning("meta loader: spec folder %s does not exist; no pipelines loaded", root)
        return dags
    for path in spec_files(root):
        try:
            for pipeline in read_spec(path):
                if pipeline.id in dags:
                    raise ValueError(f"pipeline id {pipeline.id!r} is defined twice (second time in {path})")
                dags[pipeline.id] = build_dag(pipeline)
        except Exception as exc:
            if strict:
                raise ValueError(f"{path}: {exc}") from exc
            log.error("meta loader: skipped %s: %s", path, exc)
    return dags


# The file for an Airflow dags folder (dags/meta_loader.py is this text; `meta run` writes it into throwaway homes).
LOADER_SOURCE = '''"""Airflow DAG loader for meta: one DAG per pipeline spec (.json/.yaml) under META_SPECS_DIR.

Copy this file into an Airflow dags folder. Specs are read from ``$META_SPECS_DIR``, else from ``specs/`` next to
this file. The words "airflow" and "DAG" above let Airflow's safe-mode file filter pick this file up.
"""

import os
from pathlib import Path

from meta_airflow.loader import load_dags

globals().update(load_dags(os.environ.get("META_SPECS_DIR") or Path(__file__).resolve().parent / "specs"))
'''
