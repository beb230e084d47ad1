from meta_prefect import states
from prefect.states import Cancelled, Completed, Crashed, Failed, Pending, Running

from meta.spec.states import RunState, TaskState


def test_named_states_map_back_to_airflow_names() -> None:
    assert states.of(states.skipped("x")) == TaskState.SKIPPED
    assert states.of(states.upstream_failed("x")) == TaskState.UPSTREAM_FAILED
    assert states.of(Completed()) == TaskState.SUCCESS
    assert states.of(Failed()) == TaskState.FAILED
    assert states.of(Failed(name="TimedOut")) == TaskState.FAILED
    assert states.of(Crashed()) == TaskState.FAILED
    assert states.of(Cancelled()) == TaskState.FAILED
    assert states.of(Running()) == TaskState.RUNNING
    assert states.of(Pending()) == TaskState.SCHEDULED


def test_skipped_is_completed_type_and_upstream_failed_is_failed_type() -> None:
    assert states.skipped().is_completed() and states.skipped().name == "Skipped"
    assert states.upstream_failed().is_failed() and states.upstream_failed().name == "UpstreamFailed"


def test_rest_shapes_and_run_states() -> None:
    assert states.task_state("COMPLETED", "Skipped") == TaskState.SKIPPED
    assert states.task_state("SCHEDULED", "AwaitingRetry") == TaskState.UP_FOR_RETRY
    assert states.task_state(None, None) is None
    assert states.run_state("COMPLETED") == RunState.SUCCESS
    assert states.run_state("CRASHED") == RunState.FAILED
    assert states.run_state("SCHEDULED") == RunState.QUEUED
    assert states.is_final("FAILED") and not states.is_final("RUNNING")
