"""The Airflow observer's state mapping and cursor, without a server (the real-server tests are in
tests/integration/service/test_airflow_observer.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from meta.service.observers.airflow import CursorState, Scan, run_state, task_state


@pytest.mark.parametrize(
    ("raw", "unified"),
    [("queued", "queued"), ("running", "running"), ("success", "success"), ("failed", "failed"), ("weird", "other")],
)
def test_run_states(raw: str, unified: str) -> None:
    assert run_state(raw) == unified


@pytest.mark.parametrize(
    ("raw", "unified"),
    [
        ("scheduled", "scheduled"),
        ("queued", "queued"),
        ("running", "running"),
        ("success", "success"),
        ("failed", "failed"),
        ("up_for_retry", "up_for_retry"),
        ("skipped", "skipped"),
        ("upstream_failed", "upstream_failed"),
        ("restarting", "other"),
        ("up_for_reschedule", "other"),
        ("deferred", "other"),
        ("awaiting_input", "other"),
        ("removed", "other"),
    ],
)
def test_task_states(raw: str, unified: str) -> None:
    assert task_state(raw) == unified


def test_a_history_try_followed_by_a_retry_is_up_for_retry() -> None:
    """Airflow's task-instance history records a retried try as ``failed``; a success stays a success."""
    assert task_state("failed", retried=True) == "up_for_retry"
    assert task_state("success", retried=True) == "success"


def test_the_cursor_round_trips_and_an_unreadable_one_starts_over() -> None:
    started = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    state = CursorState(started, {"r|d|r1": "abc"}, Scan(started, "tis", "tok", {"t|d|r1|t|-1": ["f", 1]}))
    again = CursorState.load(state.dump())
    assert again == state
    for bad in (
        "{",
        '{"v": 99}',
        '{"v": 1, "scan": {"s": "x"}}',
        '{"v": 1, "scan": {"s": "2026-12-02T00:00:00Z", "phase": "later", "page": "", "next": {}}}',
    ):
        assert CursorState.load(bad) == CursorState()
    assert CursorState.load(None) == CursorState() == CursorState.load("")
