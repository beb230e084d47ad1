"""The Prefect observer on the session's real Prefect server and process worker, over HTTP only.

One module-scoped scenario: a meta-built pipeline (deployed with ``meta deploy --target prefect``) and a plain
Prefect flow (deployed through the REST API) are triggered through the observer while three consumers watch:
a poller from the start, the websocket stream behind a TCP proxy that is cut mid-run (so the stream reconnects
and must backfill the gap), and a second poller that resumes from a cursor the first one returned mid-run. Each
stores into its own control-plane store. The tests then compare those stores with each other and with Airflow's
state names meta's Prefect driver promises.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from meta.plugins.observers import BackendConnection, BackendUnreachable, Batch, EventKind, UnifiedState
from meta.service.observers.prefect import Cursor, PrefectObserver
from meta.service.store import queries
from meta.service.store.db import Store, open_store

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

BACKEND = "pf"
PIPELINE = "cp_obs_meta"
EXTERNAL = "cp-plain-external"

SPEC = """\
pipeline: cp_obs_meta
tags: [control-plane-test]
tasks:
  ok:
    shell: "true"
  slow:
    shell: "sleep 3"
  flaky:
    shell: 'test "$META_TRY_NUMBER" -ge 2'
    retries: 1
    retry_delay: 1s
  skip:
    shell: "exit 99"
  after_skip:
    shell: "true"
    upstream: [skip]
  bad:
    shell: "exit 3"
    upstream: [ok]
  after_bad:
    shell: "true"
    upstream: [bad]
  fan:
    python: tests.conformance.callables:fail_on
    kwargs: {bad: 2}
    map: {x: [1, 2, 3]}
"""

# A plain Prefect flow meta did not build. ``flaky`` retries without a delay: Prefect then goes Running -> Retrying
# with no AwaitingRetry between; ``after`` waits for a failed task and stays Pending/NotReady.
PLAIN_FLOW = """\
from prefect import flow, task
from prefect.runtime import task_run


@task(retries=1, retry_delay_seconds=0)
def flaky():
    if task_run.run_count < 2:
        raise RuntimeError("the first try fails")


@task
def boom():
    raise ValueError("boom")


@task
def after():
    return 2


@flow(name="cp-plain-external")
def plain_external():
    a = flaky.submit()
    b = boom.submit()
    c = after.submit(wait_for=[b])
    a.wait()
    c.wait()
"""


# ---------------------------------------------------------------------------------------------- helpers


class CuttableProxy:
    """A loopback TCP forwarder whose connections can be cut (and new ones refused) to break a websocket."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.down = threading.Event()
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        self.connections = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.down.is_set():
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.sockets += [client, upstream]
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self) -> None:
        self.down.set()
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.sockets.clear()

    def restore(self) -> None:
        self.down.clear()

    def close(self) -> None:
        self.closed.set()
        self.cut()
        self.listener.close()


@dataclass
class Watch:
    """One consumer: a store and what it saw on the way (unified states per run and per attempt)."""

    store: Store
    run_states: dict[str, list[str]] = field(default_factory=dict)
    attempt_states: dict[tuple[str, str, int], list[str]] = field(default_factory=dict)
    batches: list[Batch] = field(default_factory=list)

    def take(self, batch: Batch, stream: str) -> None:
        with self.store.transaction() as session:
            queries.ingest(session, batch.events, cursor=(BACKEND, stream, batch.cursor) if batch.cursor else None)
        self.batches.append(batch)
        for e in batch.events:
            if e.kind is EventKind.RUN:
                self.run_states.setdefault(e.run_id, []).append(e.state.value)
            else:
                assert e.task_id is not None and e.try_number is not None
                self.attempt_states.setdefault((e.run_id, e.task_id, e.try_number), []).append(e.state.value)

    def history(self, run_ids: set[str]) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
        with self.store.reading() as session:
            runs, attempts = queries.history(session, BACKEND)
        return {r for r in runs if r[1] in run_ids}, {a for a in attempts if a[1] in run_ids}

    def attempts(self, run_id: str) -> dict[tuple[str, int], str]:
        with self.store.reading() as session:
            rows = queries.attempts_of(session, BACKEND, *self._pipeline_and_run(session, run_id))
        # A mapped task's instance shows as task[map index], as meta's driver names its task run.
        return {(a.task_id + (f"[{a.map_index}]" if a.map_index >= 0 else ""), a.try_number): a.state for a in rows}

    def run(self, run_id: str) -> Any:
        with self.store.reading() as session:
            pipeline, run = self._pipeline_and_run(session, run_id)
            return queries.get_run(session, BACKEND, pipeline, run, None)

    def _pipeline_and_run(self, session: Any, run_id: str) -> tuple[str, str]:
        runs, _ = queries.history(session, BACKEND)
        pipeline = next(r[0] for r in runs if r[1] == run_id)
        return pipeline, run_id


