"""A third party adds a backend kind (here "dagster") with ``register_observers``, exactly as meta's own observers
are registered: the workspace places it, its credentials are resolved for it, and the runtime stores what it sees."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meta.authoring.workspace import load_workspace
from meta.plugins import manager
from meta.plugins.hookspecs import hookimpl
from meta.plugins.observers import BackendConnection, Batch, EventKind, ObserverKind, RunEvent, Source, UnifiedState
from meta.service.connections import database_url, resolve_connections
from meta.service.server import ControlPlane
from meta.service.store import queries
from meta.spec.errors import ValidationFailed

SEEN: list[BackendConnection] = []


class DagsterObserver:
    def __init__(self, connection: BackendConnection):
        SEEN.append(connection)
        self.name = connection.name

    def poll(self, cursor: str | None) -> Batch:
        at = datetime(2026, 12, 2, tzinfo=UTC)
        events = [
            RunEvent(
                self.name,
                EventKind.RUN,
                "asset_job",
                "r1",
                UnifiedState.SUCCESS,
                "SUCCESS",
                at,
                Source.POLL,
                external=True,
            ),
            RunEvent(
                self.name,
                EventKind.TASK_ATTEMPT,
                "asset_job",
                "r1",
                UnifiedState.SUCCESS,
                "STEP_SUCCESS",
                at,
                Source.POLL,
                task_id="op_a",
                try_number=1,
                external=True,
            ),
        ]
        return Batch(events if cursor is None else [], "done", requests=1)

    def close(self) -> None:
        pass


class DagsterPlugin:
    @hookimpl
    def register_observers(self, register: Callable[[ObserverKind], None]) -> None:
        register(ObserverKind("dagster", create=DagsterObserver, description="a Dagster instance (test plugin)"))


@pytest.fixture
def dagster_plugin() -> Iterator[None]:
    manager.reset()
    manager.plugin_manager().register(DagsterPlugin(), "dagster-test")
    try:
        yield
    finally:
        manager.plugin_manager().unregister(name="dagster-test")
        manager.reset()


def workspace(tmp_path: Path, kind: str) -> Path:
    (tmp_path / "dags").mkdir(exist_ok=True)
    path = tmp_path / "meta.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            backends:
              dagster-prod:
                kind: {kind}
                url: http://127.0.0.1:3000
                options: {{repository: analytics}}
                credentials: {{token: "${{secret:DAGSTER_TOKEN}}"}}
            control_plane:
              database: sqlite:///{tmp_path / "cp.db"}
            """
        )
    )
    return path


def test_a_plugin_backend_kind_is_observed_like_a_built_in_one(
    dagster_plugin: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("META_SECRET_DAGSTER_TOKEN", "dagster-token-value-123")
    loaded = load_workspace(workspace(tmp_path, "dagster"))
    plane = ControlPlane.open(loaded.workspace, resolve_connections(loaded), database_url=database_url(loaded))
    try:
        assert plane.refresh() == {"dagster-prod": "ok"}
        with plane.store.reading() as session:
            run = queries.get_run(session, "dagster-prod", "asset_job", "r1", None)
            attempts = queries.attempts_of(session, "dagster-prod", "asset_job", "r1")
        assert run is not None and run.state == "success" and run.raw_state == "SUCCESS" and run.external
        assert [(a.task_id, a.try_number, a.state) for a in attempts] == [("op_a", 1, "success")]
    finally:
        plane.close()
    connection = SEEN[-1]
    assert connection.options == {"repository": "analytics"}
    assert connection.credentials == {"token": "dagster-token-value-123"}
    assert "dagster-token-value-123" not in repr(connection)


def test_a_kind_no_plugin_provides_is_a_positioned_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as failed:
        load_workspace(workspace(tmp_path, "dagstr"))
    message = str(failed.value)
    assert "meta.yaml:4:11: backends.dagster-prod.kind" in message and "'dagstr'" in message
