"""Airflow's alerting -> meta's alert routes (``alerts.on_failure`` / ``on_retry`` / ``on_success``).

meta's own ``AlertCallback`` (what meta compiles routes to) maps back to its channels. ``email`` with
``email_on_failure`` / ``email_on_retry`` (Airflow's defaults: both on) becomes the channel ``email:<address>`` on the
matching route; the channel's SMTP settings are declared in channels.yaml (docs/operators.md), which the note says.
Any other callback (a function, a notifier) has no neutral form: it is named in a note, never dropped silently.
"""

from __future__ import annotations

import re
from typing import Any

from meta import CHANNEL_PATTERN

# Airflow callback argument -> meta route. A task-level failure/retry callback (default_args) fires for each task,
# as meta's routes do (docs/operators.md: the alert names the task).
CALLBACK_ROUTES = {
    "on_failure_callback": "on_failure",
    "on_retry_callback": "on_retry",
    "on_success_callback": "on_success",
    "on_execute_callback": None,
    "on_skipped_callback": None,
}
EMAIL_ROUTES = (("email_on_failure", "on_failure"), ("email_on_retry", "on_retry"))


def callback_name(cb: Any, module_names: dict[str, str]) -> str:
    """``module:qualname`` of a function (a DAG file by its own name, not Airflow's private module name), the class
    of a notifier object otherwise."""
    module, qualname = getattr(cb, "__module__", None), getattr(cb, "__qualname__", None)
    if module and qualname:
        return f"{module_names.get(module, module)}:{qualname}"
    cls = type(cb)
    return f"{cls.__module__}.{cls.__qualname__} object"


