"""Local runner overhead vs a hand-written Prefect 3 flow, on the same 1,000-task fan-out/fan-in graph.

    .venv/bin/python -m bench.bench_runner [--tasks 1000] [--repeat 3] [--skip-prefect]

Graph: one start task, N-2 parallel no-op tasks, one join. meta runs it with its defaults (thread pool of CPU-count
workers, one log file per attempt, history in SQLite). Prefect runs the same graph as ``@task`` functions submitted
with ``wait_for`` inside a ``@flow``, against a temporary local server (ephemeral mode, PREFECT_HOME in a temp dir),
in a child process so its settings and imports do not touch this one. Times cover the run only (not imports or the
Prefect server start, which is printed separately); per-task figures divide by N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def noop() -> None:
    return None


def fan_pipeline(n: int):  # type: ignore[no-untyped-def]
    from meta.spec.model import Pipeline

    action = {"kind": "python", "callable": "bench.bench_runner:noop"}
    mids = [f"t{i:04d}" for i in range(n - 2)]
    tasks = [{"id": "start", "action": action}]
    tasks += [{"id": m, "action": action, "upstream": ["start"]} for m in mids]
    tasks.append({"id": "join", "action": action, "upstream": mids})
    return Pipeline.model_validate({"id": "bench_fan", "tasks": tasks})


def time_local(n: int, repeat: int) -> list[float]:
    from meta.builtin.local import LocalRunner

    pipeline = fan_pipeline(n)
    times = []
    with tempfile.TemporaryDirectory() as home:
        runner = LocalRunner(home=Path(home))
        for _ in range(repeat):
            started = time.perf_counter()
            outcome = runner.run(pipeline)
            times.append(time.perf_counter() - started)
            assert outcome.result.state == "success", outcome.result.state
            assert len(outcome.attempts) == n
    return times


def prefect_child(n: int, repeat: int) -> None:
    """Runs in a child process with PREFECT_* set: print {"startup": s, "runs": [s, ...]} as JSON."""
    started = time.perf_counter()
    from prefect import flow, task

    @task
    def prefect_noop() -> None:
        return None

    @flow
    def fan() -> None:
        start = prefect_noop.submit()
        mids = [prefect_noop.submit(wait_for=[start]) for _ in range(n - 2)]
        prefect_noop.submit(wait_for=mids).result()

    @flow
    def warmup() -> None:
        prefect_noop.submit().result()

    warmup()  # starts the temporary server and registers the task; not part of the measured runs
    startup = time.perf_counter() - started
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fan()
        runs.append(time.perf_counter() - t0)
    print(json.dumps({"startup": startup, "runs": runs}))


def time_prefect(n: int, repeat: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as prefect_home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env |= {
            "PREFECT_HOME": prefect_home,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
            # The temporary server needs more than the default 20 s to start on a busy 2-CPU machine.
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        }
        cmd = [sys.executable, "-m", "bench.bench_runner", "--prefect-child"]
        cmd += ["--tasks", str(n), "--repeat", str(repeat)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"prefect run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-prefect", action="store_true")
    parser.add_argument("--prefect-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prefect_child:
        prefect_child(args.tasks, args.repeat)
        return
    n = args.tasks
    local = time_local(n, args.repeat)
    best_local = min(local)
    rows = [("meta local runner", best_local, best_local / n * 1000)]
    prefect = None if args.skip_prefect else time_prefect(n, args.repeat)
    if prefect is not None:
        best_prefect = min(prefect["runs"])  # type: ignore[type-var]
        rows.append(("Prefect 3 flow (ephemeral server)", best_prefect, best_prefect / n * 1000))
    print(f"{n} no-op python tasks, fan-out/fan-in, best of {args.repeat} ({os.cpu_count()} CPUs)")
    print(f"{'runner':<36} {'run (s)':>9} {'per task (ms)':>14}")
    for name, total, per_task in rows:
        print(f"{name:<36} {total:>9.3f} {per_task:>14.3f}")
    print(f"meta local runs: {', '.join(f'{t:.3f}s' for t in local)}  (target: < 2 ms per task)")
    if prefect is not None:
        print(f"prefect runs: {', '.join(f'{t:.3f}s' for t in prefect['runs'])}; startup {prefect['startup']:.1f}s")  # type: ignore[union-attr]
        print(f"ratio: Prefect / meta local = {rows[1][1] / rows[0][1]:.1f}x")


if __name__ == "__main__":
    main()
