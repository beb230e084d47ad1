"""meta: define pipelines once, run them on Airflow, Prefect or the embedded runner with identical semantics."""

__version__ = "0.1.0"
