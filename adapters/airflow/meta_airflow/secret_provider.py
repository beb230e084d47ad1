"""The Airflow secret provider: Airflow connections and variables join meta's ``${secret:NAME}`` chain while a task
runs (``meta.secrets.runtime_provider``; per task, so concurrent tasks in one worker process do not share it):

  ``${secret:conn/<conn_id>}``           the connection as a URI       (``Connection.get(conn_id).get_uri()``)
  ``${secret:conn/<conn_id>/<field>}``   one field: password, login, host, schema, port, or an extra key
  ``${secret:<key>}``                    the Airflow variable ``<key>`` (``Variable.get``)

Its own module so that ``meta_airflow.runtime`` (callables of Airflow tasks) and ``meta_airflow.operators`` (native
operators) both use it without importing each other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from meta import secrets

CONNECTION_FIELDS = ("password", "login", "host", "schema", "port", "conn_type")


class AirflowSecretProvider:
    """Secrets from Airflow connections and variables; only meaningful inside a running Airflow task."""

    name = "airflow"

    def get(self, name: str) -> str | None:
        if name.startswith("conn/"):
            conn_id, _, field = name[len("conn/") :].partition("/")
            connection = self._connection(conn_id)
            if connection is None:
                return None
            if not field:
                return str(connection.get_uri())
            value = getattr(connection, field) if field in CONNECTION_FIELDS else connection.extra_dejson.get(field)
            return None if value is None else str(value)
        try:
            from airflow.sdk import Variable

            value = Variable.get(name)
        except Exception:  # not found, or not inside a task: let the next provider try
            return None
        return None if value is None else str(value)

    def describe(self, name: str) -> str:
        return f"Airflow connection {name[5:]!r}" if name.startswith("conn/") else f"Airflow variable {name!r}"

    @staticmethod
    def _connection(conn_id: str) -> Any:
        try:
            from airflow.sdk import Connection

            return Connection.get(conn_id)
        except Exception:
            return None


@contextlib.contextmanager
def airflow_secrets() -> Iterator[None]:
    """Put Airflow's connections and variables first in the secret chain for the duration of a task."""
    with secrets.runtime_provider(AirflowSecretProvider()):
        yield
