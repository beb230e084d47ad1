"""Airflow parse time of 200 pipelines x 20 tasks, five ways, measured the same way in one run.

    .venv/bin/python -m bench.bench_airflow_parse [--pipelines 200] [--tasks 20] [--repeat 3]

1. hand-written Airflow DAG files (what a person would write: BashOperator, default_args, >>),
2. meta codegen files (`meta compile --target airflow`),
3. the meta loader (dags/meta_loader.py + one JSON spec per pipeline, what `meta deploy` writes),
4. the meta loader reading YAML specs (what a person writes and drops into the specs folder),
5. dag-factory 1.1.0 (one YAML file per pipeline + its loader file).

Each way is parsed by a fresh Python process that fills Airflow's own DagBag from the folder; the time is the DagBag
fill (imports of Airflow itself excluded, identical for all five). The machine is shared, so the table shows the CPU
time of the parsing process (best of --repeat runs, the least disturbed by other load) and, for reference, the
median wall time. Targets (issue 3):
codegen <= 1.1x hand-written; loader <= 1.5x hand-written and faster than dag-factory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from meta.spec.model import Pipeline

REPO = Path(__file__).resolve().parents[1]

PARSE = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
import airflow.providers.standard.operators.bash, airflow.sdk  # warm imports shared by all ways
start, cpu = time.perf_counter(), time.process_time()
bag = DagBag(dag_folder=sys.argv[1], safe_mode=False, load_op_links=False)
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
tasks = sum(len(d.tasks) for d in bag.dags.values())
print(json.dumps({"seconds": elapsed, "cpu": cpu, "dags": len(bag.dags), "tasks": tasks,
                  "errors": list(bag.import_errors)}))
"""


def pipelines(n: int, tasks: int) -> list[Pipeline]:
    out = []
    for i in range(n):
        steps = []
        for j in range(tasks):
            step: dict = {"id": f"step_{j}", "action": {"kind": "shell", "command": f"echo pipeline {i} step {j}"}}
            if j:
                step["upstream"] = [f"step_{j - 1}"] + ([f"step_{j - 2}"] if j > 1 and j % 5 == 0 else [])
            if j % 4 == 3:
                step["retries"] = 3
                step["timeout"] = "10m"
            steps.append(step)
        out.append(
            Pipeline.model_validate(
                {
                    "id": f"bench_{i:03d}",
                    "owner": "data",
                    "tags": ["bench"],
                    "schedule": {"kind": "cron", "cron": "0 3 * * *"},
                    "start_date": "2024-01-01T00:00:00",
                    "defaults": {"retries": 1, "retry_delay": "5m"},
                    "tasks": steps,
                }
            )
        )
    return out


def write_handwritten(ps: list[Pipeline], folder: Path) -> None:
    for p in ps:
        lines = [
            "from datetime import timedelta",
            "",
            "import pendulum",
            "from airflow.providers.standard.operators.bash import BashOperator",
            "from airflow.sdk import DAG",
            "",
            "with DAG(",
            f"    dag_id={p.id!r},",
            f"    schedule={p.schedule.cron!r},",  # type: ignore[union-attr]
            "    start_date=pendulum.datetime(2024, 1, 1, tz='UTC'),",
            "    catchup=False,",
            "    tags=['bench'],",
            "    default_args={'owner': 'data', 'retries': 1, 'retry_delay': timedelta(minutes=5)},",
            ") as dag:",
        ]
        for t in p.tasks:
            extra = ", retries=3, execution_timeout=timedelta(minutes=10)" if t.retries else ""
            lines.append(f"    {t.id} = BashOperator(task_id={t.id!r}, bash_command={t.action.command!r}{extra})")  # type: ignore[union-attr]
        for t in p.tasks:
            for up in t.upstream:
                lines.append(f"    {up} >> {t.id}")
        (folder / f"{p.id}.py").write_text("\n".join(lines) + "\n")


def write_codegen(ps: list[Pipeline], folder: Path) -> None:
    from meta_airflow.codegen import write_dag_files

    write_dag_files(ps, folder)


def write_loader(ps: list[Pipeline], folder: Path) -> None:
    from meta_airflow.loader import LOADER_SOURCE
    from meta_airflow.remote import write_spec

    (folder / "meta_loader.py").write_text(LOADER_SOURCE)
    for p in ps:
        write_spec(folder / "specs", p)


