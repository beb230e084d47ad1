"""What the API and the observer runtime share inside one ``meta serve`` process: passed in, never global."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meta.plugins.observers import RunEvent, Triggerable
from meta.service.store.db import Store
from meta.spec.model import Pipeline
from meta.spec.workspace import Workspace


@dataclass
class ServiceContext:
    store: Store
    workspace: Workspace
    # backend name -> something that starts runs there (the backend's observer, when it can).
    triggerers: Mapping[str, Triggerable] = field(default_factory=dict)
    # OpenLineage payload -> neutral events (empty for producers meta does not map: they are stored as lineage only).
    lineage: Callable[[dict[str, Any]], list[RunEvent]] = lambda _payload: []
    # pipeline id -> team (the workspace's teams and the specs' ``team:``).
    team_of: Callable[[str], str | None] = lambda _pipeline: None
    # Counters the runtime keeps for /metrics: backend -> {"lag_seconds": .., "ingested": ..}.
    observer_stats: dict[str, dict[str, float]] = field(default_factory=dict)
    # the workspace's meta-built pipelines (their depends_on makes the dependency graph)
    pipelines: Sequence[Pipeline] = ()
