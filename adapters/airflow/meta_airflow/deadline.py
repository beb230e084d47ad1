"""The Deadline Alert callback for meta's run-level SLAs (``sla.max_duration``, ``sla.finish_by`` on a daily cron,
each ``sla.deadlines`` entry), run by Airflow's triggerer.

DAGs reference it as ``meta_deadline.on_deadline_missed``: the small module ``plugins/meta_deadline.py`` (copy it into
``$AIRFLOW_HOME/plugins``, which Airflow puts on the triggerer's path) re-exports it from here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("meta.deadline")


async def on_deadline_missed(
    pipeline: str, channels: list[str] | None = None, sla: str = "max_duration", **context: Any
) -> None:
    """Called by Airflow when a run of ``pipeline`` is still unfinished at its deadline (``sla``: the kind it missed,
    ``max_duration``, ``finish_by`` or a deadline's name such as ``deadline:queued_at+1h``); alerts ``channels``
    with the dedup key ``sla_miss:<kind>``, the control plane's key for the same miss."""
    run_id = run_id_of(context)
    log.warning("meta: pipeline %s run %s missed its SLA (%s)", pipeline, run_id, sla)
    if not channels:
        return
    from meta import (
        AlertEvent,
        send_alert,  # lazily: the triggerer imports this module at startup
    )

    event = AlertEvent(
        pipeline_id=pipeline,
        run_id=str(run_id or ""),
        event="sla_miss",
        backend="airflow",
        message=f"the run missed its sla.{sla}",
        dedup_key=f"sla_miss:{sla}",
    )
    try:
        # send_alert does blocking I/O (SMTP, HTTP): keep it off the triggerer's event loop.
        await asyncio.to_thread(send_alert, list(channels), event)
    except Exception:
        log.exception("meta: could not send the SLA alert for %s to %s", pipeline, channels)


def run_id_of(context: dict[str, Any]) -> str | None:
    """The missed run's id. Airflow 3.3's scheduler passes ``context={"dag_run": DAGRunResponse(...).model_dump()}``
    (``airflow.models.deadline.Deadline.handle_miss``), whose field is ``dag_run_id``; without it every miss of a
    pipeline would share one dedup key and only the first would ever be announced."""
    dag_run = context.get("dag_run") or (context.get("context") or {}).get("dag_run")
    if isinstance(dag_run, dict):
        found = dag_run.get("dag_run_id") or dag_run.get("run_id")
    else:
        found = getattr(dag_run, "run_id", None)
    return str(found) if found else None


PLUGIN_SOURCE = '''"""meta's Deadline Alert callback for Airflow's plugins folder.

DAGs compiled by meta name it as meta_deadline.on_deadline_missed; the code lives in meta_airflow.deadline.
"""

from meta_airflow.deadline import on_deadline_missed

__all__ = ["on_deadline_missed"]
'''
