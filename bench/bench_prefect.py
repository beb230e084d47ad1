"""A 200-task no-op pipeline on Prefect: the meta flow vs a hand-written Prefect flow with the same graph.

Both run in this process against the same Prefect server (PREFECT_API_URL if set, else one temporary server started
by Prefect's test harness), with the same thread pool size (16, meta's default). A warm-up run of each comes first;
then REPS runs of each, alternating which goes first. Prints the medians and the ratio meta / hand-written
(target <= 1.1).

    .venv/bin/python -m bench.bench_prefect [--reps N] [--tasks N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
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

    from meta.model import Pipeline

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


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): the server runs in another process, so the CPU figure is the
    client side - meta's driver plus Prefect's engine - and is far less sensitive to a busy machine than wall time."""
    started, cpu = time.perf_counter(), time.process_time()
    state = fn()
    elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu
    if not state.is_completed():
        raise SystemExit(f"benchmark flow did not complete: {state}")
    return elapsed, cpu_used


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
    with server:
        runs = {"meta": meta_flow(edges), "hand-written": hand_written_flow(edges)}
        for fn in runs.values():
            timed(fn)  # warm-up: imports, first API round trips
        times: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        for rep in range(args.reps):
            order = list(runs) if rep % 2 == 0 else list(reversed(runs))
            for name in order:
                wall, used = timed(runs[name])
                times[name].append(wall)
                cpu[name].append(used)
    print(f"{args.tasks}-task no-op pipeline on Prefect, {args.reps} runs each (wall seconds)")
    print(f"{'flow':<14}{'median':>9}{'min':>9}{'max':>9}  every run")
    for name, values in times.items():
        each = " ".join(f"{v:.2f}" for v in values)
        print(f"{name:<14}{statistics.median(values):>9.2f}{min(values):>9.2f}{max(values):>9.2f}  {each}")
    ratio = statistics.median(times["meta"]) / statistics.median(times["hand-written"])
    best = min(times["meta"]) / min(times["hand-written"])
    print(f"ratio meta / hand-written: {ratio:.2f} on medians, {best:.2f} on best runs (target <= 1.1)")
    print(f"{'client CPU':<14}" + "".join(f"{n}: {statistics.median(v):.2f}s  " for n, v in cpu.items()))
    cpu_ratio = statistics.median(cpu["meta"]) / statistics.median(cpu["hand-written"])
    print(f"ratio meta / hand-written on client CPU seconds (medians): {cpu_ratio:.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
