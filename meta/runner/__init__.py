"""The embedded local backend: runs a pipeline on this machine with Airflow's semantics, no server needed."""

from meta.runner.engine import AttemptRecord, RunOutcome
from meta.runner.local import LocalRunner

__all__ = ["AttemptRecord", "LocalRunner", "RunOutcome"]
