"""The dashboard's API and pages: the board and pipeline page as the store has them, scoped by team; sign-in by
cookie (HttpOnly, SameSite=Strict, reads only); the pages' shell and scripts under a strict CSP; the change stream
carrying SLA slot changes; and a CLI that does not mistake another workspace's control plane for its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from meta.cli import cli
from meta.service.api import tokens
from meta.service.api.app import create_app
from meta.service.api.schemas import DashboardBoard, DashboardPipeline
from meta.service.context import ServiceContext
from meta.service.store import queries
from meta.service.store.db import Store, fingerprint, open_store
from meta.service.store.orm import RunRow, SlaSlotRow
from tests.fixtures.dashboard_seed import BACKENDS, TASKS, Seeded, seed
from tests.fixtures.dashboard_server import dashboard_server


class Dash:
    def __init__(self, store: Store, seeded: Seeded):
        self.store, self.seeded, self.stopping = store, seeded, threading.Event()
        with store.transaction() as session:
            self.tokens = {
                "admin": tokens.create(session, name="a", role="admin", team=None).secret,
                "alpha": tokens.create(session, name="v", role="viewer", team="alpha").secret,
                "beta": tokens.create(session, name="b", role="viewer", team="beta").secret,
                "ingest": tokens.create(session, name="i", role="ingest", team=None).secret,
            }
        context = ServiceContext(
            store=store, workspace=seeded.workspace, pipelines=seeded.specs, team_of=seeded.teams.get
        )
        self.client = TestClient(create_app(context, stopping=self.stopping), base_url="http://testserver")

    def get(self, path: str, who: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}"}, **kwargs)


@pytest.fixture
def dash(tmp_path: Path) -> Iterator[Dash]:
    store = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    yield Dash(store, seed(store, pipelines=8, runs=8 * 3 * 25))
    store.engine.dispose()


def test_the_board_has_one_cell_per_pipeline_and_backend_with_its_newest_run(dash: Dash) -> None:
    board = dash.get("/api/v1/dashboard/board", "admin").json()
    DashboardBoard.model_validate(board)  # the JSON written by hand keeps the documented shape
    assert [t["team"] for t in board["teams"]] == ["alpha", "beta"]
    cells = {(p["id"], c["backend"]): c for t in board["teams"] for p in t["pipelines"] for c in p["cells"]}
    assert len(cells) == 8 * len(BACKENDS)
    assert sum(board["counts"].values()) == len(cells)
    assert set(board["backends"]) == set(BACKENDS)
    with dash.store.reading() as session:
        for (pipeline, backend), cell in cells.items():
            newest = session.query(RunRow).filter_by(pipeline_id=pipeline, backend=backend).order_by(RunRow.id.desc())
            assert cell["last_run"]["run_id"] == newest.first().run_id
            slot = session.query(SlaSlotRow).filter_by(subject=pipeline, backend=backend, kind="finish_by").one()
            assert cell["sla"] == slot.state
    assert {c["sla"] for c in cells.values()} >= {"met", "missed", "at_risk", "unknown"}


def test_a_team_sees_only_its_own_pipelines(dash: Dash) -> None:
    board = dash.get("/api/v1/dashboard/board", "alpha").json()
    ids = [p["id"] for t in board["teams"] for p in t["pipelines"]]
    assert ids and all(i.startswith("alpha_") for i in ids)
    beta = next(p for p in dash.seeded.pipelines if p.startswith("beta_"))
    assert dash.get(f"/api/v1/dashboard/pipelines/{beta}", "alpha").status_code == 404
    assert dash.get(f"/api/v1/dashboard/pipelines/{beta}", "beta").status_code == 200
    assert dash.get("/api/v1/dashboard/pipelines/nothing_here", "admin").status_code == 404


def test_the_pipeline_page_draws_the_spec_and_shows_every_backend(dash: Dash) -> None:
    spec = dash.seeded.specs[1]
    page = dash.get(f"/api/v1/dashboard/pipelines/{spec.id}", "admin").json()
    DashboardPipeline.model_validate(page, by_name=True)  # (slots are read from rows by their column names)
    assert page["structure"] == "spec"
    assert {t["id"]: t["upstream"] for t in page["tasks"]} == {t.id: list(t.upstream) for t in spec.tasks}
    assert [b["backend"] for b in page["backends"]] == sorted(BACKENDS)
    assert {b["kind"] for b in page["backends"]} == set(BACKENDS.values())
    for backend in page["backends"]:
        ids = [r["id"] if "id" in r else r["change_seq"] for r in backend["runs"]]
        assert len(backend["runs"]) == 20 and ids == sorted(ids, reverse=True)  # newest first, capped
        newest = backend["runs"][0]["run_id"]
        assert backend["attempts"] and {a["run_id"] for a in backend["attempts"]} == {newest}
    assert [s["backend"] for s in page["sla"]] == sorted(BACKENDS)
    history = [s["id"] for s in page["sla_history"]]
    assert len(history) == 50 and history == sorted(history, reverse=True)  # the newest 50 verdicts
    assert {s["pipeline"] for s in page["sla_history"]} == {spec.id}


def test_a_pipeline_meta_did_not_build_shows_the_tasks_seen(dash: Dash) -> None:
    spec_ids = {s.id for s in dash.seeded.specs}
    other = next(p for p in dash.seeded.pipelines if p not in spec_ids)
    page = dash.get(f"/api/v1/dashboard/pipelines/{other}", "admin").json()
    assert page["structure"] == "observed"
    assert sorted(t["id"] for t in page["tasks"]) == sorted(TASKS)
    assert all(t["upstream"] == [] for t in page["tasks"])


def test_signing_in_keeps_the_token_in_a_cookie_that_only_reads(dash: Dash) -> None:
    client = dash.client
    response = client.post("/api/v1/session", json={"token": dash.tokens["alpha"]})
    assert response.status_code == 200 and response.json() == {"name": "v", "role": "viewer", "team": "alpha"}
    cookie = response.headers["set-cookie"]
    assert "meta_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert dash.tokens["alpha"] not in response.text
    assert client.get("/api/v1/session").json()["team"] == "alpha"
    ids = [p["id"] for t in client.get("/api/v1/dashboard/board").json()["teams"] for p in t["pipelines"]]
    assert ids and all(i.startswith("alpha_") for i in ids)
    # the cookie never changes anything: a POST with it alone is not signed in
    pipeline = ids[0]
    refused = client.post(f"/api/v1/pipelines/{pipeline}/trigger", json={"backend": "local", "params": {}})
    assert refused.status_code == 401
    assert client.delete("/api/v1/session").status_code == 204
    client.cookies.clear()
    assert client.get("/api/v1/session").status_code == 401


@pytest.mark.parametrize(
    ("token", "headers", "status"),
    [
        ("ingest", {}, 403),  # may only post lineage
        ("bogus", {}, 401),
        ("alpha", {"Origin": "http://evil.example"}, 403),  # another site's page cannot sign a browser in
    ],
)
def test_signing_in_is_refused_for_tokens_that_cannot_read_and_for_other_sites(
    dash: Dash, token: str, headers: dict[str, str], status: int
) -> None:
    secret = dash.tokens.get(token, "meta_" + "x" * 43)
    response = dash.client.post("/api/v1/session", json={"token": secret}, headers=headers)
    assert response.status_code == status, response.text
    assert "set-cookie" not in response.headers
    assert secret not in response.text


@pytest.mark.parametrize("path", ["/", "/login", "/graph", "/backends", "/pipelines/a.b", "/pipelines/a/runs/x/y"])
def test_every_page_is_the_shell_under_a_strict_csp(dash: Dash, path: str) -> None:
    response = dash.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js">' in response.text
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    # framed by itself and the workspace's Airflow (its DAG pages' "meta" tab), by nothing else
    assert "frame-ancestors 'self' http://127.0.0.1:9;" in csp
    assert "meta_" not in response.text  # no data, no token


def test_the_scripts_are_served_and_reference_no_other_host() -> None:
    static = Path(__file__).resolve().parents[3] / "meta" / "service" / "dashboard" / "static"
    files = sorted(static.iterdir())
    assert {f.suffix for f in files} == {".html", ".css", ".js"}
    for file in files:
        text = file.read_text()
        assert "http://" not in text.replace("^https?:\\/\\/", "") and "https://" not in text, file.name
        assert "//cdn" not in text and "@import" not in text, file.name


def test_the_change_stream_carries_sla_slot_changes_scoped_by_team(dash: Dash, tmp_path: Path) -> None:
    with dash.store.reading() as session:
        start = queries.current_change_seq(session)
    alpha = next(p for p in dash.seeded.pipelines if p.startswith("alpha_"))
    beta = next(p for p in dash.seeded.pipelines if p.startswith("beta_"))
    with dash.store.transaction() as session:
        seq = queries._reserve(session, queries.CHANGE_COUNTER, 2)
        for i, (subject, team) in enumerate(((alpha, "alpha"), (beta, "beta"))):
            row = session.query(SlaSlotRow).filter_by(subject=subject, backend="local", kind="finish_by").one()
            row.state, row.change_seq, row.team = "missed", seq + i, team
    with dashboard_server(dash.store, dash.seeded) as server:
        import httpx

        seen: list[str] = []
        with httpx.Client(base_url=server.url, timeout=10) as http:
            headers = {"Authorization": f"Bearer {server.tokens['alpha']}"}
            with http.stream("GET", "/api/v1/stream", params={"since": start}, headers=headers) as response:
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        seen.append(line.removeprefix("event: "))
                    if line.startswith("data: ") and seen[-1] == "sla_slot":
                        assert f'"pipeline":"{alpha}"' in line and '"state":"missed"' in line
                        break
    assert seen == ["sla_slot"]  # beta's slot is not alpha's to see


def test_a_cli_does_not_take_another_workspaces_control_plane_for_its_own(dash: Dash, tmp_path: Path) -> None:
    from click.testing import CliRunner

    with dashboard_server(dash.store, dash.seeded) as server:
        port = server.url.rsplit(":", 1)[1]
        (tmp_path / "ws" / "dags").mkdir(parents=True)
        (tmp_path / "ws" / "meta.yaml").write_text(
            f"name: other\nbackends: {{local: {{kind: local}}}}\ncontrol_plane: {{listen: '127.0.0.1:{port}'}}\n"
        )
        result = CliRunner().invoke(
            cli, ["runs", "--workspace", str(tmp_path / "ws")], env={"META_HOME": str(tmp_path / "home")}
        )
    assert "serves another workspace's store" in result.output, result.output
    assert result.exit_code == 0 and "no runs match" in result.output, result.output


def test_store_fingerprints_name_the_store_however_it_is_spelt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert fingerprint("sqlite:///cp.db") == fingerprint(f"sqlite:///{tmp_path / 'cp.db'}")
    assert fingerprint("sqlite:///cp.db") != fingerprint("sqlite:///other.db")
    assert fingerprint("postgresql://u:secret@h/db") == fingerprint("postgresql://u:other@h/db")  # no password in it


def test_the_boards_sla_states_are_the_sla_engines_board(dash: Dash) -> None:
    """The dashboard counts cells in SQL; /api/v1/slas judges each slot in Python: the same verdicts, deadlines
    and miss counts for every cell (the seed has unresolved misses, at-risk, unknown, resolved misses, history)."""
    from meta.service.dashboard import views
    from meta.service.sla import board as sla_board

    now = datetime.now(UTC)
    with dash.store.reading() as session:
        judged = {(c.subject, c.backend): c for c in sla_board.board(session, None, now)}
        counted = views.sla_cells(session, None, now)
        for teams in (frozenset({"alpha"}), frozenset({"beta"})):
            assert set(views.sla_cells(session, teams, now)) == {key for key, c in judged.items() if c.team in teams}
    assert set(counted) == set(judged) and len(counted) == 8 * len(BACKENDS)
    for key, cell in judged.items():
        mine = counted[key]
        assert (mine.state, mine.next_deadline, mine.missed_in_window) == (
            cell.state,
            cell.next_deadline,
            cell.missed_in_window,
        ), key
        if cell.attention:
            assert mine.detail == f"{cell.attention[0].kind}: {cell.attention[0].detail}"[:300]
    assert {c.state for c in counted.values()} >= {"met", "missed", "at_risk", "unknown"}
