"""The dashboard of a real ``meta serve`` watching a real Prefect server, in a real Chromium: a flow run that
finishes on Prefect turns its cell on the open SLA board and its row on the open pipeline page from running to
success, without a reload (Prefect's event websocket -> the store -> the change stream -> the page)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.browser import artifacts  # the chromium and page fixtures: tests/conftest.py
from tests.fixtures.control_plane import ServeProcess
from tests.fixtures.prefect_flows import PrefectFlow
from tests.fixtures.prefect_server import prefect_server  # noqa: F401 - a pytest fixture

pytestmark = [pytest.mark.slow, pytest.mark.prefect]
ADMIN = "dashboard-live-admin-7f3a9c21"


def workspace(tmp_path: Path, api_url: str) -> Path:
    (tmp_path / "dags").mkdir()
    path = tmp_path / "meta.yaml"
    path.write_text(
        "name: dashboard_live\nspecs: [dags]\n"
        f"backends:\n  prefect: {{kind: prefect, url: '{api_url}'}}\n"
        f"control_plane:\n  database: sqlite:///{tmp_path / 'cp.db'}\n  poll_interval: 1s\n"
        "  admin_token: ${secret:DASH_ADMIN}\n"
    )
    return path


def test_a_run_finishing_on_prefect_changes_the_open_pages_without_a_reload(
    prefect_server: Any,  # noqa: F811
    page: Any,
    chromium: Any,
    tmp_path: Path,
) -> None:
    flow_name = f"dash_live_{uuid.uuid4().hex[:6]}"
    serve = ServeProcess(workspace(tmp_path, prefect_server.api_url), {"META_SECRET_DASH_ADMIN": ADMIN})
    board = chromium.new_context(viewport={"width": 1366, "height": 800}).new_page()
    try:
        with httpx.Client(base_url=prefect_server.api_url, timeout=30) as client:
            flow = PrefectFlow(client, flow_name)
            serve.start()
            run = flow.start("live")
            page.goto(f"{serve.url}/login?next=/pipelines/{flow_name}#token={ADMIN}")
            row = f'tr[data-run="{run}"]'
            page.wait_for_selector(f"{row} .s-running", timeout=20_000)
            board.goto(f"{serve.url}/login#token={ADMIN}")
            cell = f'tr[data-pipeline="{flow_name}"] td[data-backend="prefect"]'
            board.wait_for_selector(f"{cell} .s-running", timeout=20_000)
            for tab in (page, board):
                tab.wait_for_selector("body[data-live=on]")
                tab.evaluate("window.__sameDocument = true")
            page.screenshot(path=str(artifacts() / "live-prefect-running.png"), full_page=True)
            flow.state(run, "COMPLETED")
            page.wait_for_selector(f"{row} .s-success", timeout=15_000)
            board.wait_for_selector(f"{cell} .s-success", timeout=15_000)
            for tab in (page, board):
                assert tab.evaluate("window.__sameDocument") is True  # changed in place, not reloaded
            page.screenshot(path=str(artifacts() / "live-prefect-success.png"), full_page=True)
            link = page.locator(f"{row} a[target=_blank]").get_attribute("href")
            assert link is not None and link.endswith(f"/runs/flow-run/{run.removeprefix('prefect__')}")
            for tab in (page, board):  # leave the live pages first: their stream would retry a stopped server
                tab.goto("about:blank")
            assert serve.stop() == 0
    finally:
        board.context.close()
        serve.kill()