def connection(url: str) -> BackendConnection:
    return BackendConnection(name=BACKEND, kind="prefect", url=url, pipelines={PIPELINE: PIPELINE})


def drain(observer: PrefectObserver, watch: Watch, cursor: str | None) -> str | None:
    """Poll until the observer has nothing more right now (the runtime's loop, without the sleep)."""
    while True:
        batch = observer.poll(cursor)
        watch.take(batch, "poll")
        cursor = batch.cursor or cursor
        if not batch.more:
            return cursor


def retrying(call: Any, attempts: int = 10) -> Any:
    """The session's Prefect runs on SQLite: under load it answers 503 (database locked) now and then."""
    for attempt in range(attempts):
        try:
            return call()
        except BackendUnreachable:
            if attempt == attempts - 1:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def deploy_meta_pipeline(server: Any, folder: Path) -> None:
    (folder / f"{PIPELINE}.yaml").write_text(SPEC, encoding="utf-8")
    meta = Path(sys.executable).parent / "meta"
    args = [str(meta), "deploy", "--target", "prefect", str(folder / f"{PIPELINE}.yaml"), "--pool", server.pool]
    done = subprocess.run(args, env=server.env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def deploy_plain_flow(server: Any, folder: Path) -> None:
    (folder / "plain_flow.py").write_text(PLAIN_FLOW, encoding="utf-8")
    with httpx.Client(base_url=server.api_url + "/", timeout=30) as http:
        flow = http.post("flows/", json={"name": EXTERNAL})
        flow.raise_for_status()
        body = {
            "name": "plain",
            "flow_id": flow.json()["id"],
            "work_pool_name": server.pool,
            "entrypoint": "plain_flow.py:plain_external",
            "path": str(folder),
            "pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": str(folder)}}],
            "parameters": {},
            "paused": False,
        }
        http.post("deployments/", json=body).raise_for_status()


def flow_run_state(server: Any, run_id: str) -> str:
    flow_run_id = run_id.removeprefix("prefect__")
    return str(httpx.get(f"{server.api_url}/flow_runs/{flow_run_id}", timeout=30).json()["state_type"])


# ---------------------------------------------------------------------------------------------- the scenario


@dataclass
class Scenario:
    meta_run: str
    logical_date: datetime
    external_run: str
    triggers: list[Any]
    poll: Watch
    push: Watch
    resumed: Watch
    resynced: Watch
    reconnects: int
    cut_at_events: int
    quiet: Batch


