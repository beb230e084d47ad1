"""Dynamic mapping over 1,000 elements on every backend, each against its peer, in one run.

    .venv/bin/python -m bench.bench_mapping [--elements 1000] [--reps 3] [--only local prefect airflow]

The pipeline: ``source`` returns the list 0..N-1, ``inc`` is mapped over it (one instance per element, each returns
x + 1), ``total`` reduces the N results to their sum (checked). The same graph is run

* **local**: by meta's local runner (history, one log file per instance attempt) against a plain
  ``ThreadPoolExecutor.map`` of the same function with as many threads: the difference divided by N is the
  runner's overhead per mapped instance;
* **prefect**: meta's flow (``meta_prefect.to_flow``) against a hand-written flow using ``inc.map(source())``, both
  with a 16-thread ``ThreadPoolTaskRunner``, against one temporary Prefect server, in a child process; each run
  starts once the server has recorded the previous one (``bench_prefect.timed``), and the time until it has, and
  the task span by the server's timestamps, are printed beside the flow's wall time;
* **airflow**: the DAG meta builds (the loader) against a hand-written DAG using ``inc.expand(x=source())``, both
  with Airflow's own ``dag.test()`` in one throwaway AIRFLOW_HOME, in a child process.

Each backend alternates which side runs first, after one warm-up of each; medians and the ratio meta / peer are
printed (target <= 1.1 on Prefect and Airflow).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = "bench.bench_mapping"


def source(count: int) -> list[int]:
    return list(range(count))


def inc(x: int) -> int:
    return x + 1


def total(values: list[int]) -> int:
    return sum(values)


def expected(n: int) -> int:
    return n * (n + 1) // 2


def pipeline(n: int) -> Any:
    from meta.spec.model import Pipeline

    def py(task_id: str, fn: str, **fields: Any) -> dict[str, Any]:
        kwargs = fields.pop("kwargs", {})
        return {"id": task_id, "action": {"kind": "python", "callable": f"{HERE}:{fn}", "kwargs": kwargs}, **fields}

    return Pipeline.model_validate(
        {
            "id": "bench_mapping",
            "tasks": [
                py("source", "source", kwargs={"count": n}),
                py("inc", "inc", map={"x": "{{ tasks.source.result }}"}),
                py("total", "total", kwargs={"values": "{{ tasks.inc.result }}"}),
            ],
        }
    )


def alternate(reps: int, first: Callable[[], float], second: Callable[[], float]) -> tuple[list[float], list[float]]:
    """One warm-up of each, then ``reps`` timings of each, alternating which goes first."""
    first(), second()
    a: list[float] = []
    b: list[float] = []
    for rep in range(reps):
        if rep % 2 == 0:
            a.append(first())
            b.append(second())
        else:
            b.append(second())
            a.append(first())
    return a, b


def report(backend: str, meta_times: list[float], peer_times: list[float], peer: str, n: int) -> dict[str, Any]:
    meta_s, peer_s = statistics.median(meta_times), statistics.median(peer_times)
    out = {
        "backend": backend,
        "elements": n,
        "meta_s": round(meta_s, 3),
        "peer": peer,
        "peer_s": round(peer_s, 3),
        "ratio": round(meta_s / peer_s, 3),
        "overhead_per_instance_ms": round((meta_s - peer_s) / n * 1000, 3),
    }
    print(
        f"{backend:<8} meta {meta_s:8.3f} s   {peer} {peer_s:8.3f} s   ratio {out['ratio']:.3f}   "
        f"overhead per instance {out['overhead_per_instance_ms']:.3f} ms",
        flush=True,
    )
    return out


# -- local ---------------------------------------------------------------------------------------------------------


def bench_local(n: int, reps: int) -> dict[str, Any]:
    from meta.builtin.local import LocalRunner

    p = pipeline(n)
    workers = os.cpu_count() or 1

    with tempfile.TemporaryDirectory() as home:
        runner = LocalRunner(home=Path(home))

        def meta_run() -> float:
            started = time.perf_counter()
            outcome = runner.run(p)
            elapsed = time.perf_counter() - started
            assert str(outcome.result.state) == "success", outcome.result.to_json()
            reduced = next(a.result for a in outcome.attempts if a.task_id == "total")
            assert reduced == expected(n), reduced
            return elapsed

        def plain_threads() -> float:
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=workers) as pool:
                reduced = total(list(pool.map(inc, source(n))))
            assert reduced == expected(n)
            return time.perf_counter() - started

        meta_times, peer_times = alternate(reps, meta_run, plain_threads)
    return report("local", meta_times, peer_times, "ThreadPoolExecutor.map", n)


# -- prefect (child process: Prefect's settings and server stay out of this one) -------------------------------------


def prefect_child(n: int, reps: int) -> dict[str, Any]:
    from meta_prefect.flow import to_flow
    from prefect import flow, task
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect.testing.utilities import prefect_test_harness

    from bench.bench_prefect import timed

    meta_flow = to_flow(pipeline(n))

    @task(name="source", persist_result=False)
    def source_task(count: int) -> list[int]:
        return source(count)

    @task(name="inc", persist_result=False)
    def inc_task(x: int) -> int:
        return inc(x)

    @task(name="total", persist_result=False)
    def total_task(values: list[int]) -> int:
        return total(values)

    @flow(name="bench_mapping_hand_written", task_runner=ThreadPoolTaskRunner(max_workers=16), persist_result=False)
    def hand_written() -> int:
        numbers = source_task(n)
        return total_task(inc_task.map(numbers).result())

    # Each run waits until the server has recorded the previous one (bench_prefect.timed): a run started while the
    # server still writes the last run's 1,000 task-run events waits seconds for its database, whichever side it is.
    extra: dict[str, list[float]] = {"meta_recorded": [], "peer_recorded": [], "meta_span": [], "peer_span": []}

    def measured(side: str, fn: Callable[[], Any]) -> Callable[[], float]:
        def run() -> float:
            m = timed(fn, n + 2)
            extra[f"{side}_recorded"].append(m.recorded)
            extra[f"{side}_span"].append(m.span)
            return m.wall

        return run

    def peer_flow() -> Any:
        state = hand_written(return_state=True)
        assert state.result() == expected(n), state
        return state

    with prefect_test_harness(server_startup_timeout=120):
        meta_times, peer_times = alternate(
            reps, measured("meta", lambda: meta_flow(return_state=True)), measured("peer", peer_flow)
        )
    return {"meta": meta_times, "peer": peer_times, **{k: v[1:] for k, v in extra.items()}}  # without the warm-ups


# -- airflow (child process in a throwaway AIRFLOW_HOME) -------------------------------------------------------------

HAND_WRITTEN_DAG = '''
"""The hand-written peer: TaskFlow with expand(), as an Airflow user writes it."""
import pendulum
from airflow.sdk import dag, task

from bench.bench_mapping import inc, source, total, expected


@dag(dag_id="bench_mapping_hand_written", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def hand_written():
    @task
    def source_task(count: int) -> list[int]:
        return source(count)

    @task
    def inc_task(x: int) -> int:
        return inc(x)

    @task
    def total_task(values) -> int:
        value = total(list(values))
        assert value == expected({n}), value
        return value

    total_task(inc_task.expand(x=source_task({n})))


hand_written()
'''


def airflow_child(n: int, reps: int) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"], load_op_links=False)
    assert not bag.import_errors, bag.import_errors
    dags = {"meta": bag.dags["bench_mapping"], "peer": bag.dags["bench_mapping_hand_written"]}

    def timed(which: str) -> Callable[[], float]:
        def run() -> float:
            started = time.perf_counter()
            dags[which].test()
            elapsed = time.perf_counter() - started
            with create_session() as session:
                last = (
                    session.query(DagRun).filter(DagRun.dag_id == dags[which].dag_id).order_by(DagRun.id.desc()).first()
                )
                assert last is not None and str(last.state) == "success", (which, last and last.state)
            return elapsed

        return run

    meta_times, peer_times = alternate(reps, timed("meta"), timed("peer"))
    return {"meta": meta_times, "peer": peer_times}


def bench_airflow(n: int, reps: int) -> dict[str, Any]:
    from meta_airflow.remote import write_spec
    from meta_airflow.run import _env, throwaway_home

    home = throwaway_home()
    write_spec(home / "specs", pipeline(n))
    (home / "dags" / "bench_mapping_hand_written.py").write_text(
        textwrap.dedent(HAND_WRITTEN_DAG).replace("{n}", str(n)), encoding="utf-8"
    )
    env = _env(home) | {"AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1024, n))}
    data = _child("airflow", n, reps, env)
    return report("airflow", data["meta"], data["peer"], "hand-written expand() DAG", n)


def bench_prefect(n: int, reps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as prefect_home:
        env = {**os.environ, "PREFECT_HOME": prefect_home}
        env.pop("PREFECT_API_URL", None)
        data = _child("prefect", n, reps, env)
    out = report("prefect", data["meta"], data["peer"], "hand-written .map() flow", n)
    for figure in ("recorded", "span"):
        meta_s, peer_s = statistics.median(data[f"meta_{figure}"]), statistics.median(data[f"peer_{figure}"])
        out[f"{figure}_ratio"] = round(meta_s / peer_s, 3)
        label = "until the server recorded it" if figure == "recorded" else "task span (server timestamps)"
        print(f"         {label}: meta {meta_s:.3f} s, peer {peer_s:.3f} s, ratio {meta_s / peer_s:.3f}", flush=True)
    return out


def _child(which: str, n: int, reps: int, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", HERE, "--child", which, "--elements", str(n), "--reps", str(reps)],
        env={**env, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))},
        capture_output=True,
        text=True,
        check=False,
    )
    marks = [line for line in proc.stdout.splitlines() if line.startswith("BENCH ")]
    if proc.returncode != 0 or not marks:
        raise SystemExit(f"{which} child failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(marks[-1][len("BENCH ") :])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=["local", "prefect", "airflow"])
    parser.add_argument("--child", choices=["prefect", "airflow"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        data = (prefect_child if args.child == "prefect" else airflow_child)(args.elements, args.reps)
        print("BENCH " + json.dumps(data), flush=True)
        return 0
    print(f"mapping over {args.elements} elements, {args.reps} timed runs of each side after a warm-up", flush=True)
    results = []
    for backend in args.only:
        results.append(
            {"local": bench_local, "prefect": bench_prefect, "airflow": bench_airflow}[backend](
                args.elements, args.reps
            )
        )
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
