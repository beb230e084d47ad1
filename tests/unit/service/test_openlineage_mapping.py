"""OpenLineage -> neutral events, on real events Airflow 3.3.2 + apache-airflow-providers-openlineage 2.20.3 sent.

``data/openlineage_airflow_332.jsonl`` was recorded from a real Airflow (stack traces trimmed): DAG ``ext_probe``
(ok; skip = exit 99; boom = exit 3 with retries=1; after downstream of boom), run ``p1``, then ``ok`` and ``boom``
cleared and re-run in ``p1`` (clear_number 1), then a second run ``t1``. What Airflow's REST API reported for p1
before the clear: ok 1 success, skip 1 skipped, boom 1 failed (history, max_tries 1), boom 2 failed, after 0
upstream_failed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meta.plugins.observers import BackendConnection, EventKind, Source
from meta.service.observers.openlineage import map_event, mapper, store_latest_try
from meta.service.store import queries
from meta.service.store.db import open_store

EVENTS = [json.loads(line) for line in (Path(__file__).parent / "data" / "openlineage_airflow_332.jsonl").open()]
P1_BEFORE_CLEAR = EVENTS[:10]
P1_CLEAR = EVENTS[10:18]
BACKEND = BackendConnection("af", "airflow", "http://af:8080", {"ui_url": "http://ui"}, {}, {})
NAMESPACES = {"airflow_tests": BACKEND}


def states(events):  # type: ignore[no-untyped-def]
    return [(e.kind.value, e.run_id, e.task_id, e.try_number, str(e.state)) for e in events]


def final(events):  # type: ignore[no-untyped-def]
    """What a store keeps: the newest fact per key."""
    newest: dict = {}
    for e in events:
        key = (e.run_id, e.task_id, e.map_index, e.try_number)
        if key not in newest or e.as_of >= newest[key].as_of:
            newest[key] = e
    return {k: str(v.state) for k, v in newest.items()}


def test_a_run_pushed_end_to_end_converges_to_what_airflow_reports() -> None:
    to_events = mapper(NAMESPACES)
    mapped = [e for payload in P1_BEFORE_CLEAR for e in to_events(payload)]
    assert all(e.source is Source.PUSH and e.backend == "af" and e.external for e in mapped)
    assert final(mapped) == {
        ("p1", None, -1, None): "failed",
        ("p1", "ok", -1, 1): "success",
        ("p1", "skip", -1, 1): "skipped",
        ("p1", "boom", -1, 1): "up_for_retry",
        ("p1", "boom", -1, 2): "failed",
        ("p1", "after", -1, 0): "upstream_failed",
    }


def test_a_task_complete_says_nothing_a_fail_with_tries_left_is_up_for_retry() -> None:
    by_kind = {
        (
            p["job"]["name"],
            p["eventType"],
            p["run"]["facets"].get("airflow", {}).get("taskInstance", {}).get("try_number"),
        ): p
        for p in P1_BEFORE_CLEAR
    }
    assert map_event(by_kind[("ext_probe.skip", "COMPLETE", 1)], NAMESPACES) == []  # a skip looks like a success
    assert map_event(by_kind[("ext_probe.ok", "COMPLETE", 1)], NAMESPACES) == []
    (start,) = map_event(by_kind[("ext_probe.skip", "START", 1)], NAMESPACES)
    assert (start.state, start.raw_state, start.started_at) == ("running", "running", start.as_of)
    (retry,) = map_event(by_kind[("ext_probe.boom", "FAIL", 1)], NAMESPACES)
    assert (retry.state, retry.try_number, retry.ended_at) == ("up_for_retry", 1, None)
    (last,) = map_event(by_kind[("ext_probe.boom", "FAIL", 2)], NAMESPACES)
    assert (last.state, last.try_number, last.ended_at) == ("failed", 2, last.as_of)
    assert last.extra["url"] == "http://ui/dags/ext_probe/runs/p1/tasks/boom?try_number=2"


def test_run_events_carry_airflow_ids_and_meta_pipeline_names() -> None:
    built = BackendConnection("af", "airflow", "http://af:8080", {}, {}, {"ext_probe": "probe_pipeline"})
    start, end = P1_BEFORE_CLEAR[0], P1_BEFORE_CLEAR[-1]
    (running,) = map_event(start, {"airflow_tests": built})
    assert (running.kind, running.pipeline_id, running.run_id, running.state) == (
        EventKind.RUN,
        "probe_pipeline",
        "p1",
        "running",
    )
    assert not running.external and running.started_at == datetime(2026, 12, 2, 0, 51, 42, 505298, tzinfo=UTC)
    assert running.ended_at is None and running.extra["url"] == "http://af:8080/dags/ext_probe/runs/p1"
    run, *tasks = map_event(end, {"airflow_tests": built})
    assert (run.state, run.raw_state, run.ended_at) == (
        "failed",
        "failed",
        datetime(2026, 12, 2, 0, 51, 55, 703839, tzinfo=UTC),
    )
    # Without knowing which try ran (no task events seen, no lookup), only the task that never ran is placed.
    assert states(tasks) == [("task_attempt", "p1", "after", 0, "upstream_failed")]
    assert {e.pipeline_id for e in tasks} == {"probe_pipeline"}


def test_run_end_places_task_states_on_the_latest_stored_try(tmp_path: Path) -> None:
    """The API's fallback after a restart: the tries come from the store (here: the task STARTs ingested)."""
    store = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    with store.transaction() as session:
        for payload in P1_BEFORE_CLEAR[:-1]:
            queries.ingest(session, map_event(payload, NAMESPACES))
    _run, *tasks = map_event(P1_BEFORE_CLEAR[-1], NAMESPACES, store_latest_try(store))
    assert sorted(states(tasks)) == [
        ("task_attempt", "p1", "after", 0, "upstream_failed"),
        ("task_attempt", "p1", "boom", 2, "failed"),
        ("task_attempt", "p1", "ok", 1, "success"),
        ("task_attempt", "p1", "skip", 1, "skipped"),
    ]


