"""How Airflow's task states appear in Prefect, and back.

Prefect has no "skipped" and no "upstream_failed" state type, so meta uses *named* states of the nearest type:

* skipped         -> a COMPLETED state named ``Skipped`` (a skip is not an error in Airflow either)
* upstream_failed -> a FAILED state named ``UpstreamFailed``
* success         -> COMPLETED (any other name, e.g. ``Completed`` or ``Cached``)
* failed          -> FAILED (incl. ``TimedOut``), CRASHED or CANCELLED

Tasks decided by their trigger rule without running (skipped / upstream_failed) still get a task run, so the Prefect
UI shows every task; such runs carry the tag ``NOT_RUN_TAG`` and count 0 attempts, as in Airflow.
"""

from __future__ import annotations

from typing import Any

from prefect.states import Completed, Failed, State

from meta import RunState, TaskState

SKIPPED = "Skipped"
UPSTREAM_FAILED = "UpstreamFailed"
NOT_RUN_TAG = "meta:not-run"


def skipped(message: str | None = None) -> State[Any]:
    return Completed(name=SKIPPED, message=message or "skipped")


def upstream_failed(message: str | None = None) -> State[Any]:
    return Failed(name=UPSTREAM_FAILED, message=message or "upstream failed")


def task_state(state_type: str | None, state_name: str | None) -> TaskState | None:
    """The Airflow state of a Prefect task run state (type and name as the REST API gives them); None: not done."""
    kind = (state_type or "").upper()
    if kind == "COMPLETED":
        return TaskState.SKIPPED if state_name == SKIPPED else TaskState.SUCCESS
    if kind == "FAILED":
        return TaskState.UPSTREAM_FAILED if state_name == UPSTREAM_FAILED else TaskState.FAILED
    if kind in ("CRASHED", "CANCELLED"):
        return TaskState.FAILED
    if state_name in ("AwaitingRetry", "Retrying"):
        return TaskState.UP_FOR_RETRY
    if kind in ("SCHEDULED", "PENDING"):
        return TaskState.SCHEDULED
    if kind == "RUNNING":
        return TaskState.RUNNING
    return None


def of(state: State[Any]) -> TaskState | None:
    return task_state(state.type.value, state.name)


def run_state(state_type: str | None) -> RunState:
    """The Airflow run state of a Prefect flow run state type."""
    kind = (state_type or "").upper()
    if kind == "COMPLETED":
        return RunState.SUCCESS
    if kind in ("FAILED", "CRASHED", "CANCELLED"):
        return RunState.FAILED
    if kind in ("RUNNING", "CANCELLING", "PAUSED"):
        return RunState.RUNNING
    return RunState.QUEUED


def is_final(state_type: str | None) -> bool:
    return (state_type or "").upper() in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
