"""Alerts against real servers: a Slack-like webhook answering 200 / 429 + Retry-After / 500, and aiosmtpd with
STARTTLS, implicit TLS and AUTH. Dedup across retries and restarts, rate limits, and no secret in logs or errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meta.builtin.operators.alerts import AlertDeliveryError, AlertEvent, run_alert_op, send_alert
from meta.builtin.operators.alerts.store import AlertStore
from meta.execution import secrets
from meta.plugins.ops import OpContext
from meta.semantics.context import RunContext
from tests.integration.operators.conftest import SMTP_PASSWORD, SMTP_USER, SmtpServers, WebhookServer

LOGICAL = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def isolated(meta_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("META_CHANNELS_FILE", str(meta_home / "channels.yaml"))
    monkeypatch.setenv("META_AIRFLOW_UI_URL", "http://airflow.test:8080")
    secrets.forget_sensitive()
    yield
    secrets.forget_sensitive()


def failure(**over: object) -> AlertEvent:
    base: dict[str, object] = {
        "pipeline_id": "sales",
        "run_id": "scheduled__2024-05-01",
        "event": "failure",
        "task_id": "load",
        "state": "failed",
        "backend": "airflow",
        "duration": 83.0,
        "logical_date": LOGICAL,
        "try_number": 3,
    }
    base.update(over)
    return AlertEvent(**base)  # type: ignore[arg-type]


def slack_channel(monkeypatch: pytest.MonkeyPatch, url: str, name: str = "data-team", **extra: str) -> str:
    monkeypatch.setenv("META_SECRET_SLACK_HOOK", url)
    prefix = f"META_CHANNEL_SLACK_{name.upper().replace('-', '_')}_"
    monkeypatch.setenv(prefix + "URL", "${secret:slack_hook}")
    monkeypatch.setenv(prefix + "BACKOFF", "0.05")
    for key, value in extra.items():
        monkeypatch.setenv(prefix + key.upper(), value)
    return f"slack:{name}"


def test_slack_message_carries_the_run_facts(webhook_server: WebhookServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url, hook = webhook_server.hook()
    channel = slack_channel(monkeypatch, url)
    [outcome] = send_alert([channel], failure())
    assert outcome.status == "sent"
    [payload] = hook.received
    text = payload["text"]
    for fact in (
        "[airflow] pipeline sales failed",
        "task load is failed (try 3)",
        "run scheduled__2024-05-01",
        "2024-05-01T00:00:00+00:00",
        "took 1m23s",
        "http://airflow.test:8080/dags/sales/runs/scheduled__2024-05-01/tasks/load",
    ):
        assert fact in text


def test_slack_429_waits_for_retry_after(webhook_server: WebhookServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url, hook = webhook_server.hook((429, {"Retry-After": "1"}))
    channel = slack_channel(monkeypatch, url)
    assert send_alert([channel], failure())[0].status == "sent"
    assert len(hook.received) == 2
    assert hook.times[1] - hook.times[0] >= 0.95


def test_slack_5xx_is_retried_with_backoff(webhook_server: WebhookServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url, hook = webhook_server.hook((500, {}), (503, {}))
    channel = slack_channel(monkeypatch, url)
    assert send_alert([channel], failure())[0].status == "sent"
    assert len(hook.received) == 3
    first_gap, second_gap = hook.times[1] - hook.times[0], hook.times[2] - hook.times[1]
    assert first_gap >= 0.04 and second_gap >= 0.09  # 0.05 then 0.1: the delay doubles


def test_slack_giving_up_never_shows_the_url(
    webhook_server: WebhookServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    url, hook = webhook_server.hook(*[(500, {})] * 3)
    channel = slack_channel(monkeypatch, url, max_attempts="3")
    [outcome] = send_alert([channel], failure())
    assert outcome.status == "failed"
    assert outcome.error == "channel slack:data-team: gave up after 3 attempts (last: HTTP 500: error)"
    assert len(hook.received) == 3
    # The claim was released: a later retry of the same alert is sent.
    assert send_alert([channel], failure())[0].status == "sent"
    path = url.split("127.0.0.1", 1)[1]
    captured = capsys.readouterr()
    for text in (caplog.text, captured.out, captured.err, str(outcome)):
        assert path not in text and "T000/B000" not in text


def test_slack_4xx_fails_at_once(webhook_server: WebhookServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url, hook = webhook_server.hook((404, {}))
    channel = slack_channel(monkeypatch, url)
    with pytest.raises(AlertDeliveryError, match=r"slack:data-team: the webhook refused the alert \(HTTP 404: error\)"):
        send_alert([channel], failure(), raise_on_failure=True)
    assert len(hook.received) == 1


def test_dedup_across_retries_and_restarts(webhook_server: WebhookServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url, hook = webhook_server.hook()
    channel = slack_channel(monkeypatch, url)
    assert send_alert([channel], failure())[0].status == "sent"
    assert send_alert([channel], failure())[0].status == "duplicate"
    assert send_alert([channel], failure(), store=AlertStore())[0].status == "duplicate"  # a new process
    retry2 = failure(event="retry", state="up_for_retry", try_number=2)
    retry3 = failure(event="retry", state="up_for_retry", try_number=3)
    assert [send_alert([channel], e)[0].status for e in (retry2, retry2, retry3)] == ["sent", "duplicate", "sent"]
    assert send_alert([channel], failure(run_id="other-run"))[0].status == "sent"
    assert len(hook.received) == 4


def test_rate_limit_per_channel(webhook_server: WebhookServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url, hook = webhook_server.hook()
    channel = slack_channel(monkeypatch, url, name="noisy", rate_limit="2/1h")
    statuses = [send_alert([channel], failure(run_id=f"r{i}"))[0].status for i in range(4)]
    assert statuses == ["sent", "sent", "rate_limited", "rate_limited"]
    assert len(hook.received) == 2


def test_generic_webhook_gets_the_event(webhook_server: WebhookServer, meta_home: Path) -> None:
    url, hook = webhook_server.hook()
    meta_home.mkdir(parents=True, exist_ok=True)
    (meta_home / "channels.yaml").write_text(
        f"webhook:ops:\n  url: {url}\n  headers: {{X-Source: meta}}\n  template: '{{{{ pipeline }}}} {{{{ state }}}}'\n"
    )
    assert send_alert(["webhook:ops"], failure(backend="prefect", url="http://prefect.test/run/1"))[0].status == "sent"
    [payload] = hook.received
    assert payload["text"] == "sales failed"
    assert payload["event"]["task_id"] == "load" and payload["event"]["logical_date"] == "2024-05-01T00:00:00+00:00"


def test_unconfigured_channel_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    [outcome] = send_alert(["slack:nobody"], failure())
    assert outcome.status == "failed"
    assert "META_CHANNEL_SLACK_NOBODY_<FIELD>" in (outcome.error or "")


def email_channel(monkeypatch: pytest.MonkeyPatch, servers: SmtpServers, security: str, password: str) -> str:
    port = servers.starttls_port if security == "starttls" else servers.ssl_port
    monkeypatch.setenv("META_SECRET_SMTP_PASSWORD", password)
    for key, value in {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "SECURITY": security,
        "USERNAME": SMTP_USER,
        "PASSWORD": "${secret:smtp_password}",
        "FROM": "meta@example.test",
        "TO": "oncall@example.test, lead@example.test",
        "CA_FILE": str(servers.ca_file),
    }.items():
        monkeypatch.setenv(f"META_CHANNEL_EMAIL_ONCALL_{key}", value)
    return "email:oncall"


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_email_is_delivered(smtp_servers: SmtpServers, monkeypatch: pytest.MonkeyPatch, security: str) -> None:
    channel = email_channel(monkeypatch, smtp_servers, security, SMTP_PASSWORD)
    before = len(smtp_servers.messages)
    assert send_alert([channel], failure(run_id=f"email-{security}"))[0].status == "sent"
    message = smtp_servers.messages[before]
    assert message["Subject"] == "[meta] sales failed: load"
    assert message["To"] == "oncall@example.test, lead@example.test"
    assert "pipeline sales failed" in message.get_payload()
    assert smtp_servers.logins


def test_email_bad_login_does_not_leak_the_password(
    smtp_servers: SmtpServers, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    channel = email_channel(monkeypatch, smtp_servers, "starttls", "wrong-password-123")
    [outcome] = send_alert([channel], failure(run_id="email-bad"))
    assert outcome.status == "failed"
    assert "SMTPAuthenticationError 535" in (outcome.error or "")
    assert "wrong-password-123" not in caplog.text + (outcome.error or "")


def test_alert_op_sends_once_per_run(webhook_server: WebhookServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url, hook = webhook_server.hook()
    slack_channel(monkeypatch, url)
    run = RunContext("sales", "manual__1", LOGICAL, params={"region": "eu"}, backend="local")
    args = {"channel": "slack:data-team", "message": "loaded {{ params.region }} for {{ ds }}"}
    assert run_alert_op(OpContext(run, "notify"), **args) == {"alerts": {"slack:data-team": "sent"}}
    assert run_alert_op(OpContext(run, "notify", try_number=2), **args) == {"alerts": {"slack:data-team": "duplicate"}}
    assert [p["text"] for p in hook.received] == ["loaded eu for 2024-05-01\nrun manual__1 (2024-05-01T00:00:00+00:00)"]


def test_alert_op_failure_raises_without_the_url(
    webhook_server: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _hook = webhook_server.hook((403, {}))
    slack_channel(monkeypatch, url)
    run = RunContext("sales", "manual__2", LOGICAL)
    with pytest.raises(AlertDeliveryError) as info:
        run_alert_op(OpContext(run, "notify"), channel="slack:data-team", message="hi")
    assert url not in str(info.value) and "HTTP 403" in str(info.value)


def test_concurrent_senders_send_once(webhook_server: WebhookServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight workers (a retried callback racing a restarted process) fire the same alert at once: one sends."""
    from concurrent.futures import ThreadPoolExecutor

    url, hook = webhook_server.hook()
    channel = slack_channel(monkeypatch, url)
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(lambda _: send_alert([channel], failure(run_id="race"))[0].status, range(8)))
    assert statuses == ["duplicate"] * 7 + ["sent"]
    assert len(hook.received) == 1
