"""``meta run --backend airflow``: run one pipeline through Airflow itself and return meta's RunResult.

With ``META_AIRFLOW_URL`` set (plus ``META_AIRFLOW_USER`` / ``META_AIRFLOW_PASSWORD``) the pipeline is deployed into
that server's loader folder (``META_AIRFLOW_SPECS_DIR``), triggered and polled through REST. Otherwise it runs with
``dag.test()`` in a throwaway AIRFLOW_HOME (migrated once per process, ~10 s).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from meta import MetaError, Pipeline, ProgressCallback, RunRequest, RunResult, RunState, run_state


def run_pipeline(pipeline: Pipeline, request: RunRequest, progress: ProgressCallback | None = None) -> RunResult:
    """The target's ``run`` (AirflowTarget.run has checked the pipeline is supported)."""
    request = request.for_pipeline(pipeline)
    if os.environ.get("META_AIRFLOW_URL"):
        return run_remote(pipeline, request, progress)
    if request.run_id_given:
        # dag.test() names the run itself (DagRun.generate_run_id: manual__<logical date>); refuse rather than
        # report a run under a different id than the one asked for.
        raise MetaError(
            f"run id {request.run_id!r}: Airflow's dag.test() names its own run (manual__<logical date>); "
            "drop --run-id, or run on an Airflow server (set META_AIRFLOW_URL and META_AIRFLOW_SPECS_DIR)"
        )
    return run_dag_test(pipeline, request, progress)


def run_remote(pipeline: Pipeline, request: RunRequest, progress: ProgressCallback | None) -> RunResult:
    from meta_airflow.client import AirflowClient, PasswordTokenAuth
    from meta_airflow.remote import trigger, wait_for_dags, wait_for_runs, write_spec

    url = os.environ["META_AIRFLOW_URL"]
    specs_dir = os.environ.get("META_AIRFLOW_SPECS_DIR")
    if not specs_dir:
        raise MetaError(
            "META_AIRFLOW_URL is set but META_AIRFLOW_SPECS_DIR is not: expected the folder the Airflow "
            "loader (dags/meta_loader.py) reads specs from"
        )
    user = os.environ.get("META_AIRFLOW_USER")
    auth = PasswordTokenAuth(url, user, os.environ.get("META_AIRFLOW_PASSWORD", "")) if user else None
    write_spec(Path(specs_dir), pipeline)
    # Without a given run id, a fresh one: a server keeps its runs, so a second run must not collide with the first.
    run_id = request.run_id if request.run_id_given else f"meta_{uuid.uuid4().hex[:16]}"
    with AirflowClient(url, auth=auth) as client:
        wait_for_dags(client, [pipeline.id])
        trigger(client, pipeline, request.params, run_id, request.logical_date)
        if progress:
            progress(f"triggered {pipeline.id} run {run_id} on {url}")
        runs = {pipeline.id: run_id}
        return wait_for_runs(client, runs, 24 * 3600, progress, {pipeline.id: pipeline})[pipeline.id]


_HOME: Path | None = None


def throwaway_home() -> Path:
    """An AIRFLOW_HOME with a migrated SQLite database, made once per process and removed at exit."""
    global _HOME
    if _HOME is None:
        import atexit

        home = Path(tempfile.mkdtemp(prefix="meta_airflow_"))
        atexit.register(shutil.rmtree, home, True)
        for sub in ("dags", "plugins", "specs"):
            (home / sub).mkdir()
        from meta_airflow.deadline import PLUGIN_SOURCE
        from meta_airflow.loader import LOADER_SOURCE

        (home / "dags" / "meta_loader.py").write_text(LOADER_SOURCE, encoding="utf-8")
        (home / "plugins" / "meta_deadline.py").write_text(PLUGIN_SOURCE, encoding="utf-8")
        result = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=_env(home), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise MetaError(f"airflow db migrate failed in {home}: {result.stderr[-2000:]}")
        _HOME = home
    return _HOME


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "META_SPECS_DIR": str(home / "specs"),
            "META_LOADER_STRICT": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")])),
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        }
    )
    return env


def run_dag_test(pipeline: Pipeline, request: RunRequest, progress: ProgressCallback | None) -> RunResult:
    from meta_airflow.dagtest import RESULT_MARK
    from meta_airflow.remote import mapped_tasks, task_results, write_spec

    home = throwaway_home()
    for old in (home / "specs").glob("*.json"):
        old.unlink()  # one pipeline per dag.test(): the loader then builds only this DAG
    write_spec(home / "specs", pipeline)
    child_request = {
        "pipeline_id": pipeline.id,
        "dags_folder": str(home / "dags"),
        "params": dict(request.params),
        "logical_date": request.logical_date.isoformat(),
    }
    request_path = home / f"request_{uuid.uuid4().hex[:8]}.json"
    request_path.write_text(json.dumps(child_request), encoding="utf-8")
    if progress:
        progress(f"running {pipeline.id} with Airflow dag.test() in {home}")
    proc = subprocess.run(
        [sys.executable, "-m", "meta_airflow.dagtest", str(request_path)],
        env=_env(home),
        capture_output=True,
        text=True,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if not lines:
        raise MetaError(
            f"Airflow dag.test() of pipeline {pipeline.id!r} gave no result (exit {proc.returncode}):\n"
            + (proc.stderr or proc.stdout)[-3000:]
        )
    data = json.loads(lines[-1][len(RESULT_MARK) :])
    tasks = task_results(data["task_instances"], mapped_tasks(pipeline))
    state = data["state"]
    if state not in (RunState.SUCCESS, RunState.FAILED):
        # dag.test() of Airflow 3.3.2 raises on DAGs with deadline= before it stores the final run state; every
        # task has finished by then, so apply Airflow's own leaf rule (DagRun.update_state) to the stored states.
        state = run_state(tasks[leaf].state for leaf in pipeline.leaves() if leaf in tasks)
    return RunResult(
        pipeline=pipeline.id,
        state=RunState(state),
        tasks=tasks,
        run_id=data["run_id"],
        backend="airflow",
    )
