"""Token checks on every route, walked from ``app.routes``: a new route that is missing from ROUTES (with the role it
needs) fails here, and so does one that answers without a valid token."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from fastapi.routing import APIRoute

from meta.service.api.app import create_app
from meta.service.store.orm import TokenRow
from tests.unit.service.api_support import (
    BOOTSTRAP,
    WORKSPACE,
    Api,
    api_fixture,  # noqa: F401 - provides the api fixture
)

# (method, path) -> the weakest token that may call it; None: no token needed.
ROUTES: dict[tuple[str, str], str | None] = {
    ("GET", "/api/v1/health"): None,
    ("GET", "/api/v1/pipelines"): "viewer",
    ("GET", "/api/v1/pipelines/{pipeline_id}"): "viewer",
    ("POST", "/api/v1/pipelines/{pipeline_id}/trigger"): "operator",
    ("GET", "/api/v1/runs"): "viewer",
    ("GET", "/api/v1/runs/{backend}/{pipeline_id}/{run_id}"): "viewer",
    ("GET", "/api/v1/slas"): "viewer",
    ("GET", "/api/v1/slas/history"): "viewer",
    ("GET", "/api/v1/dependencies"): "viewer",
    ("GET", "/api/v1/pipelines/{pipeline_id}/dependencies"): "viewer",
    ("GET", "/api/v1/migrations"): "viewer",
    ("GET", "/api/v1/migrations/{pipeline_id}"): "viewer",
    ("GET", "/api/v1/backends"): "viewer",
    ("GET", "/api/v1/stream"): "viewer",
    ("GET", "/api/v1/tokens"): "admin",
    ("POST", "/api/v1/tokens"): "admin",
    ("DELETE", "/api/v1/tokens/{token_id}"): "admin",
    ("POST", "/api/v1/lineage"): "ingest",
    ("GET", "/metrics"): "metrics",
    ("GET", "/api/v1/dashboard/board"): "viewer",
    ("GET", "/api/v1/dashboard/pipelines/{pipeline_id}"): "viewer",
    ("GET", "/api/v1/session"): "viewer",
    ("POST", "/api/v1/session"): "body",  # the token comes in the body (tests/unit/service/test_api_dashboard.py)
    ("DELETE", "/api/v1/session"): None,  # signing out needs nothing: it only clears the cookie
    # the dashboard's pages: one HTML shell with no data in it (the data comes from the routes above)
    ("GET", "/"): None,
    ("GET", "/login"): None,
    ("GET", "/graph"): None,
    ("GET", "/backends"): None,
    ("GET", "/pipelines/{rest:path}"): None,
}
# Documentation routes FastAPI adds itself: no data in them.
DOCS = {"/api/v1/openapi.json", "/api/v1/docs", "/api/v1/docs/oauth2-redirect"}
STATIC = "/static"  # the dashboard's own scripts and styles
SAMPLE = {"pipeline_id": "alpha_etl", "backend": "af", "run_id": "r1", "token_id": "1", "rest": "alpha_etl"}
BODIES = {
    "/api/v1/pipelines/{pipeline_id}/trigger": {"backend": "af", "params": {}},
    "/api/v1/tokens": {"name": "x", "role": "viewer", "team": "alpha"},
    "/api/v1/lineage": {"eventType": "START", "producer": "test"},
}
# Which of the test tokens each required role admits (ranked roles admit every role above them).
ADMITS = {
    "viewer": {"alpha_viewer", "alpha_operator", "alpha_admin", "admin", "bootstrap"},
    "operator": {"alpha_operator", "alpha_admin", "admin", "bootstrap"},
    "admin": {"alpha_admin", "admin", "bootstrap"},
    "ingest": {"ingest"},
    "metrics": {"metrics", "alpha_viewer", "alpha_operator", "alpha_admin", "admin", "bootstrap"},
}
EVERY_TOKEN = sorted({who for group in ADMITS.values() for who in group})


def app_routes() -> list[tuple[str, str]]:
    from meta.service.context import ServiceContext

    app = create_app(ServiceContext(store=None, workspace=WORKSPACE))  # type: ignore[arg-type] - routes only
    return sorted(walk(app.routes))


def walk(routes: list[Any]) -> list[tuple[str, str]]:
    """(method, path) of every API route. FastAPI 0.136 flattens included routers into ``app.routes``; 0.15x keeps
    them as objects holding ``original_router`` (the app's routers carry their own prefix, so paths are whole)."""
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found += [(method, route.path) for method in sorted(route.methods)]
        elif hasattr(route, "original_router"):
            assert not route.include_context.prefix, "routers carry their prefix themselves (see routers/common.py)"
            found += walk(route.original_router.routes)
        else:
            assert getattr(route, "path", None) in {*DOCS, STATIC}, f"unexpected non-API route {route}"
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLE[m.group(1)], path)


