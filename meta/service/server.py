"""Assembling one control plane from a workspace: the store, one observer per backend, the runtime, the API.

``ControlPlane.open`` does everything but serve (``meta status`` without a server uses the store from it);
``serve`` runs the API with uvicorn and the observers beside it until SIGTERM or Ctrl-C, then stops both cleanly.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meta.plugins.manager import get_observer_kind
from meta.plugins.observers import BackendConnection, Triggerable
from meta.service.context import ServiceContext
from meta.service.runtime import BackendWatch, ObserverRuntime
from meta.service.store.db import Store, open_store, redact
from meta.spec.errors import MetaError
from meta.spec.model import Pipeline
from meta.spec.workspace import Workspace

log = logging.getLogger("meta.service")

if TYPE_CHECKING:
    from meta.service.dependencies import DependencyEngine
    from meta.service.lease import Lease
    from meta.service.sla import SlaEngine


def listen_address(workspace: Workspace) -> tuple[str, int]:
    host, port = workspace.control_plane.listen.rsplit(":", 1)
    return host, int(port)


def api_url(workspace: Workspace) -> str:
    if workspace.control_plane.url:
        return workspace.control_plane.url.rstrip("/")
    host, port = listen_address(workspace)
    return f"http://{host}:{port}"


@dataclass
class ControlPlane:
    workspace: Workspace
    store: Store
    connections: list[BackendConnection]
    team_of: Callable[[str], str | None]
    watches: list[BackendWatch]
    pipelines: Sequence[Pipeline] = ()
    runtime: ObserverRuntime | None = None
    sla_engine: SlaEngine | None = None
    dependency_engine: DependencyEngine | None = None
    # held by the one replica (of several ``meta serve`` on one database) that drives dependencies and SLAs
    lease: Lease | None = None
    forwarder: Any = None  # the DatasetForwarder, when the dependency engine's loop runs one
    # backend -> {"lag_seconds": ...}: written by the runtime, read by /metrics (plain floats; no lock needed)
    live_stats: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        workspace: Workspace,
        connections: list[BackendConnection],
        *,
        database_url: str,
        declared_teams: dict[str, str | None] | None = None,
        pipelines: Sequence[Pipeline] = (),
    ) -> ControlPlane:
        """``pipelines``: the workspace's loaded specs (their SLAs are watched on every backend they are placed on)."""
        declared = declared_teams or {}
        try:
            store = open_store(database_url)
        except Exception as exc:
            raise MetaError(f"cannot open the control plane's database {redact(database_url)}: {exc}") from None

        def team_of(pipeline_id: str) -> str | None:
            from meta.service.migrations.shadow import live_id

            pipeline_id = live_id(pipeline_id)  # a shadow copy belongs to the live pipeline's team
            return workspace.team_of(pipeline_id, declared.get(pipeline_id))

        # Observers are plain objects until the runtime starts their threads: ``meta trigger`` without a server
        # uses them to start runs, ``meta serve`` also to watch.
        watches = [BackendWatch(c, get_observer_kind(c.kind).create(c)) for c in connections]
        return cls(workspace, store, connections, team_of, watches, pipelines=tuple(pipelines))

    def start_observers(self, on_change: Callable[..., None] | None = None) -> ObserverRuntime:
        self.runtime = self._runtime(on_change)
        self.runtime.start()
        return self.runtime

    def sla(self, *, deliver: bool = True) -> SlaEngine:
        """The SLA engine over this plane's store (``start_sla_engine`` runs it on its timer)."""
        from meta.service.sla import SlaEngine

        runtime = self.runtime
        return SlaEngine(
            self.store,
            self.workspace,
            self.pipelines,
            team_of=self.team_of,
            poll_now=runtime.poll_now if runtime is not None else None,
            deliver=deliver,
            lease=self.lease,
        )

    def start_sla_engine(self) -> SlaEngine:
        self.sla_engine = self.sla()
        self.sla_engine.start()
        return self.sla_engine

    def dependencies(self, *, act: bool = True, forward_datasets: bool = False) -> DependencyEngine:
        """The dependency engine over this plane's store and backends (``start_dependency_engine`` runs it);
        ``act=False`` records what waits for what and starts nothing; ``forward_datasets``: its loop also forwards
        dataset updates across backends (``meta.service.datasets``), on the leader only like the rest."""
        from meta.service.dependencies import DependencyEngine

        observers = {w.connection.name: w.observer for w in self.watches}

        def params_of(backend: str, pipeline_id: str, run_id: str) -> Any:
            read = getattr(observers.get(backend), "run_params", None)
            return read(pipeline_id, run_id) if callable(read) else None

        return DependencyEngine(
            self.store,
            self.workspace,
            self.pipelines,
            self.triggerers(),
            team_of=self.team_of,
            params_of=params_of,
            lease=self.lease,
            act=act,
            companions=[*([self._forwarder().tick] if forward_datasets else []), self.migrations(params_of).tick],
        )

    def migrations(self, params_of: Callable[[str, str, str], Any] | None = None) -> Any:
        """The migration engine (``meta migrate``): ticked with the dependency engine, on the leader only."""
        from meta.service.migrations.engine import MigrationEngine

        return MigrationEngine(
            self.store,
            self.pipelines,
            self.triggerers(),
            params_of=params_of,
            comparer=_comparer(self.pipelines, self.workspace),
        )

    def _forwarder(self) -> Any:
        from meta.service.datasets import DatasetForwarder

        self.forwarder = DatasetForwarder.of(self)
        return self.forwarder

    def start_dependency_engine(self, engine: DependencyEngine | None = None) -> DependencyEngine:
        self.dependency_engine = engine or self.dependencies()
        self.dependency_engine.start()
        return self.dependency_engine

    def triggerers(self) -> dict[str, Triggerable]:
        """Backend name -> its observer, for the backends whose observer can start runs."""
        found: dict[str, Triggerable] = {}
        for watch in self.watches:
            if callable(getattr(watch.observer, "trigger", None)):
                found[watch.connection.name] = watch.observer  # type: ignore[assignment]
        return found

    def refresh(self, timeout: float = 20.0) -> dict[str, str]:
        """One poll of every backend into the store, without serving: backend -> health afterwards."""
        runtime = self._runtime(None)
        runtime.register_backends()
        return runtime.poll_once(timeout)

    def _runtime(self, on_change: Callable[..., None] | None) -> ObserverRuntime:
        return ObserverRuntime(
            self.store,
            self.watches,
            poll_interval=self.workspace.control_plane.poll_interval.total_seconds(),
            team_of=self.team_of,
            on_change=on_change,
            live_stats=self.live_stats,
        )

    def context(self) -> ServiceContext:
        lineage = self._lineage_mapper()
        return ServiceContext(
            store=self.store,
            workspace=self.workspace,
            triggerers=self.triggerers(),
            lineage=lineage,
            team_of=self.team_of,
            observer_stats=self.live_stats,
            pipelines=self.pipelines,
        )

    def _lineage_mapper(self) -> Callable[[dict[str, Any]], list[Any]]:
        """OpenLineage namespace -> the Airflow backend that sends it (``openlineage_namespace``, else its name).

        Every event from a known namespace also wakes that backend's poll loop: OpenLineage cannot tell a task's
        success from a skip (both are START + COMPLETE), so the push maps what it can and a poll, two requests,
        fetches the exact states at once. Push speed, poll truth."""
        from meta.service.observers import openlineage

        namespaces: dict[str, BackendConnection] = {}
        for c in self.connections:
            if c.kind == "airflow":
                namespaces[str(c.options.get("openlineage_namespace") or c.name)] = c
        mapped = openlineage.mapper(namespaces, latest_try=openlineage.store_latest_try(self.store))

        def map_and_wake(payload: dict[str, Any]) -> list[Any]:
            events = mapped(payload)
            job = payload.get("job") if isinstance(payload, dict) else None
            namespace = job.get("namespace") if isinstance(job, dict) else None
            connection = namespaces.get(namespace) if isinstance(namespace, str) else None
            if connection is not None and self.runtime is not None:
                self.runtime.poll_now(connection.name)
            return events

        return map_and_wake

    def close(self) -> None:
        if self.dependency_engine is not None:
            self.dependency_engine.stop()
        if self.forwarder is not None:
            self.forwarder.close()
        if self.sla_engine is not None:
            self.sla_engine.stop()
        if self.runtime is not None:
            self.runtime.stop()  # closes the observers too
        else:
            for watch in self.watches:
                watch.observer.close()
        if self.lease is not None:
            try:
                self.lease.release()  # another replica takes over at once rather than after the lease's ttl
            except Exception:
                log.exception("releasing the leader lease")
        self.store.close()


