"""Alert pieces without servers: events and templates, links, channel config (file + environment), the store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from meta.builtin.operators.alerts import AlertOptions
from meta.builtin.operators.alerts.channels import EmailConfig, parse_rate
from meta.builtin.operators.alerts.config import ChannelConfigError, channel_config, raw_settings
from meta.builtin.operators.alerts.event import AlertEvent, render_subject, render_text, ui_link
from meta.builtin.operators.alerts.http import retry_after_seconds
from meta.builtin.operators.alerts.store import AlertStore


def event(**over: object) -> AlertEvent:
    base: dict[str, object] = {"pipeline_id": "p", "run_id": "r", "event": "failure", "task_id": "t", "state": "failed"}
    base.update(over)
    return AlertEvent(**base)  # type: ignore[arg-type]


def test_keys_distinguish_retries_but_not_repeats() -> None:
    assert event().key() == "failure:t"
    assert event(event="retry", try_number=2).key() == "retry:t:2"
    assert event(event="sla_miss", task_id=None).key() == "sla_miss"
    assert event(dedup_key="custom").key() == "custom"
    with pytest.raises(ValueError, match="unknown alert event 'boom'"):
        event(event="boom")


def test_templates() -> None:
    e = event(backend="local", duration=3725, logical_date=datetime(2024, 1, 2, tzinfo=UTC), try_number=1)
    assert render_text(e, None) == (
        "[local] pipeline p failed: task t is failed (try 1)\nrun r (2024-01-02T00:00:00+00:00), took 1h2m5s"
    )
    assert render_subject(e, None) == "[meta] p failed: t"
    assert render_text(e, "{{ pipeline }}/{{ task }} {{ state }} in {{ duration }}") == "p/t failed in 1h2m5s"


def test_links(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_AIRFLOW_UI_URL", "http://af:8080/")
    monkeypatch.setenv("META_PREFECT_UI_URL", "http://pf:4200")
    assert ui_link(event(backend="airflow", run_id="manual__2024-01-01T00:00:00+00:00")) == (
        "http://af:8080/dags/p/runs/manual__2024-01-01T00%3A00%3A00%2B00%3A00/tasks/t"
    )
    assert ui_link(event(backend="prefect", run_id="prefect__abc-1")) == "http://pf:4200/runs/flow-run/abc-1"
    assert ui_link(event(backend="local")) is None
    assert ui_link(event(url="http://x")) == "http://x"


def test_rate_parsing() -> None:
    assert parse_rate("10/1h") == (10, 3600.0)
    with pytest.raises(ValueError, match="expected 'N/duration'"):
        parse_rate("ten per hour")


def test_retry_after_forms() -> None:
    assert retry_after_seconds("3", 1.0) == 3.0
    assert retry_after_seconds(None, 1.5) == 1.5
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 2.0) == 0.0  # a date in the past: go now
    assert retry_after_seconds("soon", 2.0) == 2.0


def test_config_file_and_environment_override(meta_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meta_home.mkdir(parents=True)
    (meta_home / "channels.yaml").write_text(
        "email:oncall:\n  host: smtp.test\n  from: meta@test\n  to: [a@test]\n  password: ${secret:smtp}\n"
    )
    monkeypatch.setenv("META_CHANNEL_EMAIL_ONCALL_TO", "b@test, c@test")
    monkeypatch.setenv("META_SECRET_SMTP", "smtp-pw-123")
    settings, origins = raw_settings("email:oncall")
    assert settings["password"] == "${secret:smtp}"  # unresolved until sent
    assert origins == [str(meta_home / "channels.yaml"), "META_CHANNEL_EMAIL_ONCALL_TO"]
    channel, config = channel_config("email:oncall")
    assert channel.kind == "email" and isinstance(config, EmailConfig)
    assert config.to == ["b@test", "c@test"] and config.password == "smtp-pw-123" and config.effective_port() == 587


def test_config_errors_name_the_origin(meta_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meta_home.mkdir(parents=True)
    (meta_home / "channels.yaml").write_text("slack:x:\n  url: ftp://nope\n  colour: red\n")
    with pytest.raises(ChannelConfigError) as info:
        channel_config("slack:x")
    message = str(info.value)
    assert f"channel 'slack:x' (from {meta_home / 'channels.yaml'})" in message
    assert "url: String should match pattern" in message and "colour: Extra inputs are not permitted" in message
    (meta_home / "channels.yaml").write_text("slack:x: [\n")
    with pytest.raises(ChannelConfigError, match=r"channels.yaml:2: not valid YAML"):
        channel_config("slack:x")
    with pytest.raises(LookupError, match="no channel kind 'pager'"):
        channel_config("pager:x")


def test_alert_options() -> None:
    assert AlertOptions.model_validate({"channels": ["slack:a", "email:b"], "message": "m"}).targets() == [
        "slack:a",
        "email:b",
    ]
    with pytest.raises(ValueError, match="needs 'channel'"):
        AlertOptions.model_validate({"message": "m"})
    with pytest.raises(ValueError):
        AlertOptions.model_validate({"channel": "no-kind", "message": "m"})


def test_store_claims_once_and_releases(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.db")
    assert store.claim("slack:a", "p", "r", "failure", None) == "claimed"
    assert store.claim("slack:a", "p", "r", "failure", None) == "duplicate"  # in flight
    store.release("slack:a", "p", "r", "failure")
    assert store.claim("slack:a", "p", "r", "failure", None) == "claimed"
    store.mark_sent("slack:a", "p", "r", "failure")
    assert AlertStore(tmp_path / "alerts.db").status("slack:a", "p", "r", "failure") == "sent"
    assert store.claim("slack:b", "p", "r", "failure", (1, 60)) == "claimed"
    assert store.claim("slack:b", "p", "r2", "failure", (1, 60)) == "rate_limited"