def test_a_cleared_task_is_a_new_attempt_and_the_first_one_stays() -> None:
    to_events = mapper(NAMESPACES)
    mapped = [e for payload in P1_BEFORE_CLEAR + P1_CLEAR for e in to_events(payload)]
    history = final(mapped)
    assert history[("p1", "ok", -1, 1)] == "success" and history[("p1", "ok", -1, 2)] == "success"
    assert history[("p1", "boom", -1, 4)] == "failed"
    # Known limit: after a clear Airflow raises max_tries, which the events do not carry; polling says
    # up_for_retry for try 3, the push path says failed (the poll's later fact wins in the store).
    assert history[("p1", "boom", -1, 3)] == "failed"


@pytest.mark.parametrize(
    "payload",
    [
        {},  # nothing
        [],  # not an object
        {**P1_BEFORE_CLEAR[0], "job": {**P1_BEFORE_CLEAR[0]["job"], "namespace": "someone_else"}},
        {**P1_BEFORE_CLEAR[0], "eventTime": "yesterday"},
        {  # a Spark job: lineage only
            "eventType": "COMPLETE",
            "eventTime": "2026-12-02T00:00:00Z",
            "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.20.0/integration/spark",
            "job": {"namespace": "airflow_tests", "name": "spark_app.execute_insert_into"},
            "run": {"runId": "0193", "facets": {"spark_version": {"spark-version": "3.5.1"}}},
            "inputs": [{"namespace": "s3://bucket", "name": "in"}],
            "outputs": [{"namespace": "s3://bucket", "name": "out"}],
        },
        {  # dbt
            "eventType": "START",
            "eventTime": "2026-12-02T00:00:00Z",
            "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.20.0/integration/dbt",
            "job": {"namespace": "airflow_tests", "name": "jaffle.model.orders"},
            "run": {"runId": "0194", "facets": {"dbt_version": {"version": "1.8.0"}}},
        },
    ],
)
def test_what_meta_does_not_map_is_nothing(payload) -> None:  # type: ignore[no-untyped-def]
    assert map_event(payload, NAMESPACES) == []
    assert mapper(NAMESPACES)(payload) == []
