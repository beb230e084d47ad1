"""The control plane's optional dependencies (``meta-orchestrator[server]``): a clear error when they are missing."""

from __future__ import annotations

import importlib.util

from meta.spec.errors import MetaError

SERVER_MODULES = ("fastapi", "uvicorn", "alembic", "websockets")


def missing_server_modules() -> list[str]:
    return [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]


def require_server_extra() -> None:
    missing = missing_server_modules()
    if missing:
        raise MetaError(
            f"the control plane needs {', '.join(missing)}, which are not installed: "
            "pip install 'meta-orchestrator[server]'"
        )
