"""Native Airflow operators over meta's shared operators: ``WarehouseLoadOperator``, ``SlackAlertOperator``,
``EmailAlertOperator``. Thin: they validate at DAG-parse time and call ``meta.builtin.operators`` at run time, with
Airflow connections and variables added to the ``${secret:NAME}`` chain while the task runs
(``meta_airflow.secret_provider``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import BaseOperator

from meta import OpContext
from meta_airflow.runtime import plain, resolve_secret_refs, run_context
from meta_airflow.secret_provider import airflow_secrets

log = logging.getLogger("meta.airflow.operators")


class WarehouseLoadOperator(BaseOperator):
    """An idempotent load (see docs/operators.md). ``airflow_conn_id`` takes the target URL from an Airflow
    connection; otherwise ``url`` / ``conn`` as in ``op: warehouse_load``."""

    template_fields: Sequence[str] = ("table", "source", "partition", "url")
    ui_color = "#d9ead3"

    def __init__(
        self,
        *,
        table: str,
        source: dict[str, Any],
        mode: str = "merge",
        keys: Sequence[str] = (),
        partition: dict[str, Any] | None = None,
        url: str | None = None,
        conn: str | None = None,
        airflow_conn_id: str | None = None,
        audit: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table, self.source, self.mode, self.keys = table, source, mode, list(keys)
        self.partition, self.url, self.conn, self.audit = partition, url, conn, audit
        self.airflow_conn_id = airflow_conn_id
        if airflow_conn_id and (url or conn):
            raise ValueError(f"task {self.task_id!r}: give one of airflow_conn_id, url, conn")
        self._options()  # refuse a bad configuration when the DAG is parsed, not when it runs

    def _options(self) -> Any:
        from meta import WarehouseLoadOptions

        url = f"${{secret:conn/{self.airflow_conn_id}}}" if self.airflow_conn_id else self.url
        spec: dict[str, Any] = {"table": self.table, "source": self.source, "mode": self.mode, "keys": self.keys}
        spec["url"] = url
        spec.update({k: v for k, v in (("partition", self.partition), ("conn", self.conn)) if v is not None})
        spec["audit"] = self.audit
        return WarehouseLoadOptions.model_validate(spec)

    def execute(self, context: Any) -> dict[str, Any]:
        from meta import warehouse_load

        run = run_context(context)
        with airflow_secrets():
            result = warehouse_load(
                self._options(), pipeline_id=run.pipeline_id, run_id=run.run_id, task_id=self.task_id
            )
        self.log.info("inserted=%d updated=%d deleted=%d", result.inserted, result.updated, result.deleted)
        return result.as_dict()


class _AlertOperator(BaseOperator):
    kind = ""
    template_fields: Sequence[str] = ("message",)

    def __init__(self, *, channel: str, message: str, dedup_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not channel.startswith(f"{self.kind}:"):
            raise ValueError(
                f"task {self.task_id!r}: {type(self).__name__} needs a '{self.kind}:<name>' channel, got {channel!r}"
            )
        from meta import AlertOptions

        self.channel, self.message, self.dedup_key = channel, message, dedup_key
        AlertOptions.model_validate({"channel": channel, "message": message})

    def execute(self, context: Any) -> dict[str, Any]:
        from meta import run_alert_op

        ti = context.get("ti") or context.get("task_instance")
        op_context = OpContext(run_context(context), self.task_id, try_number=getattr(ti, "try_number", 1) or 1)
        arguments: dict[str, Any] = {"channel": self.channel, "message": self.message}
        if self.dedup_key:
            arguments["dedup_key"] = self.dedup_key
        with airflow_secrets():
            return run_alert_op(op_context, **arguments)


class SlackAlertOperator(_AlertOperator):
    """Send ``message`` to a configured ``slack:<name>`` channel once per DAG run (a retry does not resend)."""

    kind = "slack"
    ui_color = "#e8d1f0"


class EmailAlertOperator(_AlertOperator):
    """Send ``message`` to a configured ``email:<name>`` channel once per DAG run (a retry does not resend)."""

    kind = "email"
    ui_color = "#fce5cd"


class MetaBashOperator(BashOperator):
    """BashOperator whose ``env`` may hold ``${secret:NAME}``. References are resolved in ``execute``, after Airflow
    has rendered (and stored) the template fields, so secret values never reach the DAG file, the serialized DAG or
    the rendered-fields table; they are masked in the task log."""

    def execute(self, context: Any) -> Any:
        self.env = resolve_secret_refs(self.env)
        return super().execute(context)


class MetaSQLExecuteQueryOperator(SQLExecuteQueryOperator):
    """SQLExecuteQueryOperator whose ``parameters`` hold a mapped task's result: Airflow resolves it to a lazy XCom
    sequence, which DB drivers do not adapt; after rendering it is the plain list the local runner passes."""

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        self.parameters = plain(self.parameters)
