"""Instruction counts (valgrind callgrind) of meta's parse-time work in two checkouts, for regression checks.

    .venv/bin/python -m bench.instructions --base /path/to/older/checkout [--pipelines 50]

On a shared 2-core machine the wall and CPU times of the other benchmarks vary by 20-40% from run to run, too much
to see a 5% regression; callgrind counts instructions, which repeat to within about 1% whatever else runs (what
remains is Python's per-process hash seed). For each checkout it counts a process that only imports (n=0) and one
that also does the work three times (n=3); the difference is the work. Measured: the Airflow loader building DAGs
from meta-written JSON specs, and ``load_paths`` reading YAML specs. Both checkouts run in this environment's
interpreter, each first on PYTHONPATH.
Needs valgrind (Debian's package); takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.bench_airflow_parse import pipelines, write_loader, write_loader_yaml

REPO = Path(__file__).resolve().parents[1]

WORK = {
    "airflow loader, JSON specs": (
        "import airflow.sdk, airflow.providers.standard.operators.bash\n"
        "from meta_airflow.loader import load_dags\n"
        "for _ in range(int(sys.argv[2])):\n    load_dags(sys.argv[1])\n",
        "json",
    ),
    "load_paths, YAML specs": (
        "import yaml, pydantic\n"
        "try:\n    from meta.authoring.load import load_paths\n"
        "except ImportError:  # checkouts before the layered packages\n    from meta.load import load_paths\n"
        "for _ in range(int(sys.argv[2])):\n    load_paths([sys.argv[1]])\n",
        "yaml",
    ),
}


def count(tree: Path, script: Path, folder: Path, reps: int, home: Path) -> int:
    path = f"{tree}:{tree / 'adapters/airflow'}:{tree / 'adapters/prefect'}"
    env = {**os.environ, "PYTHONPATH": path, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, script, folder, str(reps)],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        check=True,
    )
    match = re.search(r"Collected\s*:\s*(\d+)", out.stderr)
    if match is None:
        raise RuntimeError(f"no callgrind total in: {out.stderr[-500:]}")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout (e.g. a git worktree)")
    parser.add_argument("--pipelines", type=int, default=50)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="bench_instructions_"))
    try:
        ps = pipelines(args.pipelines, 20)
        for kind, write in (("json", write_loader), ("yaml", write_loader_yaml)):
            (root / kind).mkdir()
            write(ps, root / kind)
        print(f"instructions of the work (3 repetitions, {args.pipelines} pipelines x 20 tasks), this checkout / base")
        for name, (body, kind) in WORK.items():
            script = root / f"work_{kind}.py"  # not json.py: it would shadow the json module
            script.write_text("import sys\n" + body, encoding="utf-8")
            folder = root / kind / "specs"
            trees = {"this": REPO, "base": args.base.resolve()}
            with ThreadPoolExecutor(max_workers=2) as pool:  # one valgrind per core
                runs = {
                    (label, reps): pool.submit(count, tree, script, folder, reps, root)
                    for label, tree in trees.items()
                    for reps in (0, 3)
                }
                work = {label: runs[label, 3].result() - runs[label, 0].result() for label in trees}
            print(f"{name:<28} {work['this']:>15,} / {work['base']:>15,} = {work['this'] / work['base']:.3f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
