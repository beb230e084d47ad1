"""What a produced result must be, on every backend: a JSON value, at most ``MAX_RESULT_BYTES``, holding no secret.

Results travel through Airflow's XCom table, Prefect's task results and the local run history, so they are JSON:
tuples become lists, and anything JSON cannot hold (a datetime, a DataFrame) is refused with the task and type
named, as is a result that would carry a credential (a resolved secret's value, or a literal under a
credential-looking key such as ``password``).
"""

from __future__ import annotations

import json
from typing import Any

from meta.spec.checks import literal_secrets

# Large enough for ids, paths, counts and small records; data belongs in a table or a file whose name is returned.
MAX_RESULT_BYTES = 64 * 1024


class ResultRefused(ValueError):
    """A task's result cannot be kept; the message names the task and says why."""


def checked_result(task_id: str, value: Any) -> Any:
    """``value`` as the JSON value other tasks receive; raises ResultRefused (never showing a secret)."""
    from meta.execution import secrets

    try:
        text = json.dumps(value, allow_nan=False, sort_keys=False)
    except (TypeError, ValueError) as exc:
        raise ResultRefused(
            f"task {task_id!r} returned a result that is not a JSON value ({_kind(value)}: {exc}); results pass "
            "between tasks and backends as JSON: return str, int, float, bool, None, lists and dicts of them"
        ) from None
    size = len(text.encode())
    if size > MAX_RESULT_BYTES:
        raise ResultRefused(
            f"task {task_id!r} returned a result of {_size(size)}; results are limited to {_size(MAX_RESULT_BYTES)} "
            "(write large data to a table or a file and return its name)"
        )
    if secrets.redact(text) != text:
        raise ResultRefused(
            f"task {task_id!r} returned a result holding a secret's value; results are stored and shown, so they "
            "must not carry secrets (pass the ${secret:NAME} reference on instead; the value is not shown)"
        )
    for path, _ in literal_secrets(value if isinstance(value, dict | list) else {}):
        raise ResultRefused(
            f"task {task_id!r} returned a result with a credential under {'.'.join(path)!r}; results are stored "
            "and shown, so they must not carry secrets (the value is not shown)"
        )
    return json.loads(text)


def _kind(value: Any) -> str:
    return type(value).__name__


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"
