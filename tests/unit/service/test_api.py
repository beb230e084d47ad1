"""The read endpoints on a real SQLite store seeded through ``queries.ingest``: pipelines, runs (filters, paging),
run detail with attempts, backends without credentials, /metrics, and team scoping on each of them."""

from __future__ import annotations

import logging
import re

import pytest

from meta.plugins.observers import UnifiedState
from meta.service.store import queries
from tests.unit.service.api_support import (
    AIRFLOW_PASSWORD,
    T0,
    Api,
    api_fixture,  # noqa: F401 - provides the api fixture
    run_event,
)


def ids(runs: list[dict[str, str]]) -> list[str]:
    return [r["run_id"] for r in runs]


def test_pipelines_carry_backends_team_external_and_latest_run(api: Api) -> None:
    pipelines = {p["id"]: p for p in api.get("/api/v1/pipelines", "admin").json()}
    assert set(pipelines) == {"alpha_etl", "beta_load", "ext_dag"}
    alpha = pipelines["alpha_etl"]
    assert alpha["team"] == "alpha" and alpha["external"] is False
    latest = {b["backend"]: b["latest_run"]["run_id"] for b in alpha["backends"]}
    assert latest == {"af": "r2", "pf": "p1"}
    assert pipelines["ext_dag"]["external"] is True and pipelines["ext_dag"]["team"] is None
    one = api.get("/api/v1/pipelines/alpha_etl", "alpha_viewer")
    assert one.status_code == 200 and one.json() == alpha


@pytest.mark.parametrize("who", ["alpha_viewer", "alpha_operator", "alpha_admin"])
def test_a_team_sees_only_its_pipelines(api: Api, who: str) -> None:
    assert [p["id"] for p in api.get("/api/v1/pipelines", who).json()] == ["alpha_etl"]
    for other in ("beta_load", "ext_dag", "no_such_pipeline"):
        response = api.get(f"/api/v1/pipelines/{other}", who)
        assert response.status_code == 404
        assert response.json()["detail"] == f"no pipeline {other!r} (or it belongs to a team this token cannot see)"
    assert [p["id"] for p in api.get("/api/v1/pipelines", "beta_viewer").json()] == ["beta_load"]


def test_runs_newest_first_with_filters(api: Api) -> None:
    assert ids(api.get("/api/v1/runs", "admin").json()["runs"]) == ["e1", "b1", "p1", "r2", "r1"]
    assert ids(api.get("/api/v1/runs", "admin", params={"backend": "pf"}).json()["runs"]) == ["p1"]
    assert ids(api.get("/api/v1/runs", "admin", params={"pipeline": "alpha_etl"}).json()["runs"]) == ["p1", "r2", "r1"]
    assert ids(api.get("/api/v1/runs", "admin", params={"state": "success"}).json()["runs"]) == ["e1", "p1", "r1"]
    window = {"since": "2026-11-01T13:00:00Z", "until": "2026-11-01T15:00:00+00:00"}
    assert ids(api.get("/api/v1/runs", "admin", params=window).json()["runs"]) == ["p1", "r2"]
    naive = {"since": "2026-11-01T13:00:00", "until": "2026-11-01T15:00:00"}  # read as UTC
    assert ids(api.get("/api/v1/runs", "admin", params=naive).json()["runs"]) == ["p1", "r2"]
    assert ids(api.get("/api/v1/runs", "admin", params={"team": "beta"}).json()["runs"]) == ["b1"]


def test_runs_page_with_cursor(api: Api) -> None:
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api.get("/api/v1/runs", "admin", params=params).json()
        assert len(page["runs"]) <= 2
        seen += ids(page["runs"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["e1", "b1", "p1", "r2", "r1"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"limit": 0}, 422),
        ({"limit": 501}, 422),
        ({"limit": 500}, 200),
        ({"state": "bogus"}, 422),
        ({"cursor": "not-a-cursor"}, 400),
        ({"cursor": queries.encode_cursor([2**70])}, 400),
        ({"since": "0001-01-01T00:00:00+23:59"}, 422),
        ({"pipeline": "a\x00b"}, 422),
    ],
)
def test_runs_refuse_bad_parameters_with_a_message(api: Api, params: dict[str, object], status: int) -> None:
    response = api.get("/api/v1/runs", "admin", params=params)
    assert response.status_code == status, response.text
    if status == 400:
        assert "cursor" in response.json()["detail"]


def test_team_scoping_of_runs(api: Api) -> None:
    assert ids(api.get("/api/v1/runs", "alpha_viewer").json()["runs"]) == ["p1", "r2", "r1"]
    assert ids(api.get("/api/v1/runs", "beta_viewer").json()["runs"]) == ["b1"]
    # Asking for another team's runs gives nothing, the same as a team with no runs.
    assert api.get("/api/v1/runs", "alpha_viewer", params={"team": "beta"}).json() == {"runs": [], "next_cursor": None}
    assert api.get("/api/v1/runs", "alpha_viewer", params={"pipeline": "beta_load"}).json()["runs"] == []
    assert api.get("/api/v1/runs/af/beta_load/b1", "alpha_viewer").status_code == 404
    assert api.get("/api/v1/runs/af/ext_dag/e1", "alpha_admin").status_code == 404
    assert api.get("/api/v1/runs/af/beta_load/b1", "beta_viewer").status_code == 200


