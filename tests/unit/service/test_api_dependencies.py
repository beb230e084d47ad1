"""GET /dependencies and /pipelines/{id}/dependencies: team-scoped, with the waits the engine recorded; and
`meta why` explaining them in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from meta.cli.dependency_text import explain
from meta.plugins.observers import EventKind, RunEvent, Source, UnifiedState
from meta.service.dependencies import DependencyEngine
from meta.service.store import queries
from meta.spec.model import Pipeline
from tests.unit.service.api_support import (
    WORKSPACE,
    Api,
    api_fixture,  # noqa: F401 - provides the api fixture
    team_of,
)

NOW = datetime.now(UTC).replace(microsecond=0)


def spec(pipeline_id: str, depends_on: list[object]) -> Pipeline:
    return Pipeline.model_validate(
        {"id": pipeline_id, "depends_on": depends_on, "tasks": [{"id": "t", "action": {"kind": "noop"}}]}
    )


def drive(api: Api) -> None:
    """alpha_report (alpha) waits for alpha_etl; beta_load (beta) waits for alpha_etl's task load."""
    pipelines = [spec("alpha_report", ["alpha_etl"]), spec("beta_load", [{"pipeline": "alpha_etl", "task": "load"}])]
    api.context.pipelines = pipelines
    engine = DependencyEngine(api.store, WORKSPACE, pipelines, api.context.triggerers, team_of=team_of)
    engine.tick(NOW - timedelta(minutes=10))
    logical = datetime(2026, 12, 3, tzinfo=UTC)
    event = RunEvent(
        "af",
        EventKind.RUN,
        "alpha_etl",
        "up1",
        UnifiedState.FAILED,
        "failed",
        NOW - timedelta(minutes=5),
        Source.POLL,
        logical_date=logical,
        started_at=NOW - timedelta(minutes=6),
        ended_at=NOW - timedelta(minutes=5),
    )
    with api.store.transaction() as session:
        queries.ingest(session, [event], team_of=team_of)
    engine.tick(NOW)


def test_the_graph_and_a_pipelines_waits_are_scoped_to_its_team(api: Api) -> None:
    drive(api)
    admin = api.get("/api/v1/dependencies", "admin").json()["edges"]
    assert {(e["pipeline"], e["upstream"], e["task"]) for e in admin} == {
        ("alpha_report", "alpha_etl", None),
        ("beta_load", "alpha_etl", "load"),
    }
    alpha = api.get("/api/v1/dependencies", "alpha_viewer").json()["edges"]
    assert [e["pipeline"] for e in alpha] == ["alpha_report"]
    body = api.get("/api/v1/pipelines/alpha_report/dependencies", "alpha_viewer").json()
    assert [e["upstream"] for e in body["upstreams"]] == ["alpha_etl"]
    assert body["upstreams"][0]["backends"] == ["af"] and body["upstreams"][0]["timeout"] == "1d"
    # the seeded history holds runs of alpha_etl still going: each of their logical dates waits too
    [wait] = [w for w in body["waits"] if w["slot"] == "2026-12-03T00:00:00+00:00"]
    assert (wait["state"], wait["backend"]) == ("waiting", "af")
    assert wait["waiting_for"][0]["detail"] == "failed (af run up1)"
    # beta's pipeline is invisible to alpha, and alpha's to beta: 404 as if it did not exist
    assert api.get("/api/v1/pipelines/beta_load/dependencies", "alpha_viewer").status_code == 404
    assert api.get("/api/v1/pipelines/alpha_report/dependencies", "beta_viewer").status_code == 404
    # alpha sees what waits for alpha_etl only within its team
    etl = api.get("/api/v1/pipelines/alpha_etl/dependencies", "alpha_viewer").json()
    assert [e["pipeline"] for e in etl["downstreams"]] == ["alpha_report"]
    assert api.get("/api/v1/pipelines/alpha_report/dependencies", "revoked").status_code == 401


def test_meta_why_says_what_waits_for_what_since_and_until_when(api: Api) -> None:
    drive(api)
    body = api.get("/api/v1/pipelines/beta_load/dependencies", "beta_viewer").json()
    text = explain(body, now=NOW)
    assert "beta_load is started by the control plane on af when these have succeeded:" in text
    assert "- alpha_etl (task load) on any backend, for the same logical date; gives up after 1d" in text
    assert "2026-12-03T00:00:00+00:00 on af: WAITING since" in text
    assert "(1434 min left)" in text  # a day from the upstream run's start, 6 minutes ago
    assert "... alpha_etl.load: task load not started (af run up1)" in text
