"""POST /api/v1/lineage: raw events kept once (SHA-256 dedupe), Airflow's mapped and ingested in the same transaction,
other producers stored as lineage only, and only the ingest token admitted."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from meta.plugins.observers import EventKind, RunEvent, Source, UnifiedState
from meta.service.api.app import create_app
from meta.service.store import queries
from meta.service.store.db import open_store
from meta.service.store.orm import BackendRow, LineageEventRow, RunRow
from tests.unit.service.api_support import Api, build_api

STATES = {"START": UnifiedState.RUNNING, "COMPLETE": UnifiedState.SUCCESS, "FAIL": UnifiedState.FAILED}


def airflow_mapper(payload: dict[str, Any]) -> list[RunEvent]:
    """A small stand-in for the runtime's mapper: DAG-run events of namespace 'af' only."""
    if payload.get("job", {}).get("namespace") != "af":
        return []
    dag_run = payload["run"]["facets"]["airflowDagRun"]["dagRun"]
    return [
        RunEvent(
            backend="af",
            kind=EventKind.RUN,
            pipeline_id=dag_run["dag_id"],
            run_id=dag_run["run_id"],
            state=STATES[payload["eventType"]],
            raw_state=payload["eventType"],
            as_of=datetime.fromisoformat(payload["eventTime"]),
            source=Source.PUSH,
        )
    ]


def airflow_event(event_type: str, at: str, dag_id: str = "alpha_etl", run_id: str = "pushed") -> dict[str, Any]:
    return {
        "eventType": event_type,
        "eventTime": at,
        "producer": "https://github.com/apache/airflow/tree/providers-openlineage/2.20.3",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "job": {"namespace": "af", "name": dag_id, "facets": {"jobType": {"jobType": "DAG"}}},
        "run": {
            "runId": "01930000-0000-7000-8000-000000000001",
            "facets": {"airflowDagRun": {"dagRun": {"dag_id": dag_id, "run_id": run_id}}},
        },
        "inputs": [],
        "outputs": [],
    }


SPARK = {
    "eventType": "COMPLETE",
    "eventTime": "2026-11-01T12:00:00.000Z",
    "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.20.0/integration/spark",
    "job": {"namespace": "spark", "name": "daily.aggregate"},
    "run": {"runId": "0191e000-0000-7000-8000-00000000aaaa"},
    "inputs": [{"namespace": "s3://bucket", "name": "raw"}],
    "outputs": [],
}


@pytest.fixture
def api(tmp_path: Path) -> Any:
    store = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    built = build_api(store, lineage=airflow_mapper)
    with built.client:
        yield built
    store.close()


def stored(api: Api) -> list[LineageEventRow]:
    with api.store.reading() as session:
        return list(session.scalars(select(LineageEventRow).order_by(LineageEventRow.id)))


def test_an_airflow_event_is_stored_and_becomes_a_run(api: Api) -> None:
    response = api.post("/api/v1/lineage", "ingest", json=airflow_event("START", "2026-11-01T12:00:00+00:00"))
    assert response.status_code == 201 and response.json() == {"stored": True, "events": 1}
    run = api.get("/api/v1/runs/af/alpha_etl/pushed", "alpha_viewer").json()["run"]
    assert (run["state"], run["source"], run["raw_state"]) == ("running", "push", "START")
    [row] = stored(api)
    assert (row.event_type, row.job_namespace, row.job_name, row.run_uuid) == (
        "START",
        "af",
        "alpha_etl",
        "01930000-0000-7000-8000-000000000001",
    )
    assert row.payload == airflow_event("START", "2026-11-01T12:00:00+00:00")
    assert row.event_time is not None and row.event_time.isoformat() == "2026-11-01T12:00:00+00:00"
    # Pushed events count towards the backend's events_total (/metrics' meta_events_ingested_total).
    with api.store.reading() as session:
        assert session.get(BackendRow, "af").events_total == 1  # type: ignore[union-attr]


def test_a_resent_event_is_stored_once_and_order_does_not_matter(api: Api) -> None:
    complete = airflow_event("COMPLETE", "2026-11-01T12:05:00+00:00")
    start = airflow_event("START", "2026-11-01T12:00:00+00:00")
    for payload in (complete, start, complete):  # out of order, and complete sent twice
        assert api.post("/api/v1/lineage", "ingest", json=payload).status_code == 201
    assert api.post("/api/v1/lineage", "ingest", json=complete).json() == {"stored": False, "events": 0}
    assert len(stored(api)) == 2
    assert api.get("/api/v1/runs/af/alpha_etl/pushed", "admin").json()["run"]["state"] == "success"


def test_other_producers_are_kept_as_lineage(api: Api) -> None:
    response = api.post("/api/v1/lineage", "ingest", json=SPARK)
    assert response.status_code == 201 and response.json() == {"stored": True, "events": 0}
    [row] = stored(api)
    assert (row.job_namespace, row.job_name, row.payload) == ("spark", "daily.aggregate", SPARK)


def test_an_event_the_mapper_chokes_on_is_still_kept(api: Api) -> None:
    broken = airflow_event("START", "2026-11-01T12:00:00+00:00")
    del broken["run"]["facets"]
    response = api.post("/api/v1/lineage", "ingest", json=broken)
    assert response.status_code == 201 and response.json() == {"stored": True, "events": 0}
    assert len(stored(api)) == 1


def test_odd_but_valid_json_is_stored(api: Api) -> None:
    for payload in ({}, {"job": "not an object", "eventTime": "yesterday"}, {"eventType": "X" * 100}):
        assert api.post("/api/v1/lineage", "ingest", json=payload).status_code == 201
    assert len(stored(api)) == 3
    for body in ("[1, 2]", "not json", '"a string"'):
        response = api.client.post(
            "/api/v1/lineage", content=body, headers=api.headers("ingest") | {"content-type": "application/json"}
        )
        assert response.status_code == 422, body


def test_the_raw_event_and_its_runs_commit_together(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_ingest(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(queries, "ingest", failing_ingest)
    client = TestClient(create_app(api.context), raise_server_exceptions=False)
    payload = airflow_event("START", "2026-11-01T12:00:00+00:00", run_id="lost")
    response = client.post("/api/v1/lineage", json=payload, headers=api.headers("ingest"))
    assert response.status_code == 500 and "disk full" not in response.text
    assert stored(api) == []  # no raw event without its runs: the producer's retry delivers both
    monkeypatch.undo()
    assert api.post("/api/v1/lineage", "ingest", json=payload).json() == {"stored": True, "events": 1}
    with api.store.reading() as session:
        assert session.scalar(select(func.count()).select_from(RunRow).where(RunRow.run_id == "lost")) == 1


@pytest.mark.parametrize("who", ["admin", "alpha_operator", "metrics"])
def test_only_the_ingest_token_may_post(api: Api, who: str) -> None:
    response = api.post("/api/v1/lineage", who, json=SPARK)
    assert response.status_code == 403 and "ingest" in response.json()["detail"]
    assert stored(api) == []
