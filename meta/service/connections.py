"""From a loaded workspace to what the control plane connects with: backend connections with their secrets
resolved, the database URL, the control plane's tokens.

This is the one place ``${secret:NAME}`` references of the workspace file are resolved, through meta's secret
providers (``meta.execution.secrets.get_secret``: ``META_SECRET_<NAME>``, ``$META_SECRETS_DIR/<NAME>``, plugins),
so every resolved value is remembered for redaction. It lives in ``meta.service`` and not beside the loader because
the loader (``meta.authoring``) may not import ``meta.execution``: loading a workspace never needs a credential.

A missing secret is a :class:`WorkspaceSecretMissing` naming the backend, the field and the secret, never a value.
"""

from __future__ import annotations

from pathlib import Path

from meta.authoring.build import Loaded
from meta.authoring.workspace import LoadedWorkspace
from meta.execution.secrets import SECRET_REF, SecretNotFound, get_secret
from meta.plugins.observers import BackendConnection
from meta.spec.errors import MetaError
from meta.spec.workspace import AirflowBackend, LocalBackend, PluginBackend, PrefectBackend

CONTROL_PLANE_DB = "control-plane.db"


class WorkspaceSecretMissing(MetaError, LookupError):
    """A ``${secret:NAME}`` of the workspace file that no secret provider knows."""


def resolve_connection(
    workspace: LoadedWorkspace, backend_name: str, pipelines: Loaded | None = None
) -> BackendConnection:
    """What an observer needs to reach ``backend_name``: URL, options, resolved credentials, and ``pipelines``
    (the DAG id / flow name of each meta pipeline placed there -> its pipeline id; both adapters name DAGs and flows
    by the pipeline id). ``pipelines``: the workspace's specs already loaded (default: loaded here, once per call).

    Options by kind: airflow ``specs_dir``, ``openlineage_namespace``, ``ui_url``; prefect ``work_pool``,
    ``flows_dir``, ``ui_url``; local ``state_dir`` and ``specs`` (pipeline id -> its spec file, to trigger runs); a
    plugin's kind: its ``options`` as written. Credentials: airflow ``username``/``password``, prefect ``auth``, a
    plugin's kind its ``credentials`` names; absent keys when the file sets none.
    """
    ws = workspace.workspace
    backend = ws.backends.get(backend_name)
    if backend is None:
        raise MetaError(
            f"no backend {backend_name!r} in the workspace {workspace.path}; "
            f"defined: {', '.join(sorted(ws.backends)) or 'none'}"
        )
    loaded = pipelines if pipelines is not None else workspace.load_pipelines()
    placed = ws.placed_on(backend_name, [p.id for p in loaded.pipelines])
    folder = workspace.backend_dir(backend_name)
    credentials = backend_credentials(workspace, backend_name)
    if isinstance(backend, AirflowBackend):
        options: dict[str, object] = {
            "specs_dir": str(folder) if folder else None,
            "openlineage_namespace": ws.namespace_of(backend_name),
            "ui_url": backend.ui_url or backend.url,
        }
        url = backend.url
    elif isinstance(backend, PrefectBackend):
        options = {
            "work_pool": backend.work_pool,
            "flows_dir": str(folder) if folder else None,
            "ui_url": backend.ui_url,
            "push": backend.push,
        }
        url = backend.url
    elif isinstance(backend, PluginBackend):
        options = dict(backend.options)
        url = backend.url
    else:
        assert isinstance(backend, LocalBackend)
        home = folder or workspace.state_dir
        specs = {pid: _spec_file(loaded, pid) for pid in placed}
        options = {"state_dir": str(home), "specs": {pid: path for pid, path in specs.items() if path}}
        url = home.as_uri()
    return BackendConnection(
        name=backend_name,
        kind=backend.kind,
        url=url.rstrip("/"),
        options=options,
        credentials=credentials,
        pipelines={pid: pid for pid in placed},
    )


def backend_credentials(workspace: LoadedWorkspace, backend_name: str) -> dict[str, str]:
    """A backend's credentials, resolved: airflow ``username``/``password``, prefect ``auth`` (only those set)."""
    backend = workspace.workspace.backends[backend_name]
    if isinstance(backend, PluginBackend):  # a plugin's kind: its own names, each a secret reference
        return {key: _resolve(value, backend_name, f"credentials.{key}") for key, value in backend.credentials.items()}
    fields = {"airflow": ("username", "password"), "prefect": ("auth",)}.get(backend.kind, ())
    out = {}
    for key in fields:
        value = getattr(backend, key)
        if value is not None:
            out[key] = _resolve(value, backend_name, key)
    return out


def resolve_connections(workspace: LoadedWorkspace, pipelines: Loaded | None = None) -> list[BackendConnection]:
    """``resolve_connection`` for every backend of the workspace, in file order (specs loaded once)."""
    loaded = pipelines if pipelines is not None else workspace.load_pipelines()
    return [resolve_connection(workspace, name, loaded) for name in workspace.workspace.backends]


def database_url(workspace: LoadedWorkspace) -> str:
    """The store's SQLAlchemy URL with its secret references resolved (default: SQLite ``control-plane.db`` in the
    state directory). Contains a password when the file says so: show it only through ``store.db.redact``."""
    url = workspace.workspace.control_plane.database
    if url is None:
        return f"sqlite:///{workspace.state_dir / CONTROL_PLANE_DB}"
    return _resolve(url, None, "control_plane.database")


def control_plane_secret(workspace: LoadedWorkspace, field: str) -> str | None:
    """``ingest_token`` or ``admin_token`` of ``control_plane``, resolved (None when the file sets none)."""
    if field not in ("ingest_token", "admin_token"):
        raise ValueError(f"control_plane has no secret field {field!r}")
    value = getattr(workspace.workspace.control_plane, field)
    return None if value is None else _resolve(value, None, f"control_plane.{field}")


def _resolve(value: str, backend: str | None, field: str) -> str:
    def one(match: object) -> str:
        name = match.group(1)  # type: ignore[attr-defined]
        try:
            return get_secret(name)
        except SecretNotFound as exc:
            owner = f"backend {backend!r}: " if backend else ""
            raise WorkspaceSecretMissing(f"{owner}{field} needs secret {name!r}, which is not set ({exc})") from None

    return SECRET_REF.sub(one, value)


def _spec_file(loaded: Loaded, pipeline_id: str) -> str | None:
    source = loaded.source_of(pipeline_id)
    return str(Path(source.file).absolute()) if source else None
