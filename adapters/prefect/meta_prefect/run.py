"""``meta run --backend prefect``: run a pipeline as a Prefect flow in this process.

The flow reports to the server at ``PREFECT_API_URL`` when set, else Prefect starts a temporary local server
(ephemeral mode). The result is read from the driver, in Airflow's state names, the same JSON as the local runner.
"""

from __future__ import annotations

from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

from meta import (
    MetaError,
    Pipeline,
    ProgressCallback,
    RunRequest,
    RunResult,
)
from meta_prefect.driver import Outcome
from meta_prefect.flow import to_flow

# Prefect's default (20 s) is too short for a temporary server on a busy machine; a user's own setting wins.
EPHEMERAL_STARTUP_SECONDS = 120


class PrefectRunFailed(MetaError, RuntimeError):
    """The flow ended before meta's driver could report task states (e.g. it crashed)."""


def run_pipeline(pipeline: Pipeline, request: RunRequest, progress: ProgressCallback | None = None) -> RunResult:
    """``request`` (``RunRequest.build``) has checked the params and run id before any server is involved."""
    request = request.for_pipeline(pipeline)
    outcomes: list[Outcome] = []
    flow = to_flow(
        pipeline,
        run_id=request.run_id,
        logical_date=request.logical_date,
        observer=outcomes.append,
        progress=progress,
    )
    with temporary_settings(set_defaults={PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: EPHEMERAL_STARTUP_SECONDS}):
        state = flow(**request.params, return_state=True)
    if not outcomes:
        ended = f"{state.type.value} ({state.message})" if state is not None else "no state"
        raise PrefectRunFailed(
            f"pipeline {pipeline.id!r}: the Prefect flow run ended in {ended} before meta could record task states"
        )
    outcome = outcomes[0]
    return RunResult(pipeline.id, outcome.state, dict(outcome.tasks), run_id=outcome.run_id, backend="prefect")
