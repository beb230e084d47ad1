"""Channel kinds: ``slack`` (incoming webhook), ``email`` (SMTP) and ``webhook`` (any JSON endpoint).

Each kind has a pydantic ``Config`` (what ``channels.yaml`` / ``META_CHANNEL_*`` may set for it) and a
``send(name, config, event)``. Registered through the ``register_channels`` hook; third parties add kinds the same way.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import asdict
from email.message import EmailMessage
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from meta.builtin.operators.alerts.event import AlertEvent, render_subject, render_text
from meta.builtin.operators.alerts.http import AlertDeliveryError, post_json
from meta.spec.durations import parse_duration


class ChannelConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True, populate_by_name=True)

    rate_limit: str | None = Field(default=None, description="at most N alerts per window, e.g. '10/1h'")
    template: str | None = Field(default=None, description="Jinja text of the message (see docs/operators.md)")

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rate(value)
        return value

    def limit(self) -> tuple[int, float] | None:
        return parse_rate(self.rate_limit) if self.rate_limit else None


def parse_rate(value: str) -> tuple[int, float]:
    """'10/1h' -> (10, 3600.0)."""
    count, _, window = value.partition("/")
    try:
        number = int(count)
        seconds = parse_duration(window).total_seconds()
    except (ValueError, TypeError):
        raise ValueError(f"rate_limit {value!r}: expected 'N/duration', e.g. '10/1h' or '1/30s'") from None
    if number < 1 or seconds <= 0:
        raise ValueError(f"rate_limit {value!r}: expected a positive count and window")
    return number, seconds


def _csv_list(value: Any) -> Any:
    return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value


class SlackConfig(ChannelConfig):
    url: Annotated[str, Field(pattern=r"^https?://")]
    timeout: float = 10.0
    max_attempts: Annotated[int, Field(ge=1)] = 5
    backoff: Annotated[float, Field(ge=0)] = 1.0
    max_wait: Annotated[float, Field(ge=0)] = 60.0


class WebhookConfig(SlackConfig):
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)


class EmailConfig(ChannelConfig):
    host: str
    port: int | None = None
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: str | None = None
    sender: str = Field(alias="from")
    to: Annotated[list[str], Field(min_length=1)]
    subject: str | None = None
    ca_file: str | None = Field(default=None, description="CA bundle to trust (a private or self-signed server)")
    timeout: float = 30.0

    @field_validator("to", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _csv_list(value)

    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "ssl": 465, "none": 25}[self.security]


class SlackChannel:
    kind = "slack"
    Config: ClassVar[type[ChannelConfig]] = SlackConfig
    sensitive_fields: ClassVar[tuple[str, ...]] = ("url",)

    def send(self, name: str, config: Any, event: AlertEvent) -> None:
        post_json(
            f"{self.kind}:{name}",
            config.url,
            {"text": render_text(event, config.template)},
            timeout=config.timeout,
            max_attempts=config.max_attempts,
            backoff=config.backoff,
            max_wait=config.max_wait,
        )


class WebhookChannel(SlackChannel):
    """Any endpoint taking JSON: ``{"text": ..., "event": {pipeline_id, run_id, event, task_id, state, ...}}``."""

    kind = "webhook"
    Config = WebhookConfig
    sensitive_fields = ("url", "headers")

    def send(self, name: str, config: Any, event: AlertEvent) -> None:
        data = asdict(event)
        data["logical_date"] = event.logical_date.isoformat() if event.logical_date else None
        post_json(
            f"{self.kind}:{name}",
            config.url,
            {"text": render_text(event, config.template), "event": data},
            method=config.method,
            headers=config.headers,
            timeout=config.timeout,
            max_attempts=config.max_attempts,
            backoff=config.backoff,
            max_wait=config.max_wait,
        )


class EmailChannel:
    kind = "email"
    Config: ClassVar[type[ChannelConfig]] = EmailConfig
    sensitive_fields: ClassVar[tuple[str, ...]] = ("password",)

    def send(self, name: str, config: Any, event: AlertEvent) -> None:
        message = EmailMessage()
        message["Subject"] = render_subject(event, config.subject)
        message["From"] = config.sender
        message["To"] = ", ".join(config.to)
        message.set_content(render_text(event, config.template))
        context = ssl.create_default_context(cafile=config.ca_file)
        host, port = config.host, config.effective_port()
        try:
            smtp: smtplib.SMTP
            if config.security == "ssl":
                smtp = smtplib.SMTP_SSL(host, port, timeout=config.timeout, context=context)
            else:
                smtp = smtplib.SMTP(host, port, timeout=config.timeout)
            with smtp:
                if config.security == "starttls":
                    smtp.starttls(context=context)
                if config.username:
                    smtp.login(config.username, config.password or "")
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            # SMTP errors carry the server's reply, never our password; still, name only the class and reply code.
            detail = f"{type(exc).__name__}"
            code = getattr(exc, "smtp_code", None)
            if code:
                detail += f" {code}"
            raise AlertDeliveryError(f"channel email:{name}: cannot deliver via {host}:{port} ({detail})") from None


BUILTIN_CHANNELS = (SlackChannel(), EmailChannel(), WebhookChannel())
