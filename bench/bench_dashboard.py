"""Dashboard cost with 1,000 pipelines x 3 backends and 100,000 runs in the store (SQLite): server time for the SLA
board and for a pipeline page (target <= 150 ms each), and Chromium's time to first render of the board (target
<= 1 s), plus how long a filter keystroke takes to redraw 3,000 cells.

The peer, in the same run, is what a dashboard without its own endpoints would do with the general API: the board
from ``/pipelines`` (latest run per backend) and ``/slas`` (the SLA cells); a pipeline page from ``/pipelines/{id}``,
``/runs?pipeline=``, ``/slas/history`` and ``/runs/{backend}/{id}/{run}`` for each backend's newest run.

    .venv/bin/python -m bench.bench_dashboard                          # 1,000 x 3, 100,000 runs
    .venv/bin/python -m bench.bench_dashboard --pipelines 30 --runs 900 --repeat 3   # a quick check
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.bench_cp_freshness import pct
from meta.service.store.db import open_store
from tests.fixtures.dashboard_seed import seed
from tests.fixtures.dashboard_server import dashboard_server

SERVER_TARGET_MS = 150.0
RENDER_TARGET_MS = 1000.0
CHROMIUM = "/usr/bin/chromium"


def timed(repeat: int, call: Callable[[], list[httpx.Response]]) -> tuple[list[float], list[float]]:
    """(wall ms as the client saw it, server ms from the answers' Server-Timing summed over the calls)."""
    call()  # warm: the first request pays for imports and the SQLite page cache
    wall, server = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        answers = call()
        wall.append((time.perf_counter() - started) * 1000)
        server.append(sum(float(a.headers["server-timing"].split("dur=")[1]) for a in answers))
    return wall, server


def line(name: str, values: list[float], target: float | None = None) -> str:
    verdict = (
        "" if target is None else f"  (target <= {target:.0f} ms: {'ok' if pct(values, 0.95) <= target else 'MISSED'})"
    )
    return f"{name:<44} median {statistics.median(values):8.1f} ms   p95 {pct(values, 0.95):8.1f} ms{verdict}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--skip-browser", action="store_true", help="server times only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'cp.db'}")
        started = time.perf_counter()
        seeded = seed(store, pipelines=args.pipelines, runs=args.runs)
        with store.reading() as session:
            from sqlalchemy import func, select

            from meta.service.store.orm import AttemptRow, RunRow

            runs = session.scalar(select(func.count()).select_from(RunRow))
            attempts = session.scalar(select(func.count()).select_from(AttemptRow))
        print(
            f"store: {args.pipelines} pipelines x 3 backends, {runs:,} runs, {attempts:,} task attempts "
            f"(seeded in {time.perf_counter() - started:.1f} s, SQLite)"
        )
        pipeline = seeded.specs[1].id
        with dashboard_server(store, seeded) as server, httpx.Client(base_url=server.url, timeout=60) as http:
            auth = {"Authorization": f"Bearer {server.tokens['admin']}"}

            def get(path: str, **params: object) -> httpx.Response:
                response = http.get(path, headers=auth, params=params)
                response.raise_for_status()
                return response

            def peer_board() -> list[httpx.Response]:
                return [get("/api/v1/pipelines"), get("/api/v1/slas")]

            def peer_pipeline() -> list[httpx.Response]:
                answers = [get(f"/api/v1/pipelines/{pipeline}")]
                answers.append(get("/api/v1/runs", pipeline=pipeline, limit=60))
                answers.append(get("/api/v1/slas/history", pipeline=pipeline, limit=50))
                for backend in answers[0].json()["backends"]:
                    if backend["latest_run"]:
                        run = backend["latest_run"]["run_id"]
                        answers.append(get(f"/api/v1/runs/{backend['backend']}/{pipeline}/{run}"))
                return answers

            board, board_server = timed(args.repeat, lambda: [get("/api/v1/dashboard/board")])
            page, page_server = timed(args.repeat, lambda: [get(f"/api/v1/dashboard/pipelines/{pipeline}")])
            _, peer_b_server = timed(args.repeat, peer_board)
            _, peer_p_server = timed(args.repeat, peer_pipeline)
            size = len(get("/api/v1/dashboard/board").content)
            print(
                line("server: SLA board (/dashboard/board)", board_server, SERVER_TARGET_MS) + f"  {size / 1e6:.2f} MB"
            )
            print(line("server: pipeline page (/dashboard/pipelines)", page_server, SERVER_TARGET_MS))
            print(line("client: SLA board, request to last byte", board))
            print(line("client: pipeline page, request to last byte", page))
            print(line("peer server: board from /pipelines + /slas", peer_b_server))
            print(line("peer server: page from 3 + 3 general calls", peer_p_server))
            board_ratio = statistics.median(board_server) / statistics.median(peer_b_server)
            page_ratio = statistics.median(page_server) / statistics.median(peer_p_server)
            print(f"ratio meta / peer (median server time): board {board_ratio:.2f}, pipeline page {page_ratio:.2f}")
            if not args.skip_browser:
                browser_times(server, max(3, args.repeat // 4))
    return 0


def browser_times(server: object, repeat: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1366, "height": 800})
        tab = context.new_page()
        tab.goto(server.login_url("admin"))  # type: ignore[attr-defined]
        tab.wait_for_selector("table.board tr[data-pipeline]", timeout=60_000)
        renders, filters = [], []
        for _ in range(repeat):
            tab.reload()
            tab.wait_for_selector("table.board tr[data-pipeline]", timeout=60_000)  # (wait_for_function: CSP refuses)
            renders.append(tab.evaluate("performance.getEntriesByName('meta:board-rendered')[0].startTime"))
            filters.append(
                tab.evaluate(
                    """() => { const input = document.getElementById('f-text'); const t = performance.now();
                    input.value = 'pipeline_09'; input.dispatchEvent(new Event('input'));
                    input.value = ''; input.dispatchEvent(new Event('input')); return (performance.now() - t) / 2; }"""
                )
            )
        tab.wait_for_selector("main[data-rows=all]", timeout=60_000)  # the later slices too
        cells = tab.locator("td.cell[data-sla]").count()
        print(line(f"chromium: first render of the board ({cells} cells)", renders, RENDER_TARGET_MS))
        print(line("chromium: a filter keystroke redraws the first screen", filters))
        browser.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