def write_loader_yaml(ps: list[Pipeline], folder: Path) -> None:
    from meta_airflow.loader import LOADER_SOURCE

    from meta.authoring.yaml_writer import pipeline_to_yaml

    (folder / "meta_loader.py").write_text(LOADER_SOURCE)
    (folder / "specs").mkdir()
    for p in ps:
        (folder / "specs" / f"{p.id}.yaml").write_text(pipeline_to_yaml(p))


def write_dag_factory(ps: list[Pipeline], folder: Path) -> None:
    (folder / "dag_factory_loader.py").write_text(
        "# airflow DAG loader for dag-factory\n"
        "from pathlib import Path\n\n"
        "from dagfactory import load_yaml_dags\n\n"
        "load_yaml_dags(globals_dict=globals(), dags_folder=str(Path(__file__).parent / 'configs'))\n"
    )
    (folder / "configs").mkdir()
    for p in ps:
        tasks = {}
        for t in p.tasks:
            task: dict = {
                "operator": "airflow.providers.standard.operators.bash.BashOperator",
                "bash_command": t.action.command,
            }  # type: ignore[union-attr]
            if t.upstream:
                task["dependencies"] = list(t.upstream)
            if t.retries:
                task["retries"] = 3
                task["execution_timeout"] = {"__type__": "datetime.timedelta", "minutes": 10}
            tasks[t.id] = task
        config = {
            p.id: {
                "default_args": {
                    "owner": "data",
                    "retries": 1,
                    "retry_delay": {"__type__": "datetime.timedelta", "minutes": 5},
                    "start_date": "2024-01-01",
                },
                "schedule": "0 3 * * *",
                "catchup": False,
                "tags": ["bench"],
                "tasks": tasks,
            }
        }
        (folder / "configs" / f"{p.id}.yml").write_text(yaml.safe_dump(config, sort_keys=False))


WAYS = {
    "hand-written": write_handwritten,
    "meta codegen": write_codegen,
    "meta loader": write_loader,
    "loader (YAML)": write_loader_yaml,
    "dag-factory": write_dag_factory,
}


def parse(folder: Path, home: Path, specs: Path | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
            "AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY": "False",
            "DO_NOT_TRACK": "1",
            "SCARF_NO_ANALYTICS": "1",
            "META_LOADER_STRICT": "1",
        }
    )
    if specs is not None:
        env["META_SPECS_DIR"] = str(specs)
    proc = subprocess.run([sys.executable, "-c", PARSE, str(folder)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pipelines", type=int, default=200)
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    ps = pipelines(args.pipelines, args.tasks)
    root = Path(tempfile.mkdtemp(prefix="bench_airflow_parse_"))
    try:
        results: dict[str, list[float]] = {}
        walls: dict[str, list[float]] = {}
        for name, write in WAYS.items():
            folder = root / name.replace(" ", "_")
            folder.mkdir()
            write(ps, folder)
            results[name] = []
            walls[name] = []
        # Interleave the ways so machine load drifts hit all of them alike.
        for _ in range(args.repeat):
            for name in WAYS:
                folder = root / name.replace(" ", "_")
                specs = folder / "specs" if name in ("meta loader", "loader (YAML)") else None
                out = parse(folder, root / "home", specs)
                if out["errors"] or out["dags"] != args.pipelines or out["tasks"] != args.pipelines * args.tasks:
                    raise RuntimeError(f"{name}: parsed {out}; expected {args.pipelines} DAGs without errors")
                results[name].append(out["cpu"])
                walls[name].append(out["seconds"])
        base, base_wall = min(results["hand-written"]), statistics.median(walls["hand-written"])
        print(
            f"Airflow DagBag parse of {args.pipelines} pipelines x {args.tasks} tasks ({args.repeat} runs each, "
            f"fresh process each, load average {os.getloadavg()[0]:.1f})"
        )
        print(f"{'way':<14} {'cpu s (best)':>12} {'ratio':>7} {'wall s (median)':>16} {'ratio':>7}")
        for name in WAYS:
            cpu, wall = min(results[name]), statistics.median(walls[name])
            print(f"{name:<14} {cpu:>12.2f} {cpu / base:>6.2f}x {wall:>16.2f} {wall / base_wall:>6.2f}x")
        factory = min(results["dag-factory"])
        for name in ("meta loader", "loader (YAML)"):
            print(f"{name} vs dag-factory (cpu): {min(results[name]) / factory:.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
