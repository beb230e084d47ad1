"""Cross-orchestrator dependencies: the engine that starts each downstream pipeline once its upstreams succeeded
(``engine``), its rows and claims (``records``) and the upstream facts it reads (``facts``). The judging itself is
pure: ``meta.semantics.dependencies``."""

from meta.service.dependencies.engine import DependencyEngine, TickReport

__all__ = ["DependencyEngine", "TickReport"]
