"""Pipelines run in-process as Prefect flows (``PrefectTarget.run``) against a throwaway Prefect server."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from meta_prefect.events import DATASET_EVENT

from meta.plugins.manager import get_target
from meta.semantics.request import RunRequest
from meta.spec.errors import ValidationFailed
from meta.spec.model import Pipeline
from meta.spec.states import RunState

pytestmark = pytest.mark.usefixtures("prefect_api")


def pipeline(pid: str, tasks: list[dict[str, Any]], **fields: Any) -> Pipeline:
    return Pipeline.model_validate({"id": pid, "tasks": tasks, **fields})


def sh(task_id: str, command: str, upstream: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
    return {"id": task_id, "action": {"kind": "shell", "command": command}, "upstream": upstream, **fields}


def run(p: Pipeline, progress: Any = None, **kwargs: Any):
    return get_target("prefect").run(p, RunRequest.build(p, **kwargs), progress=progress)


def test_failed_task_that_is_not_a_leaf_does_not_fail_the_run_but_a_failed_leaf_does() -> None:
    # Prefect alone would mark both flows Completed; Airflow's leaf rule decides.
    ok = run(pipeline("leaf_ok", [sh("a", "exit 4"), sh("b", "true", ("a",), trigger_rule="all_done")]))
    assert ok.states() == {"a": "failed", "b": "success"} and ok.state == RunState.SUCCESS
    bad = run(pipeline("leaf_bad", [sh("a", "true"), sh("b", "exit 4", ("a",))]))
    assert bad.states() == {"a": "success", "b": "failed"} and bad.state == RunState.FAILED
    assert bad.backend == "prefect"
    assert bad.to_json()["tasks"] == {"a": {"state": "success", "attempts": 1}, "b": {"state": "failed", "attempts": 1}}


def test_branch_skips_unfollowed_and_join_runs() -> None:
    p = pipeline(
        "branching",
        [
            {
                "id": "pick",
                "action": {"kind": "branch", "callable": "meta_prefect_testfns:choose", "kwargs": {"which": "right"}},
            },
            sh("left", "true", ("pick",)),
            sh("right", "exit 99", ("pick",)),
            sh("after_left", "true", ("left",)),
            sh("join", "true", ("after_left", "right"), trigger_rule="none_failed_min_one_success"),
            sh("always", "true", ("join",), trigger_rule="always"),
        ],
    )
    result = run(p)
    assert result.states() == {
        "pick": "success",
        "left": "skipped",
        "right": "skipped",  # followed, then exit 99
        "after_left": "skipped",
        "join": "skipped",  # every upstream skipped
        "always": "success",
    }
    assert result.tasks["left"].attempts == 0 and result.tasks["right"].attempts == 1


def test_retries_see_the_try_number_and_count_attempts(tmp_path: Path) -> None:
    marker = tmp_path / "tries"
    p = pipeline(
        "retrying",
        [
            sh(
                "flaky",
                f'echo "$META_TRY_NUMBER" >> {marker} && test "$META_TRY_NUMBER" -ge 3',
                retries=3,
                retry_delay="1s",
            )
        ],
    )
    started = time.monotonic()
    result = run(p)
    assert result.states() == {"flaky": "success"} and result.tasks["flaky"].attempts == 3
    assert marker.read_text().split() == ["1", "2", "3"]
    assert time.monotonic() - started >= 2  # two 1-second retry delays


def test_timeout_kills_the_whole_process_tree(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    p = pipeline("timing_out", [sh("slow", f"sleep 300 & echo $! > {pidfile}; wait", timeout="2s")])
    started = time.monotonic()
    result = run(p)
    assert result.states() == {"slow": "failed"} and result.state == RunState.FAILED
    assert time.monotonic() - started < 60
    child = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        for _ in range(50):  # the grandchild may take a moment to be reaped by init
            os.kill(child, 0)
            time.sleep(0.1)


def test_params_are_checked_and_reach_shell_templates_and_python() -> None:
    p = pipeline(
        "with_params",
        [
            sh("env", 'test "$META_PARAM_COUNTRY" = CH && test "$META_BACKEND" = prefect'),
            sh("template", 'test "{{ params.country }}-{{ params.days }}" = CH-3'),
            {"id": "py", "action": {"kind": "python", "callable": "meta_prefect_testfns:context_names"}},
        ],
        params={"country": {"type": "string", "default": "DE"}, "days": {"type": "integer", "default": 3}},
    )
    with pytest.raises(ValidationFailed, match="param 'days': expected type integer"):
        run(p, params={"country": "CH", "days": "3"})
    messages: list[str] = []
    result = run(p, params={"country": "CH"}, run_id="manual__ctx-test", progress=messages.append)
    assert result.states() == {"env": "success", "template": "success", "py": "success"}
    assert result.run_id == "manual__ctx-test"
    assert sorted(messages) == ["env: success", "py: success", "template: success"]


def test_outputs_emit_dataset_events(prefect_api: str) -> None:
    uri = "postgres://warehouse/public.sales_prefect_test"
    source = "s3://raw/sales.csv"
    run(pipeline("producer", [{"id": "load", "action": {"kind": "noop"}, "inputs": [source], "outputs": [uri]}]))
    body = {"filter": {"event": {"name": [DATASET_EVENT]}, "resource": {"id": [uri]}}, "limit": 10}
    found: list[dict[str, Any]] = []
    for _ in range(40):  # events reach the server asynchronously
        found = httpx.post(f"{prefect_api}/events/filter", json=body, timeout=10).json()["events"]
        if found:
            break
        time.sleep(0.5)
    assert found and found[0]["resource"]["prefect.resource.id"] == uri
    assert found[0]["payload"]["task"] == "load"
    related = {(r["prefect.resource.id"], r["prefect.resource.role"]) for r in found[0]["related"]}
    assert (source, "input") in related and ("meta.pipeline.producer", "pipeline") in related


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        _Hook.received.append(json.loads(self.rfile.read(length) or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("META_CHANNEL_WEBHOOK_ONCALL_URL", f"http://127.0.0.1:{server.server_port}/hook")
    _Hook.received = []
    try:
        yield _Hook.received
    finally:
        server.shutdown()


def test_alert_routes_fire_as_state_hooks(webhook: list[dict[str, Any]]) -> None:
    p = pipeline(
        "alerting",
        [sh("flaky", 'test "$META_TRY_NUMBER" -ge 2', retries=1, retry_delay="0s"), sh("boom", "exit 1", ("flaky",))],
        alerts={"on_failure": ["webhook:oncall"], "on_retry": ["webhook:oncall"], "on_success": ["webhook:oncall"]},
    )
    result = run(p, run_id="manual__alerts-1")
    assert result.state == RunState.FAILED
    text = json.dumps(webhook)
    assert len(webhook) == 2, text  # one retry of flaky, one run failure; no success
    assert "retrying" in text and "flaky" in text
    assert "failed" in text and "manual__alerts-1" in text


def _two_concurrent_runs(p: Pipeline, log: Path) -> list[str]:
    results = []
    threads = [threading.Thread(target=lambda: results.append(run(p))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.states() for r in results] == [{"only_one": "success"}] * 2
    return [line.split()[0] for line in log.read_text().splitlines()]


def test_max_active_bounds_a_task_across_concurrent_runs(tmp_path: Path, prefect_api: str) -> None:
    def spans(pid: str, **fields: Any) -> tuple[Pipeline, Path]:
        log = tmp_path / pid
        # Each task waits (up to 5 s) until the other run's task has started: without a bound the two always
        # overlap, however late Prefect starts the second flow run; with max_active 1 they never can.
        command = (
            f'echo "start $(date +%s.%N)" >> {log}; '
            f'for i in $(seq 50); do [ "$(grep -c start {log})" -ge 2 ] && break; sleep 0.1; done; '
            f'echo "end $(date +%s.%N)" >> {log}'
        )
        return pipeline(pid, [sh("only_one", command, **fields)]), log

    # Control: without a bound the two runs overlap.
    assert _two_concurrent_runs(*spans("unbounded")) == ["start", "start", "end", "end"]
    # With max_active: 1 the second run's task waits for the first one's to end.
    assert _two_concurrent_runs(*spans("bounded", max_active=1)) == ["start", "end", "start", "end"]
    limit = httpx.get(f"{prefect_api}/v2/concurrency_limits/tag:meta-max-active:bounded.only_one", timeout=10).json()
    assert limit["limit"] == 1
