"""``LocalRunner``: the run context from a ``RunRequest``, the run loop, the run history and alert routes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from meta.builtin.local.alerts import RouteAlerts
from meta.builtin.local.engine import Progress, RunLoop, RunOutcome
from meta.builtin.local.state import History
from meta.semantics.context import RunContext
from meta.semantics.request import InvalidRunRequest, RunRequest
from meta.settings import pool, pool_variable, state_dir
from meta.spec.model import Pipeline


def pool_slots(pipeline: Pipeline, given: Mapping[str, int]) -> dict[str, int]:
    """Slots of each pool the pipeline uses: ``given``, else ``META_POOL_<NAME>`` (an integer), else unlimited."""
    out: dict[str, int] = {}
    for name in sorted({s.pool for s in map(pipeline.settings_for, pipeline.tasks) if s.pool}):
        var = pool_variable(name)
        raw = given.get(name, pool(name))
        if raw is None:
            continue
        try:
            slots = int(raw)
        except (TypeError, ValueError):
            slots = 0
        if slots < 1:
            raise InvalidRunRequest(f"pool {name!r} needs a whole number of slots >= 1 (from {var}), got {raw!r}")
        out[name] = slots
    return out


class LocalRunner:
    """The embedded backend. ``home`` (default: ``$META_HOME`` or ``./.meta``) holds logs and ``meta.db``."""

    def __init__(
        self,
        parallelism: int | None = None,
        home: Path | None = None,
        record_history: bool = True,
        pools: Mapping[str, int] | None = None,
    ):
        if parallelism is not None and parallelism < 1:
            raise InvalidRunRequest(f"parallelism must be at least 1, got {parallelism}")
        self.parallelism = parallelism
        self.pools = dict(pools or {})
        self.home = home
        self.record_history = record_history

    def run(
        self, pipeline: Pipeline, request: RunRequest | None = None, progress: Progress | None = None
    ) -> RunOutcome:
        """Run ``pipeline`` as ``request`` asks (default: ``RunRequest.build(pipeline)``: defaults, now, manual id)."""
        request = (request or RunRequest.build(pipeline)).for_pipeline(pipeline)
        run_id, logical_date, values = request.run_id, request.logical_date, dict(request.params)
        ctx = RunContext(pipeline.id, run_id, logical_date, values, backend="local")
        home = (self.home or state_dir()).resolve()
        history = History(home / "meta.db") if self.record_history else None
        started = datetime.now(UTC)
        if history is not None:
            history.start_run(pipeline.id, run_id, "local", logical_date.isoformat(), started.isoformat(), values)
        slots = pool_slots(pipeline, self.pools)
        alerts = RouteAlerts(pipeline, ctx)
        loop = RunLoop(
            pipeline,
            ctx,
            parallelism=self.parallelism,
            home=home,
            progress=progress,
            pool_slots=slots,
            on_retry=alerts.retry if pipeline.alerts.on_retry else None,
        )
        try:
            outcome = loop.execute()
        except BaseException:
            if history is not None:
                history.mark_failed(pipeline.id, run_id, datetime.now(UTC).isoformat())
            raise
        if history is not None:
            history.finish_run(outcome)
        alerts.finished(outcome)
        return outcome
