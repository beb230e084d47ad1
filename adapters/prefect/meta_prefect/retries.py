"""Retry delays exactly as Airflow 3.3 computes them, handed to Prefect as ``retry_delay_seconds``.

Airflow (``TaskInstance.next_retry_datetime``): with a backoff multiplier the delay before retry *n* is
``min_backoff + hash % min_backoff`` where ``min_backoff = max(1, ceil(retry_delay * multiplier ** (n - 1)))`` and the
hash is a SHA-1 of ``dag_id#task_id#logical_date#try_number`` - a deterministic jitter in ``[d, 2d)`` - then capped by
``max_retry_delay``. Without a multiplier the delay is constant. Prefect's own random jitter is not used.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime

from meta.model import TaskSettings


def retry_delays(settings: TaskSettings, pipeline_id: str, task_id: str, logical_date: datetime | None) -> list[float]:
    """Seconds to wait before retry 1, 2, ... ``settings.retries``."""
    return [_delay(settings, pipeline_id, task_id, logical_date, retry) for retry in range(1, settings.retries + 1)]


def _delay(settings: TaskSettings, pipeline_id: str, task_id: str, logical_date: datetime | None, retry: int) -> float:
    multiplier = settings.retry_backoff or 1.0
    if multiplier == 1.0:
        seconds = settings.delay_before_retry(retry).total_seconds()
    else:
        base = settings.retry_delay.total_seconds() * multiplier ** (retry - 1)
        min_backoff = max(1, math.ceil(base))
        # The failed attempt's try number is the retry number: retry 1 follows try 1.
        key = f"{pipeline_id}#{task_id}#{logical_date}#{retry}".encode()
        digest = int(hashlib.sha1(key, usedforsecurity=False).hexdigest(), 16)
        seconds = float(min_backoff + digest % min_backoff)
    if settings.max_retry_delay is not None:
        seconds = min(seconds, settings.max_retry_delay.total_seconds())
    return seconds
