"""What the API tests share: a workspace with two teams, a store seeded through ``queries.ingest`` with real
``RunEvent`` objects, one token per role and team, and a triggerer that keeps the backends' idempotency contract
(a known key starts nothing), standing in for Airflow/Prefect whose real triggers the observer tests cover."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from meta.plugins.observers import BackendUnreachable, EventKind, RunEvent, Source, TriggerResult, UnifiedState
from meta.service.api import tokens
from meta.service.api.app import create_app
from meta.service.context import ServiceContext
from meta.service.store import queries
from meta.service.store.db import Store, open_store
from meta.spec.workspace import Workspace

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
BOOTSTRAP = "bootstrap-admin-secret-0123456789"
AIRFLOW_PASSWORD = "af-password-never-shown"  # a fake credential looked for in responses

WORKSPACE = Workspace.model_validate(
    {
        "backends": {
            "af": {"kind": "airflow", "url": "http://127.0.0.1:9/", "username": "admin", "password": "${secret:AF_PW}"},
            "pf": {"kind": "prefect", "url": "http://127.0.0.1:9/api"},
            "loc": {"kind": "local"},
        },
        "placements": [
            {"backend": "af", "pipelines": ["alpha_*", "beta_*"]},
            {"backend": "pf", "pipelines": ["alpha_etl"]},
            {"backend": "loc", "pipelines": ["alpha_local"]},
        ],
        "teams": {"alpha": {"pipelines": ["alpha_*"]}, "beta": {"pipelines": ["beta_*"]}},
    }
)


def run_event(
    backend: str,
    pipeline: str,
    run_id: str,
    state: UnifiedState,
    at: datetime,
    *,
    external: bool = False,
    started: datetime | None = None,
    ended: datetime | None = None,
    logical_date: datetime | None = None,
) -> RunEvent:
    return RunEvent(
        backend=backend,
        kind=EventKind.RUN,
        pipeline_id=pipeline,
        run_id=run_id,
        state=state,
        raw_state=str(state),
        as_of=at,
        source=Source.POLL,
        started_at=started or at,
        ended_at=ended,
        logical_date=logical_date,
        external=external,
    )


def attempt_event(
    backend: str,
    pipeline: str,
    run_id: str,
    task: str,
    try_number: int,
    state: UnifiedState,
    at: datetime,
    map_index: int = -1,
) -> RunEvent:
    return RunEvent(
        backend=backend,
        kind=EventKind.TASK_ATTEMPT,
        pipeline_id=pipeline,
        run_id=run_id,
        state=state,
        raw_state=str(state),
        as_of=at,
        source=Source.POLL,
        task_id=task,
        map_index=map_index,
        try_number=try_number,
        started_at=at,
    )


def seed_events() -> list[RunEvent]:
    """alpha_etl: two runs on af (the second with a retried task) and one on pf; beta_load: one failed run on af;
    ext_dag: an external DAG of no team (only admins without a team see it)."""
    return [
        run_event("af", "alpha_etl", "r1", UnifiedState.SUCCESS, T0),
        attempt_event("af", "alpha_etl", "r1", "extract", 1, UnifiedState.SUCCESS, T0),
        run_event("af", "alpha_etl", "r2", UnifiedState.RUNNING, T0 + timedelta(hours=1)),
        attempt_event("af", "alpha_etl", "r2", "extract", 1, UnifiedState.UP_FOR_RETRY, T0 + timedelta(hours=1)),
        attempt_event("af", "alpha_etl", "r2", "extract", 2, UnifiedState.RUNNING, T0 + timedelta(hours=1, minutes=5)),
        run_event("pf", "alpha_etl", "p1", UnifiedState.SUCCESS, T0 + timedelta(hours=2)),
        run_event("af", "beta_load", "b1", UnifiedState.FAILED, T0 + timedelta(hours=3)),
        attempt_event("af", "beta_load", "b1", "load", 1, UnifiedState.FAILED, T0 + timedelta(hours=3)),
        run_event("af", "ext_dag", "e1", UnifiedState.SUCCESS, T0 + timedelta(hours=4), external=True),
    ]


def team_of(pipeline_id: str) -> str | None:
    return WORKSPACE.team_of(pipeline_id)


@dataclass
class FakeTriggerer:
    """Keeps the Triggerable contract like Airflow (dag_run_id) and Prefect (idempotency_key): a key already used
    returns its run with ``created=False``. ``calls`` records every call; ``fail`` makes the next call raise."""

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    started: dict[str, str] = field(default_factory=dict)
    fail: Exception | None = None

    def trigger(
        self, pipeline_id: str, key: str, params: Mapping[str, Any], logical_date: datetime | None
    ) -> TriggerResult:
        self.calls.append((pipeline_id, key, dict(params)))
        if self.fail is not None:
            raise self.fail
        if key in self.started:
            return TriggerResult(run_id=self.started[key], created=False)
        self.started[key] = key
        return TriggerResult(run_id=key, created=True, url=f"http://127.0.0.1:9/runs/{key}")


UNREACHABLE = BackendUnreachable(f"POST http://admin:{AIRFLOW_PASSWORD}@127.0.0.1:9/api/v2/dags/x/dagRuns: refused")


@dataclass
class Api:
    """One app on one store, with a token per (role, team) and the raw secrets for the tests to send."""

    store: Store
    context: ServiceContext
    app: FastAPI
    client: TestClient
    triggerer: FakeTriggerer
    stopping: threading.Event
    secrets: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[who]}"}

    def get(self, path: str, who: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers(who), **kwargs)

    def post(self, path: str, who: str, **kwargs: Any) -> Any:
        return self.client.post(path, headers=self.headers(who), **kwargs)


WHO = {
    "alpha_viewer": ("viewer", "alpha"),
    "alpha_operator": ("operator", "alpha"),
    "alpha_admin": ("admin", "alpha"),
    "beta_viewer": ("viewer", "beta"),
    "beta_operator": ("operator", "beta"),
    "beta_admin": ("admin", "beta"),
    "admin": ("admin", None),
    "ingest": ("ingest", None),
    "metrics": ("metrics", None),
    "revoked": ("admin", None),
}


def build_api(store: Store, *, seed: bool = True, lineage: Any = None) -> Api:
    triggerer = FakeTriggerer()
    context = ServiceContext(
        store=store, workspace=WORKSPACE, triggerers={"af": triggerer, "pf": triggerer}, team_of=team_of
    )
    if lineage is not None:
        context.lineage = lineage
    with store.transaction() as session:
        for name, spec in WORKSPACE.backends.items():
            queries.upsert_backend(session, name, spec.kind, getattr(spec, "url", ""))
        if seed:
            queries.ingest(session, seed_events(), team_of=team_of)
    secrets = {}
    with store.transaction() as session:
        for who, (role, team) in WHO.items():
            created = tokens.create(session, name=who, role=role, team=team)
            secrets[who] = created.secret
            if who == "revoked":
                tokens.revoke(session, created.row.id)
    secrets["bootstrap"] = BOOTSTRAP
    stopping = threading.Event()
    app = create_app(context, bootstrap_admin_token=BOOTSTRAP, stopping=stopping)
    client = TestClient(app)
    return Api(store, context, app, client, triggerer, stopping, secrets)


@pytest.fixture(name="api")
def api_fixture(tmp_path: Path) -> Iterator[Api]:
    """The API on a fresh SQLite file, seeded; the client runs the app's lifespan."""
    store = open_store(f"sqlite:///{tmp_path / 'control-plane.db'}")
    built = build_api(store)
    with built.client:
        yield built
    store.close()
