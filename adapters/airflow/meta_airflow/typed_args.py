"""Plain-data encoding of the non-JSON values Airflow operators commonly take (timedelta, datetime, date, time).

An imported ``airflow_operator`` keeps its arguments as plain data in the neutral model (YAML-friendly, comparable);
these four types are stored as ``{"__type__": "datetime.timedelta", "seconds": 30.0}`` or
``{"__type__": "datetime.datetime", "iso": "2024-01-01T00:00:00+00:00"}`` and turned back into the objects when the
task is compiled to Airflow (``meta_airflow.plan.to_plan``). Other objects (callables, notifiers, ...) have no
plain form: the import refuses them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

ISO_TYPES: dict[str, type] = {"datetime.datetime": datetime, "datetime.date": date, "datetime.time": time}


class NotPlain(ValueError):
    pass


def encode(value: Any) -> Any:
    """``value`` as plain data; raises NotPlain for anything that is not JSON-like or one of the four types."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, timedelta):
        return {"__type__": "datetime.timedelta", "seconds": value.total_seconds()}
    for cls in (datetime, date, time):  # datetime first: it is a date; pendulum's types subclass these
        if isinstance(value, cls):
            return {"__type__": f"datetime.{cls.__name__}", "iso": value.isoformat()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        if "__type__" in value:
            raise NotPlain("a mapping with a '__type__' key is reserved for typed values")
        return {k: encode(v) for k, v in value.items()}
    raise NotPlain(f"{type(value).__name__} {value!r:.80}")
