"""How meta_airflow.import_report counts an import (the corpus section of docs/import-report.md, bench_import)."""

from __future__ import annotations

from pathlib import Path

from meta_airflow.import_report import dag_folders, module_kind, reason_kind, tally

from meta import ImportedPipeline, ImportOutcome, ImportRefusal, Pipeline


def test_dag_folders_are_dags_folders_else_folders_defining_dags(tmp_path: Path) -> None:
    for rel, text in {
        "chapter1/dags/a.py": "with DAG('a'): pass",
        "chapter1/dags/sub/b.py": "with DAG('b'): pass",  # parsed with its dags folder
        "listings/chapter2/c.py": "@dag\ndef c(): pass",
        "tests/dags/t.py": "with DAG('t'): pass",  # tests hold no DAGs of the project
        "plugins/p.py": "DAG(",
        "docs/readme.py": "print('no dag here')",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert dag_folders(tmp_path) == [tmp_path / "chapter1" / "dags", tmp_path / "listings" / "chapter2"]
    assert dag_folders(tmp_path / "listings" / "chapter2") == [tmp_path / "listings" / "chapter2"]


def test_tally_tells_dags_from_files_and_crashes_from_refusals() -> None:
    p = Pipeline.model_validate({"id": "p", "tasks": [{"id": "t", "action": {"kind": "noop"}}]})
    outcome = ImportOutcome(
        imported=(ImportedPipeline(p), ImportedPipeline(p, ("doc_md dropped",))),
        refused=(
            ImportRefusal(
                "DAG file",
                "Airflow could not import it: ModuleNotFoundError: No module named 'airflow.providers.google.cloud'",
                "x.py:1",
            ),
            ImportRefusal("DAG file", "Airflow could not import it: AttributeError: module has no days_ago", "y.py:3"),
            ImportRefusal(
                "DAG file", "Airflow could not import it: No module named 'airflow.models.dataset'", "z.py:1"
            ),
            ImportRefusal("DAG 'a'", "task t1: its callable 'a.<locals>.f' is not importable by name (nested)"),
            ImportRefusal("DAG 'b'", "task t2: its callable 'b.<locals>.g' is not importable by name (nested)"),
            ImportRefusal("DAG 'c'", "meta_airflow could not map this DAG (KeyError: 'x'); please report it"),
        ),
    )
    counts = tally(outcome)
    assert dict(counts.counts) == {"full": 1, "partial": 1, "missing_provider": 1, "not_parsed": 2, "refused": 2,
                                   "crash": 1}  # fmt: skip
    assert counts.parsed == 5
    assert dict(counts.missing_modules) == {"airflow.providers.google": 1}
    assert dict(counts.reasons) == {"its callable '…' is not importable by name": 2, "importer crash: KeyError: '…'": 1}
    assert dict(counts.file_errors) == {"AttributeError": 1, "Airflow 2 module airflow.models.dataset": 1}


def test_reason_kinds_and_module_kinds() -> None:
    assert reason_kind("task load: airflow.providers.x.operators.y.FooOperator arguments ['a', 'b'] are not plain "
                       "data (callables)") == "FooOperator arguments […] are not plain data"  # fmt: skip
    assert reason_kind("task load: takes the result of hitl_task, which becomes a airflow_operator task") == (
        "takes the result of …, which becomes a airflow_operator task"
    )
    assert module_kind("airflow.providers.common.sql.operators.sql") == "airflow.providers.common.sql"
    assert module_kind("airflow.datasets") == "airflow.datasets"
    assert module_kind("pandas.core") == "pandas"