def call(api: Api, method: str, path: str, headers: dict[str, str]) -> Any:
    body = BODIES.get(path)
    return api.client.request(method, concrete(path), headers=headers, json=body if method == "POST" else None)


def test_the_route_table_is_exactly_the_apps() -> None:
    assert sorted(app_routes()) == sorted(ROUTES), "add the new route to ROUTES with the role it needs"


@pytest.mark.parametrize(("method", "path"), sorted(app_routes()))
def test_every_route_refuses_missing_malformed_unknown_and_revoked_tokens(api: Api, method: str, path: str) -> None:
    if ROUTES[(method, path)] is None:
        assert call(api, method, path, {}).status_code in (200, 204)
        return
    if ROUTES[(method, path)] == "body":
        return  # its own tests: the token is the body
    cases = {
        "missing": {},
        "not bearer": {"Authorization": f"Basic {api.secrets['admin']}"},
        "unknown": {"Authorization": "Bearer meta_" + "x" * 43},
        "garbage": {"Authorization": "Bearer nonsense"},
        "revoked": api.headers("revoked"),
    }
    for case, headers in cases.items():
        response = call(api, method, path, headers)
        assert response.status_code == 401, (case, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        detail = response.json()["detail"]
        assert "token" in detail.lower() or "bearer" in detail.lower()
        for secret in api.secrets.values():
            assert secret not in response.text


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in ROUTES.items() if v not in (None, "body")))
@pytest.mark.parametrize("who", EVERY_TOKEN)
def test_every_route_admits_exactly_its_roles(api: Api, method: str, path: str, who: str) -> None:
    needed = ROUTES[(method, path)]
    assert needed is not None
    headers = api.headers(who)
    if path == "/api/v1/stream" and who in ADMITS[needed]:
        # An admitted stream never ends: open it and read its first frame only.
        with api.client.stream(method, path, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert next(response.iter_lines()).startswith("retry:")
        return
    response = call(api, method, path, headers)
    if who in ADMITS[needed]:
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == 403, response.text
        assert "token" in response.json()["detail"]


def test_the_bootstrap_admin_is_a_global_admin_without_a_row(api: Api) -> None:
    response = api.get("/api/v1/pipelines", "bootstrap")
    assert {p["id"] for p in response.json()} == {"alpha_etl", "beta_load", "ext_dag"}
    with api.store.reading() as session:
        assert all(row.name != "bootstrap-admin" for row in session.query(TokenRow))
    created = api.post("/api/v1/tokens", "bootstrap", json={"name": "first", "role": "admin"})
    assert created.status_code == 201


def test_a_short_bootstrap_token_is_refused() -> None:
    from meta.service.context import ServiceContext

    with pytest.raises(ValueError, match="at least 16"):
        create_app(ServiceContext(store=None, workspace=WORKSPACE), bootstrap_admin_token="short")  # type: ignore[arg-type]
    assert len(BOOTSTRAP) >= 16


def test_docs_and_openapi_are_published(api: Api) -> None:
    spec = api.client.get("/api/v1/openapi.json").json()
    assert set(spec["paths"]) == {path for _method, path in ROUTES if path.startswith(("/api/", "/metrics"))}
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert api.client.get("/api/v1/docs").status_code == 200


# The strongest token of team beta each role-gated route admits: what a curious neighbour could hold.
NEIGHBOUR = {"viewer": "beta_operator", "operator": "beta_operator", "admin": "beta_admin", "metrics": "beta_admin"}


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in ROUTES.items() if v in NEIGHBOUR))
def test_no_route_shows_another_teams_names(api: Api, method: str, path: str) -> None:
    """Every team-reachable route, aimed at team alpha's pipeline and run with team beta's strongest token, answers
    without a trace of alpha (404s name only what the caller sent)."""
    role = ROUTES[(method, path)]
    assert role is not None
    who = NEIGHBOUR[role]
    if path == "/api/v1/stream":
        threading.Timer(1.0, api.stopping.set).start()  # the stream ends after its history has been sent
        with api.client.stream("GET", path, params={"since": 0}, headers=api.headers(who)) as response:
            text = "\n".join(response.iter_lines())
        assert "beta_load" in text
    else:
        response = call(api, method, path, api.headers(who))
        text = response.text
        if "{" in path:
            assert response.status_code == 404, response.text
            text = text.replace(concrete(path).split("/")[-1], "").replace("alpha_etl", "")  # what beta itself sent
    assert "alpha" not in text, text
