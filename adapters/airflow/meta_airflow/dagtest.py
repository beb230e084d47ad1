"""``python -m meta_airflow.dagtest REQUEST.json``: one pipeline run through Airflow's own ``dag.test()``.

Runs in a child process because Airflow reads AIRFLOW_HOME when it is first imported; the parent (run.py) sets up a
throwaway AIRFLOW_HOME with a migrated database and the loader in its dags folder. Prints the run's state and its
task instances (a mapped task's one per map index) as JSON on the last stdout line. Airflow 3.3.2's dag.test()
raises after the run on DAGs with ``deadline=``: the run and its task states are already stored by then, so the
states are read from the database either way.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path

RESULT_MARK = "META_RESULT "


def main(request_path: str) -> int:
    request = json.loads(Path(request_path).read_text(encoding="utf-8"))
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    dag_id = request["pipeline_id"]
    bag = DagBag(dag_folder=request["dags_folder"], load_op_links=False)
    if dag_id not in bag.dags:
        print(f"pipeline {dag_id!r} did not load in Airflow: {bag.import_errors}", file=sys.stderr)
        return 2
    dag = bag.dags[dag_id]
    logical_date = datetime.fromisoformat(request["logical_date"])
    try:
        dag.test(logical_date=logical_date, run_conf=request["params"])
    except Exception:
        logging.getLogger("meta").exception("dag.test() raised after the run; reading states from the database")
    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).all()
        if not runs:
            print(f"dag.test() created no run for {dag_id!r}", file=sys.stderr)
            return 3
        dr = runs[0]
        task_instances = [
            {
                "task_id": ti.task_id,
                "map_index": ti.map_index,
                "state": ti.state and str(ti.state),
                "try_number": ti.try_number,
            }
            for ti in dr.get_task_instances(session=session)
        ]
        out = {"run_id": dr.run_id, "state": str(dr.state), "task_instances": task_instances}
    print(RESULT_MARK + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
