"""The Airflow observer and the OpenLineage push path against the session's real Airflow 3.3 (HTTP only).

One module fixture deploys everything at once and watches it to the end, so the module costs about one run:

- ``svc_meta``: a meta-built pipeline (spec in the loader's folder), ``svc_ext``: an external DAG file, both with
  ok / slow / skip (exit 99) / after_skip (skipped by the scheduler) / a task failing twice with retries=1 /
  a task downstream of it (upstream_failed);
- ``svc_clear``: one task, cleared through the REST API after its run and run again (two attempts);
- ``svc_many``: a paused DAG given 105 runs (they stay queued): more than one page of 100.

Runs are started through ``AirflowObserver.trigger``. The observer polls every second into one SQLite store
while a small HTTP listener on ``airflow_server.lineage_port`` receives what the OpenLineage provider pushes;
those events are mapped by ``meta.service.observers.openlineage`` into a second store. The two histories must
be the same.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from meta.plugins.observers import BackendConnection, BackendUnreachable, Batch, TriggerResult
from meta.service.observers import openlineage
from meta.service.observers.airflow import AirflowApiError, AirflowObserver
from meta.service.store import queries
from meta.service.store.db import Store, open_store
from meta.spec.model import Pipeline
from tests.fixtures.airflow_server import airflow_server  # noqa: F401 - a pytest fixture

pytestmark = [pytest.mark.airflow, pytest.mark.slow]
BACKEND = "af"
MANY = 105

TASKS = [
    {"id": "ok", "action": {"kind": "shell", "command": "true"}},
    {"id": "slow", "action": {"kind": "shell", "command": "sleep 6"}},
    {"id": "skip", "action": {"kind": "shell", "command": "exit 99"}},
    {"id": "after_skip", "action": {"kind": "shell", "command": "true"}, "upstream": ["skip"]},
    {"id": "boom", "action": {"kind": "shell", "command": "exit 3"}, "retries": 1, "retry_delay": "1s"},
    {"id": "after", "action": {"kind": "shell", "command": "true"}, "upstream": ["boom"]},
]
EXPECTED_ATTEMPTS = {
    ("ok", 1): "success",
    ("slow", 1): "success",
    ("skip", 1): "skipped",
    ("after_skip", 0): "skipped",
    ("boom", 1): "up_for_retry",
    ("boom", 2): "failed",
    ("after", 0): "upstream_failed",
}
EXTERNAL_DAG = """
from datetime import timedelta
from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator

with DAG("svc_ext", schedule=None, catchup=False, tags=["svc"]) as dag:
    ok = BashOperator(task_id="ok", bash_command="true")
    slow = BashOperator(task_id="slow", bash_command="sleep 6")
    skip = BashOperator(task_id="skip", bash_command="exit 99")
    after_skip = BashOperator(task_id="after_skip", bash_command="true")
    boom = BashOperator(task_id="boom", bash_command="exit 3", retries=1, retry_delay=timedelta(seconds=1))
    after = BashOperator(task_id="after", bash_command="true")
    skip >> after_skip
    boom >> after
"""
CLEAR_DAG = """
from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator

with DAG("svc_clear", schedule=None, catchup=False) as dag:
    BashOperator(task_id="once", bash_command="true")
"""
MANY_DAG = """
from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator

with DAG("svc_many", schedule=None, catchup=False, is_paused_upon_creation=True) as dag:
    BashOperator(task_id="never", bash_command="true")