def _comparer(pipelines: Any, workspace: Any) -> Any:
    """The live/shadow comparison (meta.service.migrations.compare) with the live specs and ``migrations:``."""
    from meta.service.migrations.compare import comparer

    return comparer({p.id: p for p in pipelines}, workspace.migrations)


def serve(
    plane: ControlPlane, *, host: str, port: int, admin_token: str | None, ingest_token: str | None = None
) -> None:
    """Run the API and the observers until SIGTERM / Ctrl-C (uvicorn handles both and returns)."""
    import uvicorn

    from meta.service.api.app import MIN_BOOTSTRAP_LENGTH, create_app

    stop_reporting = threading.Event()
    stopping = threading.Event()
    for field_name, token in (("admin_token", admin_token), ("ingest_token", ingest_token)):
        if token is not None and len(token) < MIN_BOOTSTRAP_LENGTH:
            raise MetaError(f"control_plane.{field_name} must be at least {MIN_BOOTSTRAP_LENGTH} characters long")
    app = create_app(
        plane.context(), bootstrap_admin_token=admin_token, bootstrap_ingest_token=ingest_token, stopping=stopping
    )
    from meta.service.lease import Lease

    plane.lease = Lease(plane.store)
    dependencies = plane.dependencies(forward_datasets=True)
    # after the app exists: a refused configuration starts nothing. Every stored change wakes the dependency engine,
    # so a pushed upstream success starts its downstream within the second.
    plane.start_observers(on_change=dependencies.nudge)
    plane.start_sla_engine()
    plane.start_dependency_engine(dependencies)
    reporter = threading.Thread(target=_report_health, args=(plane, stop_reporting), name="health", daemon=True)
    reporter.start()
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    # uvicorn waits for open responses before it shuts down, and an event stream ends only when ``stopping`` is
    # set: set it from the signal itself, or SIGTERM would wait for every dashboard tab to close.
    handle_exit = server.handle_exit

    def stop_streams_then_exit(sig: int, frame: Any) -> None:
        stopping.set()
        handle_exit(sig, frame)

    server.handle_exit = stop_streams_then_exit  # type: ignore[method-assign]
    print(
        f"meta serve: dashboard on http://{host}:{port}/ (sign in with a token: `meta token create`), "
        f"API on http://{host}:{port}/api/v1 (OpenAPI: /api/v1/openapi.json); "
        f"watching {len(plane.connections)} backend(s): {', '.join(c.name for c in plane.connections) or 'none'}",
        file=sys.stderr,
        flush=True,
    )
    # uvicorn handles SIGTERM/SIGINT with a graceful shutdown, then restores the previous handlers and raises the
    # signal again; with the default handler that kills the process before the observers stop. These handlers
    # make the re-raise a no-op so the cleanup below runs and the exit code is 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    try:
        server.run()
    finally:
        stopping.set()
        stop_reporting.set()
        plane.close()
        print("meta serve: stopped", file=sys.stderr, flush=True)


def _report_health(plane: ControlPlane, stop: threading.Event, every: float = 30.0) -> None:
    """One stderr line per backend whenever its health changes, and a summary every ``every`` seconds."""
    shown: dict[str, str] = {}
    last_summary = 0.0
    import time

    while not stop.wait(1.0):
        runtime = plane.runtime
        if runtime is None:
            continue
        lines = []
        for name, watch in runtime.watches.items():
            s = watch.stats
            if shown.get(name) != s.health:
                shown[name] = s.health
                detail = f" ({s.last_error})" if s.health != "ok" and s.last_error else ""
                print(f"meta serve: {name}: {s.health}{detail}", file=sys.stderr, flush=True)
            lag = f"{s.lag_seconds:.1f}s" if s.lag_seconds is not None else "-"
            lines.append(f"{name} {s.health} lag {lag} cycles {s.cycles}")
        if time.monotonic() - last_summary >= every:
            last_summary = time.monotonic()
            print("meta serve: " + "; ".join(lines), file=sys.stderr, flush=True)
