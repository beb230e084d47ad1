"""Load + validate 1,000 YAML pipelines of 20 tasks each (target: under 2 s here).

Peer in the same run: parsing the same files with plain ``yaml.safe_load`` (libyaml ``CSafeLoader`` when available),
which checks nothing. The ratio says what positions, YAML 1.2 typing, duplicate-key detection and full validation
cost on top of bare parsing.

    .venv/bin/python -m bench.bench_load [--pipelines 1000] [--tasks 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from meta.authoring.load import load_paths

_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
RULES = ("all_success", "all_done", "none_failed", "one_failed", "all_success")


def pipeline_text(index: int, tasks: int) -> str:
    """A realistic pipeline: mixed action kinds, fan-in, per-task settings, params, SLA and alerts."""
    lines = [
        f"pipeline: bench_{index:04d}",
        f"description: benchmark pipeline {index}",
        "owner: data",
        "tags: [bench, generated]",
        'schedule: "0 1 * * *"',
        "timezone: Europe/Zurich",
        "start_date: 2024-01-01",
        "params: {country: {type: string, default: CH}, limit: 100}",
        "defaults: {retries: 2, retry_delay: 5m, timeout: 30m}",
        'sla: {finish_by: "09:00", max_duration: 2h}',
        "alerts: {on_failure: [slack:data-team]}",
        "tasks:",
    ]
    for t in range(tasks):
        kind = t % 4
        if kind == 0:
            action = f'shell: "python -m jobs.step_{t} --date {{{{ ds }}}}"'
        elif kind == 1:
            action = f'python: "jobs.steps:step_{t}", kwargs: {{n: {t}, mode: full}}'
        elif kind == 2:
            action = f'sql: {{conn: warehouse, statement: "insert into t_{t} select * from s_{t}"}}'
        else:
            action = "noop: true"
        ups = [f"t{u:02d}" for u in (t - 1, t - 2) if u >= 0]
        upstream = f", upstream: [{', '.join(ups)}]" if ups else ""
        lines.append(f"  t{t:02d}: {{{action}{upstream}, retries: {t % 3}, trigger_rule: {RULES[t % 5]}}}")
    return "\n".join(lines) + "\n"


def write_specs(root: Path, pipelines: int, tasks: int) -> list[Path]:
    paths = []
    for i in range(pipelines):
        path = root / f"p{i:04d}.yaml"
        path.write_text(pipeline_text(i, tasks), encoding="utf-8")
        paths.append(path)
    return paths


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds of ``repeat`` runs (CPU time is less disturbed by a busy machine)."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="meta-bench-load-") as tmp:
        root = Path(tmp)
        paths = write_specs(root, args.pipelines, args.tasks)

        def meta_load() -> None:
            loaded = load_paths([root])
            assert len(loaded) == args.pipelines and all(len(p.tasks) == args.tasks for p in loaded)

        def peer_parse() -> None:
            for path in paths:
                yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)

        meta_load()  # warm-up: imports, plugin discovery, pydantic schema build
        peer, peer_cpu = best_of(args.repeat, peer_parse)
        ours, ours_cpu = best_of(args.repeat, meta_load)
    n = args.pipelines
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load + validate {n} pipelines x {args.tasks} tasks (best of {args.repeat}; load average {load:.1f})")
    print(f"{'what':<44} {'wall s':>8} {'cpu s':>8} {'wall/pipeline':>14}")
    rows = [
        ("meta load_paths (parse + validate)", ours, ours_cpu),
        (f"peer: yaml.load {_SAFE_LOADER.__name__} (parse only)", peer, peer_cpu),
    ]
    for label, wall, cpu in rows:
        print(f"{label:<44} {wall:8.3f} {cpu:8.3f} {wall / n * 1000:11.3f} ms")
    verdict = "met" if ours < 2.0 else "MISSED"
    print(f"ratio meta / peer: {ours / peer:.2f}x wall, {ours_cpu / peer_cpu:.2f}x cpu   target < 2 s wall: {verdict}")
    return {"meta_s": ours, "peer_s": peer, "ratio": ours / peer, "meta_cpu_s": ours_cpu, "peer_cpu_s": peer_cpu}


if __name__ == "__main__":
    main()
