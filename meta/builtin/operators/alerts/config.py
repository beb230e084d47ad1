"""Where named channels (``slack:data-team``) get their settings.

Two sources, environment first (per field) so a deployment can override a checked-in file:
  * ``META_CHANNEL_<KIND>_<NAME>_<FIELD>``, e.g. ``META_CHANNEL_SLACK_DATA_TEAM_URL='${secret:SLACK_DATA_TEAM}'``
    (kind and name upper-cased, characters outside [A-Za-z0-9] as ``_``; list fields are comma-separated);
  * the YAML file ``$META_CHANNELS_FILE`` or ``$META_HOME/channels.yaml``, mapping ``"<kind>:<name>"`` to settings.
Values may hold ``${secret:NAME}``, resolved when an alert is sent, never when the file is read.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from meta import settings
from meta.execution import secrets
from meta.spec.errors import MetaError, PluginError


class ChannelConfigError(MetaError, ValueError):
    """A channel is not configured, or its configuration is invalid."""


def raw_settings(ref: str) -> tuple[dict[str, Any], list[str]]:
    """The unresolved settings of channel ``ref`` and where they came from."""
    kind, _, name = ref.partition(":")
    fields: dict[str, Any] = {}
    origins: list[str] = []
    path = settings.channels_file()
    if path.is_file():
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise ChannelConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
        if not isinstance(document, dict):
            raise ChannelConfigError(f"{path}: expected a mapping of 'kind:name' to settings")
        entry = document.get(ref)
        if entry is not None:
            if not isinstance(entry, dict):
                raise ChannelConfigError(f"{path}: channel {ref!r} must map to settings, got {type(entry).__name__}")
            fields.update(entry)
            origins.append(str(path))
    for field_name, (variable, value) in settings.channel_fields(kind, name).items():
        fields[field_name] = value
        origins.append(variable)
    return fields, origins


def channel_config(ref: str) -> tuple[Any, Any]:
    """(channel kind object, validated config with secrets resolved) for ``ref`` like ``slack:data-team``."""
    from meta.plugins.manager import channels

    kind, sep, name = ref.partition(":")
    if not sep or not name:
        raise ChannelConfigError(f"channel {ref!r}: expected '<kind>:<name>', e.g. 'slack:data-team'")
    kinds = channels()
    if kind not in kinds:
        raise PluginError(f"channel {ref!r}: no channel kind {kind!r}; available: {', '.join(sorted(kinds))}")
    channel = kinds[kind]
    fields, origins = raw_settings(ref)
    if not fields:
        prefix = settings.channel_prefix(kind, name)
        raise ChannelConfigError(
            f"channel {ref!r} is not configured: add it to {settings.channels_file()} or set {prefix}<FIELD> "
            "environment variables (see docs/operators.md)"
        )
    resolved = secrets.resolve(fields)
    for field_name in getattr(channel, "sensitive_fields", ()):
        value = resolved.get(field_name)
        for item in value.values() if isinstance(value, dict) else [value]:
            if isinstance(item, str):
                secrets.mark_sensitive(item)
    try:
        config = channel.Config.model_validate(resolved)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise ChannelConfigError(f"channel {ref!r} (from {', '.join(origins)}): {problems}") from None
    return channel, config
