"""Pipeline alert routes on the local runner reach a real HTTP endpoint standing in for Slack."""

from __future__ import annotations

from pathlib import Path

import pytest

from meta.plugins.manager import get_target
from meta.semantics.request import RunRequest
from meta.spec.model import Pipeline
from tests.integration.operators.conftest import WebhookServer


def route_to(webhook_server: WebhookServer, monkeypatch: pytest.MonkeyPatch, meta_home: Path) -> list[dict]:
    url, hook = webhook_server.hook()
    monkeypatch.setenv("META_CHANNELS_FILE", str(meta_home / "channels.yaml"))
    monkeypatch.setenv("META_SECRET_ROUTE_HOOK", url)
    monkeypatch.setenv("META_CHANNEL_SLACK_ROUTES_URL", "${secret:route_hook}")
    return hook.received


def pipeline(command: str, **fields: object) -> Pipeline:
    return Pipeline.model_validate(
        {
            "id": "alerting",
            "alerts": {
                "on_failure": ["slack:routes"],
                "on_retry": ["slack:routes"],
                "on_success": ["slack:routes"],
                "on_sla_miss": ["slack:routes"],
            },
            "tasks": [{"id": "work", "action": {"kind": "shell", "command": command}, **fields}],
        }
    )


def texts(received: list[dict]) -> list[str]:
    return [body["text"] for body in received]


def test_failure_and_each_retry_are_announced_once(
    webhook_server: WebhookServer, monkeypatch: pytest.MonkeyPatch, meta_home: Path
) -> None:
    received = route_to(webhook_server, monkeypatch, meta_home)
    failing = pipeline("exit 1", retries=2, retry_delay="0s")
    result = get_target("local").run(failing, RunRequest.build(failing, run_id="r1"))
    assert str(result.state) == "failed"
    messages = texts(received)
    assert len(messages) == 3, messages
    assert sum("is retrying" in m for m in messages) == 2
    assert "(try 1)" in messages[0] and "(try 2)" in messages[1]
    assert "alerting failed" in messages[2] and "task work" in messages[2]
    assert all("r1" in m for m in messages)


def test_success_is_announced_and_a_rerun_of_the_same_run_is_deduplicated(
    webhook_server: WebhookServer, monkeypatch: pytest.MonkeyPatch, meta_home: Path
) -> None:
    received = route_to(webhook_server, monkeypatch, meta_home)
    target = get_target("local")
    ok = pipeline("true")
    target.run(ok, RunRequest.build(ok, run_id="same"))
    target.run(ok, RunRequest.build(ok, run_id="same"))
    assert len(received) == 1
    assert "alerting succeeded" in received[0]["text"]


def test_a_run_longer_than_max_duration_misses_its_sla(
    webhook_server: WebhookServer, monkeypatch: pytest.MonkeyPatch, meta_home: Path
) -> None:
    received = route_to(webhook_server, monkeypatch, meta_home)
    slow = Pipeline.model_validate({**pipeline("sleep 1.2").model_dump(), "sla": {"max_duration": "1s"}})
    get_target("local").run(slow, RunRequest.build(slow, run_id="slow"))
    messages = texts(received)
    assert any("missed its SLA" in m for m in messages), messages
    assert any("succeeded" in m for m in messages)
