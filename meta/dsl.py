"""The Python DSL, as pipeline files import it (``from meta.dsl import pipeline, shell``).

A public name only: the implementation lives in ``meta.authoring.dsl``.
"""

from meta.authoring.dsl import (
    PipelineBuilder,
    TaskRef,
    airflow_operator,
    branch,
    load_python_file,
    noop,
    op,
    pipeline,
    python_task,
    shell,
    sql,
)

__all__ = [
    "PipelineBuilder",
    "TaskRef",
    "airflow_operator",
    "branch",
    "load_python_file",
    "noop",
    "op",
    "pipeline",
    "python_task",
    "shell",
    "sql",
]