def test_run_detail_has_every_attempt(api: Api) -> None:
    detail = api.get("/api/v1/runs/af/alpha_etl/r2", "alpha_viewer").json()
    assert detail["run"]["state"] == "running"
    assert [(a["task_id"], a["try_number"], a["state"]) for a in detail["attempts"]] == [
        ("extract", 1, "up_for_retry"),
        ("extract", 2, "running"),
    ]
    missing = api.get("/api/v1/runs/af/alpha_etl/nope", "alpha_viewer")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_backends_show_health_and_never_credentials(api: Api) -> None:
    with api.store.transaction() as session:
        queries.upsert_backend(session, "af", "airflow", f"http://admin:{AIRFLOW_PASSWORD}@127.0.0.1:9/")
        queries.record_health(session, "af", health="ok", lag_seconds=1.5, events=7, requests=3)
        queries.record_health(session, "pf", health="unreachable", error="connection refused")
    response = api.get("/api/v1/backends", "alpha_viewer")
    assert AIRFLOW_PASSWORD not in response.text and "admin:" not in response.text
    backends = {b["name"]: b for b in response.json()}
    assert set(backends) == {"af", "pf", "loc"}
    assert backends["af"]["url"] == "http://127.0.0.1:9/"
    assert (backends["af"]["health"], backends["af"]["lag_seconds"], backends["af"]["events_total"]) == ("ok", 1.5, 7)
    assert backends["af"]["last_success_at"] is not None
    assert (backends["pf"]["health"], backends["pf"]["last_error"]) == ("unreachable", "connection refused")
    assert backends["loc"]["kind"] == "local"


def test_a_backend_error_hides_other_teams_pipelines_and_credentials(api: Api) -> None:
    error = f"GET http://admin:{AIRFLOW_PASSWORD}@127.0.0.1:9/api/v2/dags/beta_load/dagRuns/b1/taskInstances: 500"
    with api.store.transaction() as session:
        queries.record_health(session, "af", health="degraded", error=error)
    seen = {b["name"]: b["last_error"] for b in api.get("/api/v1/backends", "alpha_viewer").json()}
    assert (
        seen["af"] == "GET http://***@127.0.0.1:9/api/v2/dags/<another team's pipeline>/dagRuns/b1/taskInstances: 500"
    )
    by_beta = {b["name"]: b["last_error"] for b in api.get("/api/v1/backends", "beta_viewer").json()}
    assert "beta_load" in by_beta["af"] and AIRFLOW_PASSWORD not in by_beta["af"]


def metric(text: str, name: str, **labels: str) -> float | None:
    wanted = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    for line in text.splitlines():
        if line.startswith(name + wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_in_prometheus_format(api: Api) -> None:
    with api.store.transaction() as session:
        queries.record_health(session, "af", health="degraded", lag_seconds=4.0, events=12, requests=5)
    api.get("/api/v1/runs", "admin")
    response = api.get("/metrics", "metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.text
    assert metric(text, "meta_runs", backend="af", state="success") == 2  # r1 and the external e1
    assert metric(text, "meta_runs", backend="af", state="failed") == 1
    assert metric(text, "meta_backend_health", backend="af", health="degraded") == 1
    assert metric(text, "meta_backend_health", backend="af", health="ok") == 0
    assert metric(text, "meta_observer_lag_seconds", backend="af") == 4.0
    assert metric(text, "meta_events_ingested_total", backend="af") == 12
    assert metric(text, "meta_backend_requests_total", backend="af") == 5
    assert metric(text, "meta_api_requests_total", method="GET", route="/api/v1/runs", status="200") == 1
    # Every sample line is name{labels} value; every family has HELP and TYPE.
    for line in text.splitlines():
        assert line.startswith("# ") or re.fullmatch(r'[a-z_]+\{([a-z_]+="[^"]*",?)*\} -?[0-9.e+]+', line), line
    assert text.count("# TYPE") == text.count("# HELP") == 8
    # The runtime's live lag wins over the stored one.
    api.context.observer_stats["af"] = {"lag_seconds": 0.25}
    assert metric(api.get("/metrics", "metrics").text, "meta_observer_lag_seconds", backend="af") == 0.25


def test_metrics_count_only_the_tokens_team_runs(api: Api) -> None:
    text = api.get("/metrics", "beta_viewer").text
    assert metric(text, "meta_runs", backend="af", state="failed") == 1
    assert metric(text, "meta_runs", backend="af", state="success") is None
    assert metric(text, "meta_runs", backend="pf", state="success") is None
    assert "alpha" not in text and "beta_load" not in text


def test_a_new_fact_shows_at_once(api: Api) -> None:
    with api.store.transaction() as session:
        queries.ingest(session, [run_event("af", "alpha_etl", "r2", UnifiedState.SUCCESS, T0.replace(hour=14))])
    assert api.get("/api/v1/runs/af/alpha_etl/r2", "alpha_viewer").json()["run"]["state"] == "success"


def test_no_token_reaches_a_response_or_a_log(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts = []
    for who in ("admin", "alpha_viewer", "metrics"):
        for path in ("/api/v1/pipelines", "/api/v1/runs", "/api/v1/backends", "/api/v1/tokens", "/metrics"):
            texts.append(api.get(path, who).text)
    texts.append(api.client.get("/api/v1/runs", headers={"Authorization": "Bearer meta_wrong"}).text)
    everything = "\n".join(texts) + caplog.text
    for secret in api.secrets.values():
        assert secret not in everything
    with api.store.reading() as session:
        from meta.service.store.orm import TokenRow

        hashes = {row.token_hash for row in session.query(TokenRow)}
    assert not any(secret in hashes for secret in api.secrets.values())
