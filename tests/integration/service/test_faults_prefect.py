"""Fault injection on the real ``meta serve`` watching the session's real Prefect server, through a loopback proxy
(REST and websocket alike): SIGKILL at random moments while flow runs change state, the server cut off for seconds
(the websocket drops, states change behind the cut), restarts; afterwards the store's runs equal what Prefect's own
REST API reports, each once, with Prefect's state names."""

from __future__ import annotations

import random
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from meta.service.store import queries
from meta.service.store.db import open_store
from tests.fixtures.control_plane import ServeProcess, settled_health
from tests.fixtures.prefect_flows import prefect_post
from tests.fixtures.prefect_server import prefect_server  # noqa: F401 - a pytest fixture
from tests.fixtures.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.prefect, pytest.mark.slow]
RUNS = 12
ENDINGS = ("COMPLETED", "FAILED", "CANCELLED")


def set_state(client: httpx.Client, run_id: str, state: str) -> None:
    prefect_post(client, f"/flow_runs/{run_id}/set_state", {"state": {"type": state}, "force": True})


def backend_runs(client: httpx.Client, flow_id: str) -> set[tuple[str, str]]:
    runs = client.post("/flow_runs/filter", json={"flows": {"id": {"any_": [flow_id]}}, "limit": 200}).json()
    return {(f"prefect__{r['id']}", r["state_name"]) for r in runs}


def stored_runs(store: Any, flow: str) -> set[tuple[str, str]]:
    with store.reading() as session:
        rows, _ = queries.list_runs(session, queries.RunFilter(backend="prefect", pipeline_id=flow), limit=1000)
    keys = [r.run_id for r in rows]
    assert len(keys) == len(set(keys)), "a run stored twice"
    return {(r.run_id, r.raw_state or "") for r in rows}


def test_sigkill_and_an_outage_lose_and_duplicate_nothing(prefect_server, tmp_path: Path) -> None:  # noqa: F811
    api = prefect_server.api_url
    host, port = api.removeprefix("http://").split("/", 1)[0].split(":")
    proxy = TcpProxy(host, int(port)).start()
    flow_name = f"cp_faults_{uuid.uuid4().hex[:6]}"
    (tmp_path / "dags").mkdir()
    (tmp_path / "meta.yaml").write_text(
        textwrap.dedent(
            f"""
            name: faults
            specs: [dags]
            backends:
              prefect: {{kind: prefect, url: {proxy.url}/api}}
            control_plane:
              database: sqlite:///{tmp_path / "cp.db"}
              poll_interval: 0.5s
            """
        )
    )
    serve = ServeProcess(tmp_path / "meta.yaml", {})
    rng = random.Random(20261202)
    try:
        with httpx.Client(base_url=api, timeout=30) as client:
            flow_id = prefect_post(client, "/flows/", {"name": flow_name})["id"]
            serve.start()
            run_ids = []
            for i in range(RUNS):
                run = prefect_post(client, "/flow_runs/", {"flow_id": flow_id, "name": f"r{i}"})
                run_ids.append(run["id"])
                set_state(client, run["id"], "RUNNING")
                if i in (3, 7):
                    time.sleep(rng.uniform(0.1, 1.0))
                    serve.kill()  # SIGKILL while runs are changing
                    serve.start(wait=False)
                if i == 5:
                    proxy.cut()  # the websocket and the polls go dark; states change behind the cut
                    time.sleep(2.5)
                if i == 9:
                    serve.wait_ready()  # up again, and still cut off
                    time.sleep(2.5)
                    proxy.restore()
            for i, run_id in enumerate(run_ids):
                set_state(client, run_id, ENDINGS[i % len(ENDINGS)])
            serve.wait_ready()
            expected = backend_runs(client, flow_id)
        store = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
        deadline = time.monotonic() + 60
        while (got := stored_runs(store, flow_name)) != expected and time.monotonic() < deadline:
            time.sleep(0.5)
        health, seen_error = settled_health(store, "prefect")
        assert serve.stop() == 0
    finally:
        serve.kill()
        proxy.stop()
    assert len(expected) >= RUNS  # a create retried after a 503 may have made one more
    assert got == expected, (expected - got, got - expected)
    assert {state for _, state in got} == {"Completed", "Failed", "Cancelled"}
    assert seen_error is not None and health == "ok", "the outage was seen and recovered from"
