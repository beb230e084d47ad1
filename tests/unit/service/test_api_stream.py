"""GET /api/v1/stream: server-sent events of run and attempt changes, ids = change_seq (Last-Event-ID resumes),
team-scoped, and ending cleanly when the client goes away or the server stops (a real uvicorn for those two)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from meta.plugins.observers import UnifiedState
from meta.service.store import queries
from tests.unit.service.api_support import (
    T0,
    Api,
    api_fixture,  # noqa: F401 - provides the api fixture
    attempt_event,
    run_event,
)


def frames(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """SSE frames with data (comments and retry-only frames skipped)."""
    frame: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if "data" in frame:
                yield frame
            frame = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            frame[name] = json.loads(value) if name == "data" else value


def take(api: Api, who: str, count: int, headers: dict[str, str] | None = None, **params: Any) -> list[dict[str, Any]]:
    guard = threading.Timer(10, api.stopping.set)  # a test expecting too much fails instead of hanging
    guard.start()
    got: list[dict[str, Any]] = []
    try:
        with api.client.stream("GET", "/api/v1/stream", headers=api.headers(who) | (headers or {}), params=params) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            for frame in frames(r.iter_lines()):
                got.append(frame)
                if len(got) == count:
                    return got
    finally:
        guard.cancel()
    raise AssertionError(f"the stream ended after {len(got)} of {count} frames")


def key(frame: dict[str, Any]) -> tuple[Any, ...]:
    data = frame["data"]
    return (frame["event"], data["pipeline_id"], data["run_id"], data.get("task_id"), data.get("try_number"))


def test_history_from_the_start_is_team_scoped_in_change_order(api: Api) -> None:
    alpha = take(api, "alpha_viewer", 6, since=0)
    assert {f["data"]["pipeline_id"] for f in alpha} == {"alpha_etl"}
    assert [int(f["id"]) for f in alpha] == sorted(int(f["id"]) for f in alpha)
    assert all(int(f["id"]) == f["data"]["change_seq"] for f in alpha)
    assert {key(f) for f in alpha} >= {
        ("run", "alpha_etl", "r2", None, None),
        ("task_attempt", "alpha_etl", "r2", "extract", 2),
    }
    [beta_run, beta_attempt] = take(api, "beta_viewer", 2, since=0)
    assert {key(beta_run), key(beta_attempt)} == {
        ("run", "beta_load", "b1", None, None),
        ("task_attempt", "beta_load", "b1", "load", 1),
    }
    # Everything a team's stream could show from the start, and nothing more: the next frame is a fresh change.
    with api.store.transaction() as session:
        queries.ingest(
            session,
            [run_event("af", "beta_load", "b2", UnifiedState.QUEUED, T0 + timedelta(days=1))],
            team_of=api.context.team_of,
        )
    [*_before, next_one] = take(api, "beta_viewer", 3, since=0)
    assert key(next_one) == ("run", "beta_load", "b2", None, None)


def test_a_new_stream_starts_at_the_newest_change_and_sees_live_ones(api: Api) -> None:
    with api.client.stream("GET", "/api/v1/stream", headers=api.headers("alpha_viewer")) as response:
        with api.store.transaction() as session:
            queries.ingest(
                session,
                [
                    run_event("af", "beta_load", "hidden", UnifiedState.RUNNING, T0 + timedelta(days=1)),
                    attempt_event("af", "alpha_etl", "r2", "load", 1, UnifiedState.QUEUED, T0 + timedelta(days=1)),
                ],
                team_of=api.context.team_of,
            )
        frame = next(frames(response.iter_lines()))
    assert key(frame) == ("task_attempt", "alpha_etl", "r2", "load", 1)
    assert frame["data"]["state"] == "queued"


def test_last_event_id_resumes_after_the_last_seen_change(api: Api) -> None:
    every = take(api, "admin", 9, since=0)  # 5 runs and 4 attempts, every team's
    middle = every[4]
    resumed = take(api, "admin", 4, headers={"Last-Event-ID": middle["id"]})
    assert resumed == every[5:]
    bad = api.client.get("/api/v1/stream", headers=api.headers("admin") | {"Last-Event-ID": "abc"})
    assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["detail"]


def test_the_stream_ends_when_the_server_stops(api: Api) -> None:
    with api.client.stream("GET", "/api/v1/stream", headers=api.headers("admin")) as response:
        timer = threading.Timer(0.3, api.stopping.set)
        timer.start()
        started = time.monotonic()
        lines = list(response.iter_lines())  # returns only because the stream ended
        assert time.monotonic() - started < 5
    assert lines[0].startswith("retry:")
    assert api.app.state.open_streams == set()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(api: Api) -> Iterator[tuple[Api, str, uvicorn.Server]]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield api, f"http://127.0.0.1:{port}", server
    finally:
        api.stopping.set()
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive(), "uvicorn did not shut down"


def wait_until(condition: Any, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_client_that_disconnects_ends_its_stream_on_a_real_server(served: tuple[Api, str, uvicorn.Server]) -> None:
    api, url, _server = served
    with httpx.Client(base_url=url, timeout=10) as client:
        with client.stream("GET", "/api/v1/stream", params={"since": 0}, headers=api.headers("alpha_viewer")) as r:
            received = frames(r.iter_lines())  # held: dropping the iterator would close the connection
            assert next(received)["data"]["pipeline_id"] == "alpha_etl"
            assert len(api.app.state.open_streams) == 1
    wait_until(lambda: api.app.state.open_streams == set())


def test_a_real_server_shuts_down_with_a_stream_open(served: tuple[Api, str, uvicorn.Server]) -> None:
    api, url, server = served
    with httpx.Client(base_url=url, timeout=10) as client:
        with client.stream("GET", "/api/v1/stream", headers=api.headers("admin")) as r:
            lines = r.iter_lines()
            assert next(lines).startswith("retry:")
            started = time.monotonic()
            api.stopping.set()  # what meta serve does on SIGTERM, before uvicorn drains connections
            server.should_exit = True
            rest = list(lines)
            assert time.monotonic() - started < 5
    assert all(not line.startswith("id:") for line in rest)
    wait_until(lambda: api.app.state.open_streams == set())
