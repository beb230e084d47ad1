"""Retry delays exactly as Airflow 3.3 computes them (``meta.semantics.retries.delay_before_retry`` with Airflow's
deterministic jitter), as the list of seconds Prefect takes for ``retry_delay_seconds``. Prefect's own random jitter
is not used.
"""

from __future__ import annotations

from datetime import datetime

from meta import TaskSettings, delay_before_retry, retry_jitter_key


def retry_delays(settings: TaskSettings, pipeline_id: str, task_id: str, logical_date: datetime | None) -> list[float]:
    """Seconds to wait before retry 1, 2, ... ``settings.retries`` (retry n follows try n)."""
    return [
        delay_before_retry(settings, retry, retry_jitter_key(pipeline_id, task_id, logical_date, retry)).total_seconds()
        for retry in range(1, settings.retries + 1)
    ]
