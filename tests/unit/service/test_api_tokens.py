"""/api/v1/tokens: admins create (the secret shown once), list (never secrets) and revoke; a team's admin only
within its team; a revoked token is refused at once."""

from __future__ import annotations

from meta.service.store.orm import TokenRow
from tests.unit.service.api_support import (
    Api,
    api_fixture,  # noqa: F401 - provides the api fixture
)


def test_create_use_list_and_revoke(api: Api) -> None:
    created = api.post("/api/v1/tokens", "admin", json={"name": "ci", "role": "operator", "team": "alpha"})
    assert created.status_code == 201
    body = created.json()
    secret = body.pop("token")
    assert secret.startswith("meta_")
    assert (body["name"], body["role"], body["team"], body["revoked_at"]) == ("ci", "operator", "alpha", None)
    headers = {"Authorization": f"Bearer {secret}"}
    assert [p["id"] for p in api.client.get("/api/v1/pipelines", headers=headers).json()] == ["alpha_etl"]
    listed = api.get("/api/v1/tokens", "admin")
    assert secret not in listed.text and "token_hash" not in listed.text
    assert {t["name"] for t in listed.json()} >= {"ci", "alpha_viewer", "ingest"}
    revoked = api.client.delete(f"/api/v1/tokens/{body['id']}", headers=api.headers("admin"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = api.client.get("/api/v1/pipelines", headers=headers)
    assert refused.status_code == 401 and refused.json()["detail"] == "the API token is unknown or revoked"


def test_a_team_admin_manages_only_its_team(api: Api) -> None:
    own = api.post("/api/v1/tokens", "alpha_admin", json={"name": "mine", "role": "viewer", "team": "alpha"})
    assert own.status_code == 201
    for body in (
        {"name": "theirs", "role": "viewer", "team": "beta"},
        {"name": "global", "role": "admin"},
        {"name": "scraper", "role": "metrics"},
    ):
        response = api.post("/api/v1/tokens", "alpha_admin", json=body)
        assert response.status_code == 403 and "its own team only" in response.json()["detail"]
    assert {t["team"] for t in api.get("/api/v1/tokens", "alpha_admin").json()} == {"alpha"}
    with api.store.reading() as session:
        beta = session.query(TokenRow).filter_by(name="beta_viewer").one()
    response = api.client.delete(f"/api/v1/tokens/{beta.id}", headers=api.headers("alpha_admin"))
    assert response.status_code == 404 and response.json()["detail"].startswith(f"no token {beta.id}")
    assert api.get("/api/v1/pipelines", "beta_viewer").status_code == 200


def test_token_requests_are_validated(api: Api) -> None:
    for body, status in (
        ({"name": "x", "role": "viewer"}, 422),  # a viewer needs a team
        ({"name": "x", "role": "ingest", "team": "alpha"}, 422),
        ({"name": "x", "role": "root", "team": "alpha"}, 422),
        ({"name": "", "role": "viewer", "team": "alpha"}, 422),
        ({"name": "x", "role": "viewer", "team": "Not A Team"}, 422),
        ({"name": "x", "role": "viewer", "team": "alpha", "extra": 1}, 422),
        ({"name": "ingest-af", "role": "ingest"}, 201),
        ({"name": "prometheus", "role": "metrics"}, 201),
    ):
        response = api.post("/api/v1/tokens", "admin", json=body)
        assert response.status_code == status, (body, response.text)
    assert api.client.delete("/api/v1/tokens/0", headers=api.headers("admin")).status_code == 422
    assert api.client.delete("/api/v1/tokens/99999", headers=api.headers("admin")).status_code == 404
