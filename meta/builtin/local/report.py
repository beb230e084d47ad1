"""Plain-text tables for people: the run table (``meta run``, ``make demo``) and the run history (``meta runs``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meta.builtin.local.engine import RunOutcome
from meta.spec.results import RunResult


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_table(outcome: RunOutcome) -> str:
    """Task, state, attempts, duration of the last attempt; tasks in definition order."""
    rows = []
    for task_id, tr in outcome.result.tasks.items():
        duration = outcome.last_duration(task_id)
        rows.append((task_id, tr.state, tr.attempts, f"{duration:.2f}s" if duration is not None else "-"))
    return table(("task", "state", "attempts", "duration"), rows)


def result_table(result: RunResult) -> str:
    """For backends that report only states and attempts."""
    rows = [(task_id, tr.state, tr.attempts) for task_id, tr in result.tasks.items()]
    return table(("task", "state", "attempts"), rows)


def history_table(runs: Sequence[dict[str, Any]]) -> str:
    rows = []
    for r in runs:
        counts = ", ".join(f"{n} {state}" for state, n in r["task_states"].items())
        rows.append((r["pipeline_id"], r["run_id"], r["state"], r["started_at"][:19], _elapsed(r), counts))
    return table(("pipeline", "run_id", "state", "started (UTC)", "duration", "tasks"), rows)


def _elapsed(run: dict[str, Any]) -> str:
    from datetime import datetime

    if not run.get("ended_at"):
        return "-"
    seconds = (datetime.fromisoformat(run["ended_at"]) - datetime.fromisoformat(run["started_at"])).total_seconds()
    return f"{seconds:.2f}s"
