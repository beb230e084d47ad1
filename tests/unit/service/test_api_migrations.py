"""GET /migrations and /migrations/{pipeline_id}: team-scoped like every endpoint (another team's migration is a 404,
as if it did not exist), with the phase, the sides and the report."""

from __future__ import annotations

from datetime import UTC, datetime

from meta.service.migrations import records
from meta.service.store.orm import MigrationRow
from tests.unit.service.api_support import Api, api_fixture  # noqa: F401 - provides the api fixture

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def migrating(api: Api, pipeline_id: str, team: str | None, phase: str = records.SHADOWING) -> None:
    with api.store.transaction() as session:
        session.add(
            MigrationRow(
                pipeline_id=pipeline_id,
                team=team,
                source_backend="af",
                target_backend="pf",
                shadow_id=f"{pipeline_id}__shadow",
                phase=phase,
                shadow_since=NOW,
                handoff_slot=NOW if phase == records.TARGET_LIVE else None,
                history=[records.history_entry("shadow", "cli", NOW, to="pf")],
                created_at=NOW,
                updated_at=NOW,
            )
        )


def test_each_team_sees_its_own_migrations_only(api: Api) -> None:
    migrating(api, "alpha_etl", "alpha", records.TARGET_LIVE)
    migrating(api, "beta_load", "beta")
    alpha = api.get("/api/v1/migrations", "alpha_viewer")
    assert alpha.status_code == 200
    [only] = alpha.json()
    assert only["pipeline_id"] == "alpha_etl" and only["live_on"] == "pf" and only["phase"] == "target_live"
    assert [m["pipeline_id"] for m in api.get("/api/v1/migrations", "beta_viewer").json()] == ["beta_load"]
    assert sorted(m["pipeline_id"] for m in api.get("/api/v1/migrations", "admin").json()) == ["alpha_etl", "beta_load"]


def test_a_report_is_shown_to_its_team_and_is_a_404_for_another(api: Api) -> None:
    migrating(api, "alpha_etl", "alpha")
    report = api.get("/api/v1/migrations/alpha_etl", "alpha_viewer")
    assert report.status_code == 200
    body = report.json()
    assert body["pipeline_id"] == "alpha_etl" and body["phase"] == "shadowing" and body["pairs"] == []
    assert body["ready"] is False
    hidden = api.get("/api/v1/migrations/alpha_etl", "beta_viewer")
    missing = api.get("/api/v1/migrations/nothing_here", "beta_viewer")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace("alpha_etl", "X") == missing.json()["detail"].replace("nothing_here", "X")
    assert api.client.get("/api/v1/migrations").status_code == 401
