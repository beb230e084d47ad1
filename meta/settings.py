"""Every ``META_*`` setting the core reads from the environment, in one place (the table is in docs/local-runner.md).

Each accessor reads ``os.environ`` when it is called, never at import: tests and long-lived processes change the
environment, and a value cached at import would outlive the change. Paths expand ``~``. Names inside a variable
(a connection, a secret, a pool, a channel) are spelled by ``env_name``: ``data-team.hook`` -> ``DATA_TEAM_HOOK``.

Adapter-only settings (``META_AIRFLOW_*``, ``META_SPECS_DIR``, ``META_LOADER_STRICT``) live in their adapters.
The ``META_*`` variables meta *sets* for a task (``META_RUN_ID``, ...) are the run-context contract of
``meta.semantics.context``, not settings.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

STATE_DIR_ENV = "META_HOME"


def env_name(name: str) -> str:
    """``data-team.webhook`` -> ``DATA_TEAM_WEBHOOK``: upper-cased, every character outside [A-Za-z0-9] as ``_``."""
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _path(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value).expanduser() if value else None


def state_dir() -> Path:
    """``META_HOME``: meta's state directory (run history, logs, default warehouse, secrets, alert store);
    default ``./.meta`` relative to the working directory."""
    return _path(STATE_DIR_ENV) or Path(".meta")


# -------------------------------------------------------------------------------------------- connections, pools


def connection_variable(name: str) -> str:
    """The variable holding connection ``name``'s SQLAlchemy URL: ``META_CONN_<NAME>``."""
    return f"META_CONN_{env_name(name)}"


def connection(name: str) -> str | None:
    """``META_CONN_<NAME>``: the SQLAlchemy URL of connection ``name`` (may hold ``${secret:...}``), or None."""
    return os.environ.get(connection_variable(name)) or None


def pool_variable(name: str) -> str:
    return f"META_POOL_{env_name(name)}"


def pool(name: str) -> str | None:
    """``META_POOL_<NAME>``: the slots of pool ``name`` on the local runner, unparsed (the runner checks it)."""
    return os.environ.get(pool_variable(name))


# -------------------------------------------------------------------------------------------- secrets


def secret_variable(name: str) -> str:
    return f"META_SECRET_{env_name(name)}"


def secret(name: str) -> str | None:
    """``META_SECRET_<NAME>``: the value of ``${secret:NAME}`` for the ``env`` secret provider, or None."""
    return os.environ.get(secret_variable(name))


def secrets_dir() -> Path:
    """``META_SECRETS_DIR``: the ``file`` secret provider's directory; default ``<state dir>/secrets``."""
    return _path("META_SECRETS_DIR") or state_dir() / "secrets"


# -------------------------------------------------------------------------------------------- alerts


def channels_file() -> Path:
    """``META_CHANNELS_FILE``: the YAML file of named alert channels; default ``<state dir>/channels.yaml``."""
    return _path("META_CHANNELS_FILE") or state_dir() / "channels.yaml"


def channel_prefix(kind: str, name: str) -> str:
    return f"META_CHANNEL_{env_name(kind)}_{env_name(name)}_"


def channel_fields(kind: str, name: str) -> dict[str, tuple[str, str]]:
    """``META_CHANNEL_<KIND>_<NAME>_<FIELD>``: field (lower-cased) -> (variable, value), in variable order."""
    prefix = channel_prefix(kind, name)
    return {
        variable[len(prefix) :].lower(): (variable, value)
        for variable, value in sorted(os.environ.items())
        if variable.startswith(prefix) and len(variable) > len(prefix)
    }


def alert_store() -> Path:
    """``META_ALERT_STORE``: the SQLite file of sent alerts (dedup, rate limits); default ``<state dir>/alerts.db``."""
    return _path("META_ALERT_STORE") or state_dir() / "alerts.db"


def airflow_ui_url() -> str | None:
    """``META_AIRFLOW_UI_URL``: the Airflow UI base alerts link to (e.g. http://airflow.internal:8080), or None."""
    return os.environ.get("META_AIRFLOW_UI_URL") or None


def prefect_ui_url() -> str | None:
    """``META_PREFECT_UI_URL``: the Prefect UI base alerts link to, or None."""
    return os.environ.get("META_PREFECT_UI_URL") or None


# -------------------------------------------------------------------------------------------- control plane


API_URL_ENV = "META_API_URL"
API_TOKEN_ENV = "META_API_TOKEN"  # noqa: S105 - the variable's name, not a token


def api_url() -> str | None:
    """``META_API_URL``: the control plane ``meta status``/``runs``/``trigger`` talk to, or None (the workspace's)."""
    return os.environ.get(API_URL_ENV) or None


def api_token() -> str | None:
    """``META_API_TOKEN``: the API token those commands send, or None."""
    return os.environ.get(API_TOKEN_ENV) or None
