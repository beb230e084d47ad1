"""Airflow 3.3's retry delay (``TaskInstance.next_retry_datetime``), exactly, for every backend."""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta

from meta.spec.model import TaskSettings


def retry_jitter_key(pipeline_id: str, task_id: str, logical_date: object, try_number: int) -> str:
    """Airflow's key for the backoff jitter: ``dag_id#task_id#logical_date#try_number`` of the failed attempt."""
    return f"{pipeline_id}#{task_id}#{logical_date}#{try_number}"


def delay_before_retry(settings: TaskSettings, retry_number: int, jitter_key: str | None = None) -> timedelta:
    """Delay before retry ``retry_number`` (1 = first retry), as Airflow 3.3 computes it.

    With a backoff multiplier Airflow waits ``min_backoff = max(1, ceil(retry_delay * backoff ** (n - 1)))``
    seconds plus a deterministic jitter ``sha1(key) % min_backoff`` (so within [d, 2d)), where the key is
    ``retry_jitter_key(...)``. Without ``jitter_key`` this returns the lower bound. ``max_retry_delay`` caps it.
    """
    delay = settings.retry_delay
    if settings.retry_backoff and settings.retry_backoff != 1.0:
        min_backoff = max(1, math.ceil(delay.total_seconds() * settings.retry_backoff ** (retry_number - 1)))
        jitter = 0
        if jitter_key is not None:
            jitter = int(hashlib.sha1(jitter_key.encode(), usedforsecurity=False).hexdigest(), 16) % min_backoff
        delay = timedelta(seconds=min_backoff + jitter)
    if settings.max_retry_delay is not None and delay > settings.max_retry_delay:
        delay = settings.max_retry_delay
    return delay