def callbacks(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def addresses(value: Any) -> list[str]:
    """Airflow's ``email``: a list of addresses, or one string of them separated by commas or semicolons."""
    items = callbacks(value)
    return [a.strip() for item in items for a in re.split(r"[,;]", str(item)) if a.strip()]


def email_routes(where: str, settings: dict[str, Any], notes: list[str]) -> dict[str, list[str]]:
    """Routes for ``email`` + ``email_on_failure``/``email_on_retry`` in ``settings`` (default_args or an operator's
    own arguments); ``where`` names them in notes."""
    routes: dict[str, list[str]] = {}
    emails = addresses(settings.get("email"))
    if not emails:
        return routes
    channels: list[str] = []
    for address in emails:
        channel = f"email:{address}"
        if re.match(CHANNEL_PATTERN, channel):
            channels.append(channel)
        else:
            notes.append(f"{where} email {address!r} cannot be a channel name ({CHANNEL_PATTERN}); not carried over")
    for flag, route in EMAIL_ROUTES:
        if settings.get(flag, True) and channels:  # Airflow's default (conf [email] default_email_on_*) is True
            routes[route] = list(channels)
    if routes:
        notes.append(
            f"{where} email: alerts go to {', '.join(channels)} on {' and '.join(r[3:] for r in routes)}; declare "
            "each channel's SMTP settings (host, from, to) in channels.yaml (docs/operators.md#channels)"
        )
    return routes


def callback_routes(
    where: str, settings: dict[str, Any], notes: list[str], module_names: dict[str, str]
) -> dict[str, list[str]]:
    """Routes for meta's own AlertCallbacks among the callback arguments in ``settings``; the others are noted."""
    from meta_airflow.runtime import AlertCallback

    routes: dict[str, list[str]] = {}
    for attr, route in CALLBACK_ROUTES.items():
        for cb in callbacks(settings.get(attr)):
            channels = notifier_channels(cb)
            if isinstance(cb, AlertCallback) and route is not None:
                routes.setdefault(route, []).extend(cb.channels)
            elif channels and route is not None:
                routes.setdefault(route, []).extend(c for c in channels if c not in routes.get(route, []))
                notes.append(
                    f"{where} {attr} {type(cb).__name__} -> alerts.{route} to {', '.join(channels)}; its own text is "
                    "not carried over (meta's alert template applies); declare the channels in channels.yaml "
                    "(docs/operators.md#channels)"
                )
            else:
                notes.append(
                    f"{where} {attr} {callback_name(cb, module_names)} is not carried over (meta alerts are channel "
                    "routes: alerts.on_failure/on_retry/on_success, or an alert task)"
                )
    return routes


# Airflow notifiers (``on_failure_callback=SmtpNotifier(to=...)``) -> the channel kind and the attribute naming it.
NOTIFIERS = {
    "airflow.providers.smtp.notifications.smtp.SmtpNotifier": ("email", ("to", "cc", "bcc")),
    "airflow.providers.slack.notifications.slack_webhook.SlackWebhookNotifier": ("slack", ("slack_webhook_conn_id",)),
    "airflow.providers.slack.notifications.slack.SlackNotifier": ("slack", ("channel",)),
}


def notifier_channels(cb: Any) -> list[str] | None:
    """meta channels for an SMTP or Slack notifier with literal recipients, else None (templated, or another kind)."""
    for cls in type(cb).__mro__:
        found = NOTIFIERS.get(f"{cls.__module__}.{cls.__qualname__}")
        if found is None:
            continue
        kind, attrs = found
        names = [n for a in attrs for n in addresses(getattr(cb, a, None))]
        names = [n.lstrip("#") for n in names]
        channels = [f"{kind}:{n}" for n in names if "{{" not in n]
        if channels and len(channels) == len(names) and all(re.match(CHANNEL_PATTERN, c) for c in channels):
            return channels
        return None
    return None


def execute_hooks(where: str, settings: dict[str, Any], notes: list[str], module_names: dict[str, str]) -> None:
    """``pre_execute=`` / ``post_execute=`` hooks run around an operator in Airflow only: noted."""
    for attr in ("pre_execute", "post_execute"):
        hook = settings.get(attr)
        if hook is not None:
            notes.append(
                f"{where} {attr} hook {callback_name(hook, module_names)} is not carried over (it runs in Airflow only)"
            )


def merge(into: dict[str, list[str]], more: dict[str, list[str]]) -> None:
    for route, channels in more.items():
        into.setdefault(route, [])
        into[route] += [c for c in channels if c not in into[route]]


def dag_alerts(
    dag: Any, default_args: dict[str, Any], notes: list[str], module_names: dict[str, str]
) -> dict[str, list[str]]:
    """The pipeline's routes from the DAG's callbacks, default_args' callbacks and email settings."""
    alerts: dict[str, list[str]] = {}
    dag_callbacks = {a: getattr(dag, a, None) for a in ("on_failure_callback", "on_success_callback")}
    merge(alerts, callback_routes("DAG", dag_callbacks, notes, module_names))
    merge(alerts, callback_routes("default_args", default_args, notes, module_names))
    merge(alerts, email_routes("default_args", default_args, notes))
    execute_hooks("default_args", default_args, notes, module_names)
    return alerts


def task_alerts(
    op: Any, given: dict[str, Any], default_args: dict[str, Any], notes: list[str], module_names: dict[str, str]
) -> dict[str, list[str]]:
    """Routes from an operator's own ``email`` settings (``given``: its init arguments without default_args); meta's
    routes are pipeline-wide, which the note says. Its own pre/post_execute hooks are noted."""
    where = f"task {op.task_id}:"
    execute_hooks(where, {k: v for k, v in given.items() if default_args.get(k) is not v}, notes, module_names)
    keys: tuple[str, ...] = ("email", "email_on_failure", "email_on_retry")
    own = {k: given[k] for k in keys if k in given}
    if not own or own == {k: default_args.get(k) for k in own}:
        return {}
    settings = {**{k: default_args[k] for k in keys if k in default_args}, **own}
    routes = email_routes(where, settings, notes)
    if routes:
        notes.append(f"task {op.task_id}: its email alerts become pipeline-wide routes (meta routes every task's)")
    return routes
