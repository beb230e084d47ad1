"""A 200-task no-op pipeline on Prefect: the meta flow vs a hand-written Prefect flow with the same graph.

Both run in this process against the same Prefect server (PREFECT_API_URL if set, else one temporary server started
by Prefect's test harness), with the same thread pool size (16, meta's default). A warm-up run of each comes first;
then REPS runs of each, alternating which goes first, each starting once the server has recorded the previous one.
Prints the medians of four figures (flow wall time, task span, time until recorded, client CPU) and the ratio
meta / hand-written of each; the target (<= 1.1) is on the flow's wall time.

    .venv/bin/python -m bench.bench_prefect [--reps N] [--tasks N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

WIDTH = 10  # tasks per layer; each task depends on two tasks of the layer before


def graph(n: int) -> dict[str, list[str]]:
    """Task id -> upstream ids: layers of WIDTH tasks, each after two tasks of the previous layer."""
    out: dict[str, list[str]] = {}
    for i in range(n):
        layer, pos = divmod(i, WIDTH)
        ups = (
            []
            if layer == 0
            else sorted({f"t{(layer - 1) * WIDTH + pos}", f"t{(layer - 1) * WIDTH + (pos + 1) % WIDTH}"})
        )
        out[f"t{i}"] = ups
    return out


def meta_flow(edges: dict[str, list[str]]) -> Callable[[], Any]:
    from meta_prefect.flow import to_flow

    from meta.spec.model import Pipeline

    pipeline = Pipeline.model_validate(
        {
            "id": "bench_meta",
            "tasks": [{"id": t, "action": {"kind": "noop"}, "upstream": ups} for t, ups in edges.items()],
        }
    )
    flow = to_flow(pipeline)
    return lambda: flow(return_state=True)


def hand_written_flow(edges: dict[str, list[str]]) -> Callable[[], Any]:
    from prefect import flow, task
    from prefect.task_runners import ThreadPoolTaskRunner

    @task(persist_result=False)
    def noop() -> None:
        return None

    @flow(name="bench_hand_written", task_runner=ThreadPoolTaskRunner(max_workers=16), persist_result=False)
    def hand_written() -> None:
        futures: dict[str, Any] = {}
        for task_id, ups in edges.items():  # already in topological order
            futures[task_id] = noop.with_options(name=task_id, task_run_name=task_id).submit(
                wait_for=[futures[u] for u in ups]
            )
        for future in futures.values():
            future.wait()

    return lambda: hand_written(return_state=True)


@dataclass
class Measured:
    wall: float  # the flow call, as the caller sees it
    recorded: float  # from the call until the server has recorded every task run as final
    span: float  # first task run start to last task run end, by the server's timestamps
    cpu: float  # CPU seconds of this process


def timed(fn: Callable[[], Any], tasks: int) -> Measured:
    """Run one flow and wait until the server has caught up.

    The server runs in another process, so the CPU figure is the client side - meta's driver plus Prefect's
    engine. Prefect 3 reports task-run states as events that the server records in the background; a flow run
    that starts while the previous run's events are still being recorded waits seconds for the database (measured:
    a 200-task run's first task started 5-7 s late, against 0.1 s on an idle server). So every run waits until the
    server has caught up before the next starts, and that catch-up time is reported too. The flow's own wall time
    comes in near-whole seconds (Prefect's flow heartbeat thread sleeps in 1 s steps and the engine joins it when
    the run ends), so the task span from the server's timestamps is the finer figure."""
    started, cpu = time.perf_counter(), time.process_time()
    state = fn()
    elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu
    if not state.is_completed():
        raise SystemExit(f"benchmark flow did not complete: {state}")
    span = wait_until_recorded(state.state_details.flow_run_id, tasks)
    return Measured(wall=elapsed, recorded=time.perf_counter() - started, span=span, cpu=cpu_used)


def wait_until_recorded(flow_run_id: Any, tasks: int, timeout: float = 120.0) -> float:
    """Poll the server until it holds `tasks` final task runs of the flow run; return their span in seconds."""
    from meta_prefect.client import PrefectClient
    from prefect.settings import PREFECT_API_URL

    final = {
        "flow_runs": {"id": {"any_": [str(flow_run_id)]}},
        "task_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED", "CANCELLED"]}}},
    }
    deadline = time.monotonic() + timeout
    client = PrefectClient.connect(str(PREFECT_API_URL.value()))
    try:
        # A count is cheap for the server, which is still busy recording while this polls.
        while client.request("POST", "task_runs/count", final) < tasks:
            if time.monotonic() > deadline:
                raise SystemExit(f"the server had not recorded {tasks} final task runs after {timeout:.0f} s")
            time.sleep(0.05)
        runs = client.task_runs(str(flow_run_id))
    finally:
        client.close()
    first = min(datetime.fromisoformat(r["start_time"]) for r in runs)
    last = max(datetime.fromisoformat(r["end_time"]) for r in runs)
    return (last - first).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("META_HOME", tempfile.mkdtemp(prefix="bench_prefect_"))
    from prefect.testing.utilities import prefect_test_harness

    server = contextlib.nullcontext() if os.environ.get("PREFECT_API_URL") else prefect_test_harness(120)
    edges = graph(args.tasks)
    figures = {"flow wall": "wall", "task span": "span", "until recorded": "recorded", "client CPU": "cpu"}
    measured: dict[str, dict[str, list[float]]] = {figure: {"meta": [], "hand-written": []} for figure in figures}
    with server:
        runs = {"meta": meta_flow(edges), "hand-written": hand_written_flow(edges)}
        for fn in runs.values():
            timed(fn, args.tasks)  # warm-up: imports, first API round trips
        for rep in range(args.reps):
            order = list(runs) if rep % 2 == 0 else list(reversed(runs))
            for name in order:
                run = timed(runs[name], args.tasks)
                print(f"  rep {rep + 1}/{args.reps} {name}: {run.wall:.2f} s", file=sys.stderr, flush=True)
                for figure, attribute in figures.items():
                    measured[figure][name].append(getattr(run, attribute))
    print(f"{args.tasks}-task no-op pipeline on Prefect, {args.reps} runs each (seconds)")
    print(f"{'figure':<16}{'flow':<14}{'median':>8}{'min':>8}{'max':>8}  every run")
    for figure, by_flow in measured.items():
        for name, values in by_flow.items():
            each = " ".join(f"{v:.2f}" for v in values)
            print(
                f"{figure:<16}{name:<14}{statistics.median(values):>8.2f}{min(values):>8.2f}{max(values):>8.2f}  {each}"
            )
    for figure, by_flow in measured.items():
        ratio = statistics.median(by_flow["meta"]) / statistics.median(by_flow["hand-written"])
        best = min(by_flow["meta"]) / min(by_flow["hand-written"])
        verdict = "met" if ratio <= 1.1 else "NOT met"
        target = f" (target <= 1.1 on medians: {verdict})" if figure == "flow wall" else ""
        print(f"ratio meta / hand-written, {figure}: {ratio:.2f} on medians, {best:.2f} on best runs{target}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
