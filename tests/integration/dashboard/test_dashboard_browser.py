"""The dashboard in a real Chromium over a real uvicorn and a seeded store: signing in by link, the SLA board's counts
and filters, a team's viewer seeing only its team, clicking through to a pipeline (its DAG coloured by state, its
runs on every backend) and a run (the Gantt chart with the retry), the dependency graph, the backends, dark mode, and
a change in the store reaching an open page without a reload. Screenshots: .artifacts/dashboard/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from meta.plugins.observers import UnifiedState
from meta.service.store import queries
from meta.service.store.db import open_store
from tests.fixtures.browser import artifacts  # the chromium and page fixtures: tests/conftest.py
from tests.fixtures.dashboard_seed import BACKENDS, TASKS, Seeded, run_event, seed
from tests.fixtures.dashboard_server import DashboardServer, dashboard_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DashboardServer, Seeded]]:
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('dash') / 'cp.db'}")
    seeded = seed(store, pipelines=24, runs=24 * 3 * 6)
    with dashboard_server(store, seeded) as server:
        yield server, seeded
    store.engine.dispose()


def shot(tab: Any, name: str) -> Path:
    path = artifacts() / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path


def board_rows(tab: Any) -> list[str]:
    return tab.locator("table.board tr[data-pipeline]").evaluate_all("rows => rows.map(r => r.dataset.pipeline)")


def test_the_board_signs_in_by_link_counts_and_filters(page: Any, served: tuple[DashboardServer, Seeded]) -> None:
    server, seeded = served
    page.goto(server.login_url("admin"))
    page.wait_for_selector("table.board tr[data-pipeline]")
    assert "token" not in page.url  # the link's token left the address bar
    assert board_rows(page) == sorted(seeded.pipelines)
    counts = {b.get_attribute("data-state"): int(b.locator("b").inner_text()) for b in page.locator(".count").all()}
    cells = page.locator("td.cell[data-sla]").evaluate_all("cs => cs.map(c => c.dataset.sla)")
    assert len(cells) == len(seeded.pipelines) * len(BACKENDS)
    assert counts == {state: cells.count(state) for state in counts} and counts["missed"] > 0
    shot(page, "board")
    page.fill("#f-text", "pipeline_000")
    assert board_rows(page) == sorted(p for p in seeded.pipelines if "pipeline_000" in p)
    page.fill("#f-text", "")
    page.click('.count[data-state="missed"]')
    missed = board_rows(page)
    assert missed and len(missed) < len(seeded.pipelines)
    for pipeline in missed:
        assert page.locator(f'tr[data-pipeline="{pipeline}"] td[data-sla="missed"]').count() >= 1
    shot(page, "board-missed")
    page.select_option("#f-state", "")
    page.select_option("#f-team", "beta")
    assert board_rows(page) == sorted(p for p in seeded.pipelines if p.startswith("beta_"))


def test_a_teams_viewer_sees_only_its_team(page: Any, served: tuple[DashboardServer, Seeded]) -> None:
    server, seeded = served
    page.goto(server.login_url("alpha"))
    page.wait_for_selector("table.board tr[data-pipeline]")
    assert board_rows(page) == sorted(p for p in seeded.pipelines if p.startswith("alpha_"))
    assert "viewer of alpha" in page.inner_text("#who")
    beta = next(p for p in seeded.pipelines if p.startswith("beta_"))
    page.goto(f"{server.url}/pipelines/{beta}")
    page.wait_for_selector("h1:has-text('Not found')")
    assert beta not in page.inner_text("main").replace(f"pipeline '{beta}'", "")
    page.errors.clear()  # the 404 the browser logs is the point here


def test_clicking_through_a_pipeline_and_a_run(page: Any, served: tuple[DashboardServer, Seeded]) -> None:
    server, seeded = served
    spec = seeded.specs[1]
    page.goto(server.login_url("admin"))
    page.wait_for_selector("table.board tr[data-pipeline]")
    page.click(f'tr[data-pipeline="{spec.id}"] td a >> text="{spec.id}"')
    page.wait_for_selector("svg .node")
    assert page.url.endswith(f"/pipelines/{spec.id}")
    nodes = page.locator("svg .node").evaluate_all("ns => ns.map(n => [n.dataset.node, n.dataset.state])")
    assert sorted(n for n, _ in nodes) == sorted(TASKS)
    assert all(state != "none" for _, state in nodes), nodes  # coloured by the newest run's task states
    assert page.locator("svg path.edge").count() == sum(len(t.upstream) for t in spec.tasks)
    assert page.locator("section[data-backend]").count() == len(BACKENDS)
    assert "waits for" in page.inner_text("main") and seeded.specs[0].id in page.inner_text("main")
    strips = page.locator(".strip").evaluate_all(
        "ss => ss.map(s => [s.dataset.backend, s.querySelectorAll('.sq').length])"
    )
    assert sorted(b for b, _ in strips) == sorted(BACKENDS) and all(n >= 2 for _, n in strips), strips
    shot(page, "pipeline")
    # open runs until one with a retry shows (the seed retries a run's clean task now and then)
    for index in range(page.locator("section[data-backend] tr[data-run] td:first-child a").count()):
        link = page.locator("section[data-backend] tr[data-run] td:first-child a").nth(index)
        run_id = link.inner_text()
        link.click()
        page.wait_for_selector("main[data-run-state]")
        if page.locator('svg .bar[data-try="2"]').count():
            break
        page.go_back()
        page.wait_for_selector("svg .node")
    bars = page.locator("svg .bar").evaluate_all("bs => bs.map(b => [b.dataset.task, b.dataset.try])")
    assert ["clean", "2"] in bars and ["clean", "1"] in bars, (run_id, bars)
    assert page.locator("svg .bar.f-failed").count() >= 1  # the failed first try
    shot(page, "run")


def test_the_dependency_graph_and_the_backends(page: Any, served: tuple[DashboardServer, Seeded]) -> None:
    server, seeded = served
    page.goto(server.login_url("admin", "/graph"))
    page.wait_for_selector("svg .node")
    nodes = page.locator("svg .node").evaluate_all("ns => ns.map(n => n.dataset.node)")
    assert sorted(nodes) == sorted(s.id for s in seeded.specs)
    assert page.locator("svg path.edge").count() == len(seeded.specs) - 1
    shot(page, "graph")
    page.click("nav >> text=Backends")
    page.wait_for_selector("tr[data-backend]")
    assert page.locator("tr[data-backend]").evaluate_all("rs => rs.map(r => r.dataset.backend)") == sorted(BACKENDS)
    shot(page, "backends")


def test_dark_mode_is_dark(chromium: Any, served: tuple[DashboardServer, Seeded]) -> None:
    server, _ = served
    context = chromium.new_context(viewport={"width": 1366, "height": 800}, color_scheme="dark")
    tab = context.new_page()
    tab.goto(server.login_url("admin"))
    tab.wait_for_selector("table.board tr[data-pipeline]")
    background = tab.evaluate("getComputedStyle(document.body).backgroundColor")
    channels = [int(c) for c in background.removeprefix("rgb(").rstrip(")").split(",")]
    assert max(channels) < 60, background
    shot(tab, "board-dark")
    context.close()


def test_a_new_run_reaches_the_open_board_and_pipeline_page_without_a_reload(
    page: Any,
    served: tuple[DashboardServer, Seeded],
) -> None:
    server, seeded = served
    pipeline = seeded.pipelines[5]
    page.goto(server.login_url("admin"))
    page.wait_for_selector("body[data-live=on]")
    page.evaluate("window.__sameDocument = true")
    cell = f'tr[data-pipeline="{pipeline}"] td[data-backend="local"]'
    before = page.inner_text(cell)
    now = datetime.now(UTC)
    with server.store.transaction() as session:
        event = run_event(
            "local", pipeline, "live_run_1", UnifiedState.FAILED, now, now + timedelta(seconds=3), "local"
        )
        queries.ingest(session, [event], team_of=seeded.teams.get)
    page.wait_for_function(
        "sel => document.querySelector(sel).querySelector('a').href.includes('live_run_1')", arg=cell, timeout=10_000
    )
    assert "failed" in page.inner_text(cell) and page.inner_text(cell) != before
    assert page.evaluate("window.__sameDocument") is True  # no reload
    page.click(f"{cell} a")
    page.wait_for_selector("svg .bar, main p.muted")
    page.goto(f"{server.url}/pipelines/{pipeline}")
    page.wait_for_selector('section[data-backend="local"] tr[data-run]')
    page.evaluate("window.__sameDocument = true")
    with server.store.transaction() as session:
        event = run_event("local", pipeline, "live_run_2", UnifiedState.RUNNING, now, None, "local")
        queries.ingest(session, [event], team_of=seeded.teams.get)
    page.wait_for_selector('section[data-backend="local"] tr[data-run="live_run_2"]', timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True
