"""meta's shared operators, registered exactly like a third-party plugin: op types ``warehouse_load`` and ``alert``,
channel kinds ``slack``/``email``/``webhook``, secret providers ``env`` then ``file``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meta.execution.secrets import EnvSecretProvider, FileSecretProvider
from meta.plugins.hookspecs import hookimpl
from meta.plugins.ops import OpContext, OpType
from meta.plugins.protocols import ChannelKind, SecretProvider


def run_warehouse_load(ctx: OpContext, **with_args: Any) -> dict[str, Any]:
    """The ``warehouse_load`` op: render ``with`` with the run context, load, return the counts."""
    from meta.builtin.operators.warehouse import WarehouseLoadOptions, load
    from meta.semantics.context import render_value

    variables = ctx.run.template_vars(ctx.task_id, ctx.try_number)
    options = WarehouseLoadOptions.model_validate(render_value(with_args, variables))
    result = load(options, pipeline_id=ctx.run.pipeline_id, run_id=ctx.run.run_id, task_id=ctx.task_id, logger=ctx.log)
    return result.as_dict()


def run_alert(ctx: OpContext, **with_args: Any) -> dict[str, Any]:
    from meta.builtin.operators.alerts import run_alert_op

    return run_alert_op(ctx, **with_args)


@hookimpl
def register_ops(register: Callable[[OpType], None]) -> None:
    from meta.builtin.operators.alerts import AlertOptions
    from meta.builtin.operators.warehouse.options import WarehouseLoadOptions

    register(
        OpType(
            name="warehouse_load",
            run=run_warehouse_load,
            options=WarehouseLoadOptions,
            description="idempotent load (PostgreSQL/DuckDB/SQLite): merge, replace_partition, replace, append_dedup",
        )
    )
    register(
        OpType(
            name="alert",
            run=run_alert,
            options=AlertOptions,
            description="send a message to named channels (slack:..., email:..., webhook:...), once per run",
        )
    )


@hookimpl
def register_channels(register: Callable[[ChannelKind], None]) -> None:
    from meta.builtin.operators.alerts.channels import BUILTIN_CHANNELS

    for channel in BUILTIN_CHANNELS:
        register(channel)


@hookimpl
def register_secret_providers(register: Callable[[SecretProvider], None]) -> None:
    register(EnvSecretProvider())
    register(FileSecretProvider())