"""


class LineageListener:
    """What the provider pushes, as received (``Authorization`` header and JSON body), answered 201 at once."""

    def __init__(self, port: int) -> None:
        received: list[tuple[str | None, dict[str, Any]]] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((self.headers.get("Authorization"), json.loads(body or b"{}")))
                self.send_response(201)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def run_end(self, dag_id: str, run_id: str, count: int = 1) -> bool:
        ends = [
            body
            for _auth, body in self.received
            if body.get("eventType") in ("COMPLETE", "FAIL")
            and body.get("run", {}).get("facets", {}).get("airflowDagRun", {}).get("dagRun", {}).get("dag_id") == dag_id
            and body["run"]["facets"]["airflowDagRun"]["dagRun"].get("run_id") == run_id
        ]
        return len(ends) >= count

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def connection(server, **options: Any) -> BackendConnection:  # type: ignore[no-untyped-def]
    return BackendConnection(
        BACKEND,
        "airflow",
        server.url,
        options,
        {"username": "admin", "password": server.password("admin")},
        {"svc_meta": "svc_meta"},
    )


def ingest(store: Store, batch: Batch) -> None:
    with store.transaction() as session:
        queries.ingest(session, batch.events, cursor=(BACKEND, "poll", batch.cursor) if batch.cursor else None)


def drain(observer: AirflowObserver, store: Store, cursor: str | None) -> tuple[str | None, list[Batch]]:
    """Poll until the observer has nothing more to page through right now."""
    batches = []
    while True:
        batch = observer.poll(cursor)
        ingest(store, batch)
        batches.append(batch)
        cursor = batch.cursor or cursor
        if not batch.more:
            return cursor, batches


def trigger(observer: AirflowObserver, dag: str, run_id: str) -> TriggerResult:
    """Like the control plane: a 5xx (Airflow on SQLite answers "Database error" while its scheduler holds the
    write lock) is retried with the same key, so a run the failed call did create is not started twice."""
    for attempt in range(5):
        try:
            return observer.trigger(dag, run_id, {}, None)
        except BackendUnreachable:
            if attempt == 4:
                raise
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


def wait(predicate, timeout: float, what: str, every: float = 1.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def ours(history: tuple[set, set], run_ids: set[str]) -> tuple[set, set]:
    runs, attempts = history
    return {r for r in runs if r[1] in run_ids}, {a for a in attempts if a[1] in run_ids}


@pytest.fixture(scope="module")
def watched(airflow_server, tmp_path_factory) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]  # noqa: F811
    tmp = tmp_path_factory.mktemp("cp")
    listener = LineageListener(airflow_server.lineage_port)
    pipeline = Pipeline.model_validate({"id": "svc_meta", "tags": ["svc"], "tasks": TASKS})
    spec = airflow_server.specs_dir / "svc_meta.json"
    spec.write_text(json.dumps(pipeline.model_dump(mode="json", by_alias=True), indent=1, sort_keys=True))
    files = {"svc_ext": EXTERNAL_DAG, "svc_clear": CLEAR_DAG, "svc_many": MANY_DAG}
    for name, text in files.items():
        (airflow_server.dags_folder / f"{name}.py").write_text(text)
    observer = AirflowObserver(connection(airflow_server))
    http = observer.http
    try:
        wait(
            lambda: all(
                http.call("GET", f"/api/v2/dags/{d}", ok=(200, 404)).status_code == 200 for d in ("svc_meta", *files)
            ),
            120,
            "the DAGs to be parsed",
        )
        http.call("PATCH", "/api/v2/dags/svc_many", params={"update_mask": "is_paused"}, json={"is_paused": True})
        poll_store = open_store(f"sqlite:///{tmp / 'poll.db'}")
        cursor, _ = drain(observer, poll_store, None)  # the session's history so far

        suffix = uuid.uuid4().hex[:8]
        many = [f"many_{suffix}_{i:03d}" for i in range(MANY)]
        for rid in many:  # before the others run: their tasks keep Airflow's SQLite busy
            trigger(observer, "svc_many", rid)
        run_ids = {dag: f"svc_{dag}_{suffix}" for dag in ("svc_meta", "svc_ext", "svc_clear")}
        first = {dag: observer.trigger(dag, rid, {}, None) for dag, rid in run_ids.items()}
        again = trigger(observer, "svc_ext", run_ids["svc_ext"])

        seen: set[tuple[str, str | None, str]] = set()  # (dag, task or None, unified state) at any moment

        def poll_once() -> str | None:
            nonlocal cursor
            try:
                cursor, batches = drain(observer, poll_store, cursor)
            except BackendUnreachable:  # a 5xx under load: the runtime would back off; try again next time
                return cursor
            for batch in batches:
                seen.update((e.extra["dag_id"], e.task_id, str(e.state)) for e in batch.events)
            return cursor

        def all_finished() -> bool:
            poll_once()
            with poll_store.reading() as session:
                runs = [queries.get_run(session, BACKEND, dag, rid, None) for dag, rid in run_ids.items()]
            return all(run is not None and run.state in ("success", "failed") for run in runs)

        wait(all_finished, 300, f"the runs {run_ids}")
        # Clear the finished task of svc_clear: Airflow runs it again as try 2.
        http.call(
            "POST",
            "/api/v2/dags/svc_clear/clearTaskInstances",
            json={"dag_run_id": run_ids["svc_clear"], "task_ids": ["once"], "dry_run": False, "only_failed": False},
        )

        def rerun_done() -> bool:
            poll_once()
            with poll_store.reading() as session:
                attempts = queries.attempts_of(session, BACKEND, "svc_clear", run_ids["svc_clear"])
                run = queries.get_run(session, BACKEND, "svc_clear", run_ids["svc_clear"], None)
            return run is not None and run.state == "success" and any(a.try_number == 2 for a in attempts)

        wait(rerun_done, 120, "the cleared task's second try")
        wait(
            lambda: (
                all(listener.run_end(d, r) for d, r in run_ids.items())
                and listener.run_end("svc_clear", run_ids["svc_clear"], 2)
            ),
            60,
            "the OpenLineage DAG-run COMPLETE/FAIL events",
        )
        time.sleep(2)  # task events of the last tries travel separately
        poll_once()
        yield {
            "server": airflow_server,
            "observer": observer,
            "poll_store": poll_store,
            "cursor": cursor,
            "run_ids": run_ids,
            "first": first,
            "again": again,
            "many": many,
            "seen": seen,
            "listener": listener,
            "tmp": tmp,
        }
    finally:
        listener.stop()
        (airflow_server.dags_folder / "svc_many.py").unlink(missing_ok=True)
        try:  # the 105 queued runs would only burden later listings; the other DAGs stay like other tests'
            http.call("DELETE", "/api/v2/dags/svc_many", ok=(200, 204, 404))
        except BackendUnreachable:
            pass
        observer.close()


def attempts(store: Store, pipeline: str, run_id: str) -> dict[tuple[str, int], str]:
    with store.reading() as session:
        return {(a.task_id, a.try_number): a.state for a in queries.attempts_of(session, BACKEND, pipeline, run_id)}


def run_row(store: Store, pipeline: str, run_id: str):  # type: ignore[no-untyped-def]
    with store.reading() as session:
        return queries.get_run(session, BACKEND, pipeline, run_id, None)


def test_meta_built_and_external_runs_with_unified_states(watched) -> None:  # type: ignore[no-untyped-def]
    store, ids = watched["poll_store"], watched["run_ids"]
    for dag, external in (("svc_meta", False), ("svc_ext", True)):
        run = run_row(store, dag, ids[dag])
        assert (run.state, run.raw_state, run.external) == ("failed", "failed", external)
        assert run.extra["url"] == f"{watched['server'].url}/dags/{dag}/runs/{ids[dag]}"
        assert run.started_at is not None and run.ended_at is not None
        assert attempts(store, dag, ids[dag]) == EXPECTED_ATTEMPTS, dag
    with store.reading() as session:
        retried = {
            a.try_number: a.raw_state
            for a in queries.attempts_of(session, BACKEND, "svc_ext", ids["svc_ext"])
            if a.task_id == "boom"
        }
    assert retried == {1: "failed", 2: "failed"}  # what Airflow's task-instance history records for a retried try


def test_running_and_queued_are_seen_while_in_progress(watched) -> None:  # type: ignore[no-untyped-def]
    seen = watched["seen"]
    for dag in ("svc_meta", "svc_ext"):
        assert (dag, None, "running") in seen
        assert (dag, "slow", "running") in seen  # sleeps 6 s; polled every second
    assert ("svc_many", None, "queued") in seen  # a paused DAG's runs wait queued
    many = [run_row(watched["poll_store"], "svc_many", rid) for rid in watched["many"]]
    assert {(r.state, r.raw_state, r.external) for r in many} == {("queued", "queued", True)}


def test_a_cleared_task_shows_two_attempts(watched) -> None:  # type: ignore[no-untyped-def]
    rid = watched["run_ids"]["svc_clear"]
    assert attempts(watched["poll_store"], "svc_clear", rid) == {("once", 1): "success", ("once", 2): "success"}
    assert run_row(watched["poll_store"], "svc_clear", rid).state == "success"


def test_trigger_is_idempotent(watched) -> None:  # type: ignore[no-untyped-def]
    assert all(r.created for r in watched["first"].values())
    again = watched["again"]
    assert not again.created and again.run_id == watched["run_ids"]["svc_ext"]
    assert again.url == watched["first"]["svc_ext"].url


def test_a_quiet_cycle_costs_two_requests(watched) -> None:  # type: ignore[no-untyped-def]
    """Two requests while fewer than a page of runs and of task instances changed within the overlap. The 105
    runs created a minute ago are still inside the default 60 s, so this observer overlaps by 5 s."""
    observer = AirflowObserver(connection(watched["server"], overlap_seconds=5))
    try:
        first = observer.poll(watched["cursor"])  # re-reads the last minute: pages, nothing new to say
        assert first.events == [] and not first.more
        batch = observer.poll(first.cursor)
    finally:
        observer.close()
    assert (batch.requests, batch.events, batch.more) == (2, [], False)
    assert batch.bytes_received > 0


def test_paging_over_more_than_a_page_of_runs(watched, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    observer = AirflowObserver(connection(watched["server"], max_requests=1000))
    try:
        store = open_store(f"sqlite:///{tmp_path / 'paged.db'}")
        cursor, batches = drain(observer, store, None)
    finally:
        observer.close()
    assert len(batches) == 1 and batches[0].requests >= 4  # login, >= 2 pages of runs, >= 1 of task instances
    with store.reading() as session:
        rows, _ = queries.list_runs(session, queries.RunFilter(backend=BACKEND, pipeline_id="svc_many"), limit=500)
    assert set(watched["many"]) <= {r.run_id for r in rows}
    assert json.loads(cursor or "{}")["scan"] is None  # the scan completed; the watermark moved
    with store.reading() as session, watched["poll_store"].reading() as reference:
        assert queries.history(session, BACKEND) == queries.history(reference, BACKEND)


def test_resuming_from_each_cursor_with_a_new_observer_misses_nothing(watched, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Each poll returns after two requests (a page); every next poll is a fresh observer given the stored
    cursor, as after a crash. Runs started half-way are caught too."""
    store = open_store(f"sqlite:///{tmp_path / 'resumed.db'}")
    cursor: str | None = None
    polls = scans_after_trigger = 0
    late = [f"late_{uuid.uuid4().hex[:8]}_{i}" for i in range(3)]
    while scans_after_trigger < 2:  # the second complete scan started after the late runs existed
        observer = AirflowObserver(connection(watched["server"], max_requests=2))
        try:
            batch = observer.poll(cursor)
            if polls == 1:  # mid-scan: new runs arrive while the observer is "down"
                for rid in late:
                    trigger(observer, "svc_many", rid)
        finally:
            observer.close()
        ingest(store, batch)
        with store.reading() as session:
            assert queries.get_cursor(session, BACKEND, "poll") == batch.cursor
        cursor, polls = batch.cursor, polls + 1
        scans_after_trigger += polls > 1 and not batch.more
        assert polls < 200
    assert polls > 4  # it did resume, page after page
    with store.reading() as session:
        rows, _ = queries.list_runs(session, queries.RunFilter(backend=BACKEND, pipeline_id="svc_many"), limit=500)
    assert set(watched["many"]) | set(late) <= {r.run_id for r in rows}
    reference = open_store(f"sqlite:///{tmp_path / 'reference.db'}")
    observer = AirflowObserver(connection(watched["server"], max_requests=1000))
    try:
        drain(observer, reference, None)
    finally:
        observer.close()
    with store.reading() as session, reference.reading() as ref:
        assert queries.history(session, BACKEND) == queries.history(ref, BACKEND)


