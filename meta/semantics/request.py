"""What a run is asked for, checked the same way on every backend: run ids in Airflow's alphabet."""

from __future__ import annotations

import re
from datetime import datetime

from meta.spec.errors import MetaError

# Airflow's default allowed_run_id_pattern; run ids also name log directories, so "." and ".." are refused too.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.~:+\-]+$")


class InvalidRunRequest(MetaError, ValueError):
    pass


def default_run_id(logical_date: datetime) -> str:
    """Airflow's manual run id: ``manual__<logical date ISO-8601>``."""
    return f"manual__{logical_date.isoformat()}"


def check_run_id(run_id: str) -> str:
    if not RUN_ID_PATTERN.match(run_id) or run_id in (".", ".."):
        raise InvalidRunRequest(
            f"invalid run id {run_id!r}; expected letters, digits and _ . ~ : + - (Airflow's run id alphabet)"
        )
    return run_id