@pytest.fixture(scope="module")
def scenario(prefect_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    work = tmp_path_factory.mktemp("prefect_observer")
    flows = tmp_path_factory.mktemp("plain_flow")
    deploy_meta_pipeline(prefect_server, work)
    deploy_plain_flow(prefect_server, flows)
    server_port = int(prefect_server.api_url.rsplit(":", 1)[1].split("/", 1)[0])
    proxy = CuttableProxy(server_port)

    poll = Watch(open_store(f"sqlite:///{work}/poll.db"))
    push = Watch(open_store(f"sqlite:///{work}/push.db"))
    resumed = Watch(open_store(f"sqlite:///{work}/resumed.db"))
    resynced = Watch(open_store(f"sqlite:///{work}/resynced.db"))
    poller = PrefectObserver(connection(prefect_server.api_url))
    pusher = PrefectObserver(connection(f"http://127.0.0.1:{proxy.port}/api"))

    # Start from the server's whole history (a full resync: the session may hold other tests' runs).
    cursor = retrying(lambda: drain(poller, poll, None))

    stop = threading.Event()
    reconnects = 0
    push_cursor: list[str | None] = [None]

    def deliver(batch: Batch) -> None:
        push.take(batch, "push")
        push_cursor[0] = batch.cursor

    def push_loop() -> None:  # what the runtime's push thread does: reopen from the last delivered cursor
        nonlocal reconnects
        while not stop.is_set():
            try:
                pusher.stream(push_cursor[0], deliver, stop)
            except BackendUnreachable:
                reconnects += 1
                stop.wait(0.3)

    pushing = threading.Thread(target=push_loop, daemon=True)
    pushing.start()
    try:
        # Subscribed before the runs start, so their first states arrive live (the backfill lags, see stream()).
        deadline = time.monotonic() + 30
        while not proxy.connections and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        # A logical date a few seconds ahead: the run waits Scheduled until then (and meta reads it as its date).
        logical = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
        first = retrying(lambda: poller.trigger(PIPELINE, "cp-obs-key-1", {}, logical))
        again = retrying(lambda: poller.trigger(PIPELINE, "cp-obs-key-1", {}, logical))
        external = retrying(lambda: poller.trigger(EXTERNAL, "cp-obs-key-ext", {}, None))
        runs = {first.run_id, external.run_id}

        # Cut the stream as soon as it has told us about the meta run, and keep it down while the run is picked up.
        deadline = time.monotonic() + 60
        while first.run_id not in push.run_states and time.monotonic() < deadline:
            time.sleep(0.1)
        cut_at_events = sum(len(b.events) for b in push.batches)
        proxy.cut()
        resume_from: str | None = None
        restored = False
        cut_time = time.monotonic()
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            cursor = retrying(lambda at=cursor: drain(poller, poll, at))
            if resume_from is None and first.run_id in poll.run_states:
                resume_from = cursor  # a cursor a store committed mid-run: a new observer resumes from it
            if not restored and (
                time.monotonic() - cut_time > 6 or poll.run_states.get(first.run_id, [""])[-1] in ("failed",)
            ):
                proxy.restore()
                restored = True
            final = all(flow_run_state(prefect_server, r) in ("COMPLETED", "FAILED") for r in runs)
            if final and restored and _settled(poll, runs) and push.history(runs) == poll.history(runs):
                break
            time.sleep(1)
        if not restored:
            proxy.restore()
        quiet = poller.poll(cursor)  # everything seen, nothing new: the cost of a quiet cycle

        other = PrefectObserver(connection(prefect_server.api_url))
        try:
            retrying(lambda: drain(other, resumed, resume_from))
            # A cursor older than Prefect's 7-day event retention: the events are gone, so a full resync.
            stale = Cursor(since=datetime.now(UTC) - timedelta(days=8)).encode()
            retrying(lambda: drain(other, resynced, stale))
        finally:
            other.close()
        yield Scenario(
            first.run_id,
            logical,
            external.run_id,
            [first, again, external],
            poll,
            push,
            resumed,
            resynced,
            reconnects,
            cut_at_events,
            quiet,
        )
    finally:
        stop.set()
        pushing.join(timeout=10)
        proxy.close()
        poller.close()
        pusher.close()
        for watch in (poll, push, resumed, resynced):
            watch.store.close()


def _settled(watch: Watch, runs: set[str]) -> bool:
    """Every run final in the store, and every attempt of it terminal or up_for_retry."""
    run_rows, attempt_rows = watch.history(runs)
    if {r[1] for r in run_rows} != runs or not all(UnifiedState(r[2]).is_terminal for r in run_rows):
        return False
    done = {UnifiedState.UP_FOR_RETRY, UnifiedState.SKIPPED, UnifiedState.UPSTREAM_FAILED, UnifiedState.SUCCESS}
    return bool(attempt_rows) and all(UnifiedState(a[5]) in done | {UnifiedState.FAILED} for a in attempt_rows)


# ---------------------------------------------------------------------------------------------- tests

META_EXPECTED = {
    ("ok", 1): "success",
    ("slow", 1): "success",
    ("flaky", 1): "up_for_retry",
    ("flaky", 2): "success",
    ("skip", 1): "skipped",  # exit 99: the task ran and skipped itself
    ("after_skip", 0): "skipped",  # decided by meta's scheduler without running: try 0
    ("bad", 1): "failed",
    ("after_bad", 0): "upstream_failed",
    ("fan[0]", 1): "success",  # a mapped task: one attempt per instance, by map index
    ("fan[1]", 1): "failed",
    ("fan[2]", 1): "success",
}


def test_meta_built_flow_shows_airflow_states(scenario: Scenario) -> None:
    run = scenario.poll.run(scenario.meta_run)
    assert (run.pipeline_id, run.state, run.raw_state, run.external) == (PIPELINE, "failed", "Failed", False)
    assert run.started_at is not None and run.ended_at is not None and run.started_at <= run.ended_at
    assert run.extra["flow_run_id"] == scenario.meta_run.removeprefix("prefect__")
    assert run.logical_date is not None and run.logical_date.replace(tzinfo=UTC) == scenario.logical_date
    assert scenario.poll.attempts(scenario.meta_run) == META_EXPECTED


def test_external_flow_is_observed_as_its_own_pipeline(scenario: Scenario) -> None:
    run = scenario.poll.run(scenario.external_run)
    # Prefect does not fail a flow for a failed task it neither returns nor awaits the result of: Completed.
    assert (run.pipeline_id, run.state, run.raw_state, run.external) == (EXTERNAL, "success", "Completed", True)
    attempts = scenario.poll.attempts(scenario.external_run)
    by_task = {(task.rsplit("-", 1)[0], tries): state for (task, tries), state in attempts.items()}
    assert by_task == {
        ("flaky", 1): "up_for_retry",  # no AwaitingRetry state at all: derived from Retrying's run count
        ("flaky", 2): "success",
        ("boom", 1): "failed",
        ("after", 1): "upstream_failed",  # Prefect's own Pending/NotReady
    }
    assert all(task.startswith(("flaky-", "boom-", "after-")) for task, _ in attempts)  # Prefect's run names


def test_transient_states_are_seen_on_the_way(scenario: Scenario) -> None:
    seen = set(scenario.poll.run_states[scenario.meta_run]) | set(scenario.push.run_states[scenario.meta_run])
    assert {"scheduled", "running", "failed"} <= seen  # Pending lasts well under a second: seen only sometimes
    slow = (scenario.meta_run, "slow", 1)
    assert "running" in scenario.poll.attempt_states[slow] + scenario.push.attempt_states[slow]


def test_stream_and_poll_give_the_same_history_across_a_reconnect(scenario: Scenario) -> None:
    runs = {scenario.meta_run, scenario.external_run}
    assert scenario.reconnects >= 1, "the proxy cut should have broken the stream"
    assert scenario.cut_at_events > 0
    pushed, polled = scenario.push.history(runs), scenario.poll.history(runs)
    assert pushed[0] == polled[0]
    assert sorted(pushed[1] - polled[1]) == sorted(polled[1] - pushed[1])
    assert all(e.source.value == "push" for b in scenario.push.batches for e in b.events)


def test_an_observer_resuming_from_a_returned_cursor_misses_nothing(scenario: Scenario) -> None:
    runs = {scenario.meta_run, scenario.external_run}
    assert scenario.resumed.batches and scenario.resumed.batches[0].cursor
    assert scenario.resumed.history(runs) == scenario.poll.history(runs)


def test_a_cursor_past_the_event_retention_resyncs_from_the_flow_runs(scenario: Scenario) -> None:
    runs = {scenario.meta_run, scenario.external_run}
    assert scenario.resynced.history(runs) == scenario.poll.history(runs)
    # The resync derives every attempt from flow_runs/filter + task_runs/filter alone, then goes incremental.
    assert '"since"' in (scenario.resynced.batches[-1].cursor or "")


def test_trigger_with_the_same_key_starts_one_run(scenario: Scenario, prefect_server: Any) -> None:
    first, again, external = scenario.triggers
    assert first.created and not again.created and first.run_id == again.run_id
    assert external.created and external.run_id != first.run_id
    deployment = httpx.get(f"{prefect_server.api_url}/deployments/name/{PIPELINE}/meta", timeout=30).json()
    listed = httpx.post(
        f"{prefect_server.api_url}/flow_runs/filter",
        json={
            "deployments": {"id": {"any_": [deployment["id"]]}},
            "flow_runs": {"tags": {"all_": ["meta:control-plane"]}},
        },
        timeout=30,
    ).json()
    assert [r["id"] for r in listed] == [first.run_id.removeprefix("prefect__")]
    assert set(deployment["tags"]) < set(listed[0]["tags"])  # the deployment's tags are kept


def test_a_quiet_poll_costs_one_request(scenario: Scenario) -> None:
    assert scenario.quiet.events == [] and scenario.quiet.requests <= 2
    busy = [b for b in scenario.poll.batches if b.events]
    assert busy and all(b.requests >= 2 and b.bytes_received > 0 for b in busy)


def test_unreachable_server_raises_backend_unreachable_without_credentials() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    secret = BackendConnection(
        name=BACKEND, kind="prefect", url=f"http://127.0.0.1:{port}/api", credentials={"auth": "admin:s3cr3t-pw"}
    )
    observer = PrefectObserver(secret)
    try:
        with pytest.raises(BackendUnreachable) as caught:
            observer.poll(None)
        with pytest.raises(BackendUnreachable) as streamed:
            observer.stream(None, lambda _batch: None, threading.Event())
    finally:
        observer.close()
    for error in (caught.value, streamed.value):
        assert "s3cr3t" not in str(error) and "admin" not in str(error)
        assert f"127.0.0.1:{port}" in str(error)
