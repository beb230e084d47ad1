"""The shapes of what the ``register_channels`` and ``register_secret_providers`` hooks register
(meta/plugins/hookspecs.py). Protocols, so a plugin's classes need not inherit from meta's."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel


@runtime_checkable
class ChannelKind(Protocol):
    """An alert channel kind such as ``slack`` (``slack:data-team``); meta's own are in
    meta/builtin/operators/alerts/channels.py. ``Config`` validates a channel's settings (channels.yaml or
    ``META_CHANNEL_*``); an optional ``sensitive_fields`` names settings to mask in logs."""

    @property
    def kind(self) -> str: ...

    @property
    def Config(self) -> type[BaseModel]: ...  # the class attribute channels define

    def send(self, name: str, config: Any, event: Any) -> None:
        """Deliver ``event`` (meta.builtin.operators.alerts.event.AlertEvent) to channel ``name``."""


@runtime_checkable
class SecretProvider(Protocol):
    """One link of the chain resolving ``${secret:NAME}`` (meta/execution/secrets.py)."""

    name: str

    def get(self, name: str) -> str | None:
        """The secret's value, or None when this provider does not know it."""