def test_push_and_poll_give_the_same_history(watched, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, listener = watched["server"], watched["listener"]
    assert listener.received and {auth for auth, _ in listener.received} == {f"Bearer {server.lineage_token}"}
    push_store = open_store(f"sqlite:///{tmp_path / 'push.db'}")
    to_events = openlineage.mapper(
        {server.namespace: connection(server)}, latest_try=openlineage.store_latest_try(push_store)
    )
    for _auth, payload in list(listener.received):
        with push_store.transaction() as session:
            queries.ingest(session, to_events(payload))
    ids = set(watched["run_ids"].values())
    with push_store.reading() as push, watched["poll_store"].reading() as poll:
        pushed, polled = ours(queries.history(push, BACKEND), ids), ours(queries.history(poll, BACKEND), ids)
    assert pushed == polled
    assert len(polled[0]) == 3 and len(polled[1]) == 2 * len(EXPECTED_ATTEMPTS) + 2
    with push_store.reading() as session:
        sources = {a.source for a in queries.attempts_of(session, BACKEND, "svc_ext", watched["run_ids"]["svc_ext"])}
    assert sources == {"push"}


def test_unreachable_and_refused_backends_say_so_without_the_password(watched) -> None:  # type: ignore[no-untyped-def]
    server = watched["server"]
    from tests.fixtures.airflow_server import free_port

    credentials = {"username": "admin", "password": "s3cret-pw"}
    dead = BackendConnection(BACKEND, "airflow", f"http://127.0.0.1:{free_port()}", {}, credentials)
    with pytest.raises(BackendUnreachable) as down:
        AirflowObserver(dead).poll(None)
    assert "s3cret-pw" not in str(down.value) and "127.0.0.1" in str(down.value)
    wrong = BackendConnection(BACKEND, "airflow", server.url, {}, credentials)
    with pytest.raises(BackendUnreachable) as refused:
        AirflowObserver(wrong).poll(None)
    assert "login as 'admin' refused" in str(refused.value) and "s3cret-pw" not in str(refused.value)


def test_a_refused_trigger_is_not_an_unreachable_backend(watched) -> None:  # type: ignore[no-untyped-def]
    observer = watched["observer"]
    with pytest.raises(AirflowApiError) as unknown:
        observer.trigger("svc_no_such_dag", "k1", {}, None)
    assert unknown.value.status == 404
    day = datetime(2020, 1, 1, tzinfo=UTC)
    key = f"dated_{uuid.uuid4().hex[:8]}"
    assert observer.trigger("svc_many", key, {}, day).created  # paused: the run stays queued
    assert not observer.trigger("svc_many", key, {}, day).created
    with pytest.raises(AirflowApiError) as taken:  # Airflow's 409 again, but for another run's logical date
        observer.trigger("svc_many", key + "_other", {}, day)
    assert taken.value.status == 409 and "logical date 2020-01-01" in str(taken.value)
