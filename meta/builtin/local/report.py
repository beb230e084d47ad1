"""Plain-text tables for people: the run table (``meta run``, ``make demo``) and the run history (``meta runs``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from meta.builtin.local.engine import RunOutcome
from meta.spec.results import RunResult, TaskResult


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_table(outcome: RunOutcome) -> str:
    """Task, state, attempts, duration of the last attempt (and, when a task is mapped, its instances' states);
    tasks in definition order."""
    mapped = any(tr.instances is not None for tr in outcome.result.tasks.values())
    rows = []
    for task_id, tr in outcome.result.tasks.items():
        duration = outcome.last_duration(task_id)
        row: tuple[Any, ...] = (task_id, tr.state, tr.attempts, f"{duration:.2f}s" if duration is not None else "-")
        rows.append((*row, instances_summary(tr)) if mapped else row)
    headers = ("task", "state", "attempts", "duration")
    return table((*headers, "mapped instances") if mapped else headers, rows)


def result_table(result: RunResult) -> str:
    """For backends that report only states and attempts."""
    mapped = any(tr.instances is not None for tr in result.tasks.values())
    rows = [
        (task_id, tr.state, tr.attempts, *((instances_summary(tr),) if mapped else ()))
        for task_id, tr in result.tasks.items()
    ]
    return table(("task", "state", "attempts", *(("mapped instances",) if mapped else ())), rows)


def instances_summary(task: TaskResult) -> str:
    """``3: 2 success, 1 failed`` for a mapped task, ``0`` when it never expanded, "" when it is not mapped."""
    if task.instances is None:
        return ""
    counts = Counter(str(i.state) for i in task.instances.values())
    detail = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return f"{len(task.instances)}" + (f": {detail}" if detail else "")


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
