"""``make demo``: run the marketing-ROI example on the embedded runner and print the run table.

Everything is local: DuckDB for the warehouse, SQLite for the run history, both under the state directory
(``$META_HOME`` or ``./.meta``). Usage: ``python -m dags.demo [COUNTRY]`` (CH, DE, FR or AT; default CH).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

DAGS = Path(__file__).resolve().parent
SPEC = DAGS / "marketing_roi.yaml"


def main(argv: list[str]) -> int:
    # Like Airflow's dags folder: the pipeline's callables (jobs.marketing_roi:...) import from here.
    sys.path.insert(0, str(DAGS))
    from meta import LocalRunner, RunRequest, get_target, load_file, run_table, state_dir

    (pipeline,) = load_file(SPEC)
    params = {"country": argv[0]} if argv else {}
    get_target("local").ensure_supported(pipeline)
    print(f"running {pipeline.id} from {SPEC.relative_to(Path.cwd()) if SPEC.is_relative_to(Path.cwd()) else SPEC}")
    print(f"state directory: {state_dir().resolve()}\n")
    started = time.monotonic()
    request = RunRequest.build(pipeline, params=params)
    outcome = LocalRunner().run(pipeline, request, progress=lambda line: print(f"  {line}", flush=True))
    result = outcome.result
    print(f"\n{run_table(outcome)}\n")
    print(f"run {result.run_id}: {result.state} in {time.monotonic() - started:.1f}s")
    print(f"logs:      {outcome.log_dir}")
    print(f"warehouse: {state_dir().resolve() / 'warehouse.duckdb'}")
    dashboard = (
        Path(outcome.context.params["data_dir"])
        / "dashboard"
        / f"marketing_roi_{outcome.context.params['country']}.html"
    )
    if dashboard.exists():
        print(f"dashboard: {dashboard.resolve()}")
    print("history:   .venv/bin/meta runs")
    return 0 if result.state == "success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
