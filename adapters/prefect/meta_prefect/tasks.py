"""Native Prefect tasks over meta's shared operators: ``warehouse_load_task``, ``slack_alert_task``,
``email_alert_task`` (and ``alert_task`` for any channel). Thin: while they run, Prefect ``Secret`` blocks join the
``${secret:NAME}`` chain (block name = NAME lower-cased, ``_``, ``.`` and ``/`` as ``-``: ``SLACK_HOOK`` ->
``slack-hook``). Runs are identified like meta-prefect's flows: pipeline = flow name, run = ``prefect__<flow run id>``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from prefect import task

from meta import OpContext, RunContext, secrets


def block_name(name: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", name.lower())


class PrefectSecretProvider:
    """Secrets from Prefect ``Secret`` blocks on the current Prefect API."""

    name = "prefect"

    def get(self, name: str) -> str | None:
        from prefect.blocks.system import Secret
        from prefect.exceptions import ObjectNotFound

        try:
            # _sync=True: a plain call (no coroutine) even when a Prefect task runs inside an event loop.
            block: Any = Secret.load(block_name(name), _sync=True)  # type: ignore[call-arg]
        except (ValueError, ObjectNotFound):  # Prefect raises ValueError for an unknown block name
            return None
        value = block.get()
        return None if value is None else str(value)

    def describe(self, name: str) -> str:
        return f"Prefect Secret block {block_name(name)!r}"


@contextlib.contextmanager
def prefect_secrets() -> Iterator[None]:
    with secrets.runtime_provider(PrefectSecretProvider()):
        yield


def run_context(params: dict[str, Any] | None = None) -> RunContext:
    from prefect.runtime import flow_run

    flow_run_id = flow_run.get_id()
    scheduled = flow_run.get_scheduled_start_time()
    logical = datetime.fromisoformat(str(scheduled)) if scheduled else datetime.now(UTC)
    return RunContext(
        pipeline_id=flow_run.get_flow_name() or "prefect",
        run_id=f"prefect__{flow_run_id}" if flow_run_id else f"prefect__{logical.isoformat()}",
        logical_date=logical if logical.tzinfo else logical.replace(tzinfo=UTC),
        params=dict(params or {}),
        backend="prefect",
    )


def _task_id() -> str:
    from prefect.runtime import task_run

    return task_run.get_task_name() or "task"


@task(name="warehouse_load")
def warehouse_load_task(
    table: str,
    source: dict[str, Any],
    mode: str = "merge",
    keys: Sequence[str] = (),
    partition: dict[str, Any] | None = None,
    url: str | None = None,
    conn: str | None = None,
    audit: bool | str = False,
) -> dict[str, Any]:
    """An idempotent load (see docs/operators.md); returns the inserted/updated/deleted counts."""
    from meta import WarehouseLoadOptions, warehouse_load

    spec: dict[str, Any] = {"table": table, "source": source, "mode": mode, "keys": list(keys), "audit": audit}
    spec.update({k: v for k, v in (("partition", partition), ("url", url), ("conn", conn)) if v is not None})
    options = WarehouseLoadOptions.model_validate(spec)
    run = run_context()
    with prefect_secrets():
        return warehouse_load(options, pipeline_id=run.pipeline_id, run_id=run.run_id, task_id=_task_id()).as_dict()


@task(name="alert")
def alert_task(channel: str, message: str, dedup_key: str | None = None) -> dict[str, Any]:
    """Send ``message`` to a configured channel once per flow run (a task retry does not resend)."""
    from prefect.runtime import task_run

    from meta import run_alert_op

    arguments: dict[str, Any] = {"channel": channel, "message": message}
    if dedup_key:
        arguments["dedup_key"] = dedup_key
    ctx = OpContext(run_context(), _task_id(), try_number=task_run.get_run_count() or 1)
    with prefect_secrets():
        return run_alert_op(ctx, **arguments)


def _kind_checked(kind: str, channel: str) -> None:
    if not channel.startswith(f"{kind}:"):
        raise ValueError(f"expected a '{kind}:<name>' channel, got {channel!r}")


@task(name="slack_alert")
def slack_alert_task(channel: str, message: str, dedup_key: str | None = None) -> dict[str, Any]:
    _kind_checked("slack", channel)
    return alert_task.fn(channel, message, dedup_key)


@task(name="email_alert")
def email_alert_task(channel: str, message: str, dedup_key: str | None = None) -> dict[str, Any]:
    _kind_checked("email", channel)
    return alert_task.fn(channel, message, dedup_key)
