"""The embedded runner end to end: real bash processes, real forks, real SQLite and DuckDB files."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from meta.builtin.local import LocalRunner, RunOutcome
from meta.builtin.local.state import History
from meta.plugins.manager import get_target
from meta.semantics.request import RunRequest
from meta.semantics.retries import delay_before_retry, retry_jitter_key
from meta.spec.errors import CompileError, TaskSkipped, ValidationFailed
from meta.spec.model import Pipeline

HERE = "tests.unit.test_runner"
LOGICAL = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


# -- callables used by the pipelines below ---------------------------------------------------------------------


def noop() -> None:
    return None


def shout(word: str) -> str:
    print(f"shouting {word}")
    return word.upper()


def fail(message: str = "boom") -> None:
    raise RuntimeError(message)


def skip_me() -> None:
    raise TaskSkipped("nothing to do today")


def write_context(out: str, ds: str, params: dict, run_id: str, logical_date: datetime) -> None:
    Path(out).write_text(json.dumps({"ds": ds, "params": params, "run_id": run_id, "ld": logical_date.isoformat()}))


def write_all_context(out: str, **context: Any) -> None:
    Path(out).write_text(json.dumps(sorted(context)))


def pick(which: Any) -> Any:
    return which


def sleep_then_print(seconds: float, word: str) -> None:
    time.sleep(seconds)
    print(f"word={word}")


def spawn_and_hang(pid_file: str) -> None:
    import subprocess

    child = subprocess.Popen(["sleep", "300"])
    Path(pid_file).write_text(str(child.pid))
    time.sleep(300)


def fail_until(marker: str, times: int) -> None:
    path = Path(marker)
    count = int(path.read_text()) if path.exists() else 0
    path.write_text(str(count + 1))
    if count < times:
        raise RuntimeError(f"attempt {count + 1} fails on purpose")


# -- helpers ---------------------------------------------------------------------------------------------------


def py(task_id: str, func: str, upstream: tuple[str, ...] = (), kwargs: dict | None = None, **fields: Any) -> dict:
    action = {"kind": "python", "callable": f"{HERE}:{func}", "kwargs": kwargs or {}}
    return {"id": task_id, "action": action, "upstream": upstream, **fields}


def sh(task_id: str, command: str, upstream: tuple[str, ...] = (), **fields: Any) -> dict:
    return {"id": task_id, "action": {"kind": "shell", "command": command}, "upstream": upstream, **fields}


def make(tasks: list[dict], **fields: Any) -> Pipeline:
    return Pipeline.model_validate({"id": fields.pop("id", "p"), "tasks": tasks, **fields})


def run(pipeline: Pipeline, home: Path, **kwargs: Any) -> RunOutcome:
    lines: list[str] = []
    runner = LocalRunner(home=home, parallelism=kwargs.pop("parallelism", 4))
    request = RunRequest.build(pipeline, logical_date=kwargs.pop("logical_date", LOGICAL), **kwargs)
    outcome = runner.run(pipeline, request, progress=lines.append)
    outcome.progress_lines = lines  # type: ignore[attr-defined]
    return outcome


def states(outcome: RunOutcome) -> dict[str, str]:
    return outcome.result.states()


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie nobody reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


# -- basics ----------------------------------------------------------------------------------------------------


def test_linear_success_and_run_context(meta_home: Path) -> None:
    p = make([py("a", "noop"), py("b", "shout", ("a",), {"word": "{{ ds }}"})])
    outcome = run(p, meta_home)
    assert outcome.result.to_json() == {
        "pipeline": "p",
        "state": "success",
        "tasks": {"a": {"state": "success", "attempts": 1}, "b": {"state": "success", "attempts": 1}},
        "run_id": "manual__2026-03-04T05:06:07+00:00",
        "backend": "local",
    }
    log = (meta_home / "logs/p/manual__2026-03-04T05:06:07+00:00/b/attempt-1.log").read_text()
    assert "shouting 2026-03-04" in log  # print() of an in-process task lands in its own log
    assert "returned: '2026-03-04'" in log


def test_failure_propagates_and_run_fails(meta_home: Path) -> None:
    p = make([py("a", "fail"), py("b", "noop", ("a",)), py("c", "noop", ("b",)), py("d", "noop")])
    outcome = run(p, meta_home)
    assert states(outcome) == {"a": "failed", "b": "upstream_failed", "c": "upstream_failed", "d": "success"}
    assert outcome.result.state == "failed"
    assert outcome.result.tasks["b"].attempts == 0
    assert "RuntimeError: boom" in outcome.errors["a"]


def test_exit_99_skips_and_skip_propagates(meta_home: Path) -> None:
    p = make(
        [
            sh("a", "exit 99"),
            sh("b", "true", ("a",)),
            sh("c", "true", ("b",), trigger_rule="none_failed"),
            py("d", "skip_me"),
        ]
    )
    outcome = run(p, meta_home)
    assert states(outcome) == {"a": "skipped", "b": "skipped", "c": "success", "d": "skipped"}
    assert outcome.result.state == "success"
    assert outcome.result.tasks["a"].attempts == 1 and outcome.result.tasks["b"].attempts == 0


def test_shell_exit_codes(meta_home: Path) -> None:
    p = make([sh("zero", "exit 0"), sh("one", "exit 1"), sh("two", "false"), sh("skip", "exit 99")])
    outcome = run(p, meta_home)
    assert states(outcome) == {"zero": "success", "one": "failed", "two": "failed", "skip": "skipped"}
    assert outcome.errors["one"] == "command exited with code 1"


def test_decides_early_like_airflow(meta_home: Path) -> None:
    """all_success is upstream_failed as soon as one upstream fails, while the other still runs."""
    p = make([sh("slow", "sleep 1"), sh("bad", "exit 1"), sh("join", "true", ("slow", "bad"))])
    outcome = run(p, meta_home)
    assert states(outcome) == {"slow": "success", "bad": "failed", "join": "upstream_failed"}
    lines = outcome.progress_lines  # type: ignore[attr-defined]
    decided = next(i for i, line in enumerate(lines) if line.startswith("join") and "upstream_failed" in line)
    slow_done = next(i for i, line in enumerate(lines) if line.startswith("slow") and "success" in line)
    assert decided < slow_done


# -- retries ---------------------------------------------------------------------------------------------------


def test_retry_recovers(meta_home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "count"
    p = make([py("flaky", "fail_until", kwargs={"marker": str(marker), "times": 1}, retries=3, retry_delay="0s")])
    outcome = run(p, meta_home)
    assert states(outcome) == {"flaky": "success"}
    assert outcome.result.tasks["flaky"].attempts == 2
    assert [a.state for a in outcome.attempts_of("flaky")] == ["up_for_retry", "success"]
    log_dir = meta_home / "logs/p" / outcome.result.run_id / "flaky"  # type: ignore[operator]
    assert sorted(f.name for f in log_dir.iterdir()) == ["attempt-1.log", "attempt-2.log"]
    assert "attempt 1 fails on purpose" in (log_dir / "attempt-1.log").read_text()


def test_retries_exhaust_with_backoff_delays(meta_home: Path) -> None:
    p = make([sh("bad", "exit 2", retries=2, retry_delay="1s", retry_backoff=2.0), sh("after", "true", ("bad",))])
    outcome = run(p, meta_home)
    assert states(outcome) == {"bad": "failed", "after": "upstream_failed"}
    tries = outcome.attempts_of("bad")
    assert [a.try_number for a in tries] == [1, 2, 3]
    assert [a.state for a in tries] == ["up_for_retry", "up_for_retry", "failed"]
    gap1 = (tries[1].started_at - tries[0].ended_at).total_seconds()
    gap2 = (tries[2].started_at - tries[1].ended_at).total_seconds()
    # Airflow's delays: 1s, then 1s * 2.0 = 2s plus its deterministic jitter (2s or 3s); scheduling adds milliseconds.
    settings = p.settings_for(p.tasks[0])
    expected = [
        delay_before_retry(settings, n, retry_jitter_key(p.id, "bad", outcome.context.logical_date, n)).total_seconds()
        for n in (1, 2)
    ]
    assert expected[0] == 1.0 and expected[1] in (2.0, 3.0)
    assert expected[0] <= gap1 < expected[0] + 0.5, gap1
    assert expected[1] <= gap2 < expected[1] + 0.5, gap2
    assert outcome.result.tasks["bad"].attempts == 3


# -- timeouts --------------------------------------------------------------------------------------------------


def test_shell_timeout_kills_the_process_tree(meta_home: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    # bash starts a grandchild (sleep) and waits on it; the timeout must kill both.
    p = make([sh("hang", f"sleep 300 & echo $! > {pid_file}; wait", timeout="1s")])
    started = time.monotonic()
    outcome = run(p, meta_home)
    assert time.monotonic() - started < 10
    assert states(outcome) == {"hang": "failed"}
    assert "timed out after 1s" in outcome.errors["hang"]
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)


def test_python_timeout_runs_in_a_killed_child(meta_home: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "py-grandchild.pid"
    p = make(
        [
            py("hang", "spawn_and_hang", kwargs={"pid_file": str(pid_file)}, timeout="1s"),
            py("quick", "shout", kwargs={"word": "ok"}, timeout="30s"),
        ]
    )
    outcome = run(p, meta_home)
    assert states(outcome) == {"hang": "failed", "quick": "success"}
    assert "timed out after 1s" in outcome.errors["hang"]
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)
    quick_log = next((meta_home / "logs/p").glob("*/quick/attempt-1.log")).read_text()
    assert "shouting ok" in quick_log  # the forked child's output reaches the attempt log


def test_timeout_then_retry_succeeds(meta_home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "seen"
    command = f"if [ -f {marker} ]; then exit 0; fi; touch {marker}; sleep 30"
    p = make([sh("slow_once", command, timeout="1s", retries=1, retry_delay="0s")])
    outcome = run(p, meta_home)
    assert states(outcome) == {"slow_once": "success"}
    assert outcome.result.tasks["slow_once"].attempts == 2


# -- branches --------------------------------------------------------------------------------------------------


def test_branch_skips_unfollowed_and_trigger_rules_propagate(meta_home: Path) -> None:
    p = make(
        [
            {"id": "choose", "action": {"kind": "branch", "callable": f"{HERE}:pick", "kwargs": {"which": "left"}}},
            py("left", "noop", ("choose",)),
            py("right", "noop", ("choose",)),
            py("right_next", "noop", ("right",)),
            py("join", "noop", ("left", "right_next"), trigger_rule="none_failed_min_one_success"),
            py("strict_join", "noop", ("left", "right_next")),
        ]
    )
    outcome = run(p, meta_home)
    assert states(outcome) == {
        "choose": "success",
        "left": "success",
        "right": "skipped",
        "right_next": "skipped",
        "join": "success",
        "strict_join": "skipped",
    }


def test_branch_empty_path_keeps_join(meta_home: Path) -> None:
    """Airflow's special case: branch -> join and branch -> a -> join; following a keeps join."""
    p = make(
        [
            {"id": "choose", "action": {"kind": "branch", "callable": f"{HERE}:pick", "kwargs": {"which": ["a"]}}},
            py("a", "noop", ("choose",)),
            py("b", "noop", ("choose",)),
            py("join", "noop", ("choose", "a"), trigger_rule="none_failed_min_one_success"),
        ]
    )
    assert states(run(p, meta_home)) == {"choose": "success", "a": "success", "b": "skipped", "join": "success"}


def test_branch_to_a_non_downstream_task_fails_clearly(meta_home: Path) -> None:
    p = make(
        [
            {"id": "choose", "action": {"kind": "branch", "callable": f"{HERE}:pick", "kwargs": {"which": "nope"}}},
            py("a", "noop", ("choose",)),
            py("b", "noop", ("choose",)),
        ]
    )
    outcome = run(p, meta_home)
    assert states(outcome) == {"choose": "failed", "a": "upstream_failed", "b": "upstream_failed"}
    assert outcome.errors["choose"] == (
        f"branch callable {HERE}:pick returned ['nope'] which is not a direct downstream task; allowed: ['a', 'b']"
    )


def test_branch_in_a_forked_child(meta_home: Path) -> None:
    p = make(
        [
            {
                "id": "choose",
                "action": {"kind": "branch", "callable": f"{HERE}:pick", "kwargs": {"which": "b"}},
                "timeout": "30s",
            },
            py("a", "noop", ("choose",)),
            py("b", "noop", ("choose",)),
        ]
    )
    assert states(run(p, meta_home)) == {"choose": "success", "a": "skipped", "b": "success"}


# -- params and context ----------------------------------------------------------------------------------------


PARAMS = {
    "country": {"type": "string", "default": "CH", "enum": ["CH", "DE", "FR"]},
    "days": {"type": "integer", "default": 7, "minimum": 1},
}


def test_params_defaults_overrides_and_context(meta_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "ctx.json"
    env_out = tmp_path / "env.txt"
    p = make(
        [
            py("ctx", "write_context", kwargs={"out": str(out)}),
            sh("env", f"env | grep ^META_ | sort > {env_out}"),
        ],
        params=PARAMS,
    )
    outcome = run(p, meta_home, params={"country": "DE"}, run_id="my_run.1")
    assert outcome.result.state == "success"
    seen = json.loads(out.read_text())
    assert seen == {
        "ds": "2026-03-04",
        "params": {"country": "DE", "days": 7},
        "run_id": "my_run.1",
        "ld": "2026-03-04T05:06:07+00:00",
    }
    env = dict(line.split("=", 1) for line in env_out.read_text().splitlines())
    assert env["META_RUN_ID"] == "my_run.1"
    assert env["META_DS"] == "2026-03-04"
    assert env["META_TASK_ID"] == "env"
    assert env["META_PIPELINE_ID"] == "p"
    assert env["META_PARAM_COUNTRY"] == "DE"
    assert env["META_PARAM_DAYS"] == "7"
    assert env["META_DATA_INTERVAL_START"] == env["META_DATA_INTERVAL_END"] == "2026-03-04T05:06:07+00:00"
    assert env["META_TRY_NUMBER"] == "1"


def test_var_kwargs_callable_gets_every_context_name(meta_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "names.json"
    run(make([py("all", "write_all_context", kwargs={"out": str(out)})]), meta_home)
    names = set(json.loads(out.read_text()))
    assert {"ds", "ts", "run_id", "params", "logical_date", "data_interval_start", "task_id", "dag_id"} <= names


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"country": "IT"}, "param 'country': expected one of ['CH', 'DE', 'FR'], got 'IT'"),
        ({"days": 0}, "param 'days': expected at least 1.0, got 0"),
        ({"days": "seven"}, "param 'days': expected type integer, got str 'seven'"),
        ({"countyr": "CH"}, "unknown param 'countyr'; did you mean 'country'?"),
    ],
)
def test_bad_params_are_refused_before_anything_runs(
    meta_home: Path, tmp_path: Path, params: dict, message: str
) -> None:
    out = tmp_path / "ran"
    p = make([sh("a", f"touch {out}")], params=PARAMS)
    with pytest.raises(ValidationFailed) as err:
        run(p, meta_home, params=params)
    assert message in str(err.value)
    assert not out.exists()


def test_required_param_must_be_given(meta_home: Path) -> None:
    p = make([sh("a", "true")], params={"region": {"type": "string"}})
    with pytest.raises(ValidationFailed, match="param 'region' is required and has no default"):
        run(p, meta_home)
    assert run(p, meta_home, params={"region": "eu"}).result.state == "success"


def test_invalid_run_id_is_refused(meta_home: Path) -> None:
    with pytest.raises(ValueError, match=re.escape("invalid run id '../x'")):
        run(make([sh("a", "true")]), meta_home, run_id="../x")


# -- parallelism, logs, history -------------------------------------------------------------------------------


def test_parallelism_is_bounded(meta_home: Path) -> None:
    tasks = [sh(f"t{i}", "sleep 0.3") for i in range(6)]
    outcome = run(make(tasks), meta_home, parallelism=2)
    events = sorted([(a.started_at, 1) for a in outcome.attempts] + [(a.ended_at, -1) for a in outcome.attempts])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak == 2


def test_dependencies_wait_for_upstream(meta_home: Path) -> None:
    p = make([sh("a", "sleep 0.2"), sh("b", "sleep 0.2"), sh("c", "true", ("a", "b"))])
    outcome = run(p, meta_home)
    (c,) = outcome.attempts_of("c")
    assert all(c.started_at >= outcome.attempts_of(u)[-1].ended_at for u in ("a", "b"))


def test_parallel_in_process_tasks_keep_their_own_logs(meta_home: Path) -> None:
    tasks = [py(f"w{i}", "sleep_then_print", kwargs={"seconds": 0.05, "word": f"word{i}"}) for i in range(6)]
    outcome = run(make(tasks), meta_home, parallelism=6)
    for i in range(6):
        text = Path(outcome.attempts_of(f"w{i}")[0].log_path).read_text()  # type: ignore[arg-type]
        assert f"word=word{i}" in text
        assert all(f"word=word{j}\n" not in text for j in range(6) if j != i)


def test_history_in_sqlite(meta_home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "count"
    p = make(
        [
            py("flaky", "fail_until", kwargs={"marker": str(marker), "times": 1}, retries=1, retry_delay="0s"),
            py("bad", "fail", ("flaky",)),
        ],
        id="hist",
    )
    outcome = run(p, meta_home, run_id="r1")
    db = meta_home / "meta.db"
    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT pipeline_id, run_id, state, backend FROM runs").fetchall()
        tis = conn.execute("SELECT task_id, state, attempts FROM task_instances ORDER BY task_id").fetchall()
        tries = conn.execute("SELECT task_id, try_number, state FROM attempts ORDER BY task_id, try_number").fetchall()
    assert runs == [("hist", "r1", "failed", "local")]
    assert tis == [("bad", "failed", 1), ("flaky", "success", 2)]
    assert tries == [("bad", 1, "failed"), ("flaky", 1, "up_for_retry"), ("flaky", 2, "success")]
    # Recording the same run again is an idempotent upsert, and a re-run under the same id replaces it.
    History(db).finish_run(outcome)
    marker.unlink()
    run(p, meta_home, run_id="r1")
    history = History(db)
    (only,) = history.runs("hist")
    assert only["run_id"] == "r1" and only["task_states"] == {"failed": 1, "success": 1}
    assert len(history.attempts("hist", "r1")) == 3


# -- sql, op, airflow_operator --------------------------------------------------------------------------------


def test_sql_on_the_default_duckdb_warehouse(meta_home: Path) -> None:
    statement = """
        CREATE OR REPLACE TABLE sales (day DATE, country TEXT, amount INTEGER);
        -- a comment; with a semicolon
        INSERT INTO sales VALUES ('{{ ds }}', :country, 42);
        INSERT INTO sales VALUES ('{{ ds }}', 'it''s;quoted', 1);
    """
    p = make(
        [
            {
                "id": "load",
                "action": {"kind": "sql", "conn": "warehouse", "statement": statement, "parameters": {"country": "CH"}},
            }
        ]
    )
    assert states(run(p, meta_home)) == {"load": "success"}
    import duckdb

    with duckdb.connect(str(meta_home / "warehouse.duckdb")) as conn:
        rows = conn.execute("SELECT CAST(day AS TEXT), country, amount FROM sales ORDER BY amount").fetchall()
    assert rows == [("2026-03-04", "it's;quoted", 1), ("2026-03-04", "CH", 42)]


def test_sql_failure_rolls_back_the_whole_task(meta_home: Path) -> None:
    setup = make([{"id": "s", "action": {"kind": "sql", "conn": "warehouse", "statement": "CREATE TABLE t (a INT)"}}])
    run(setup, meta_home)
    bad = make(
        [
            {
                "id": "x",
                "action": {"kind": "sql", "conn": "warehouse", "statement": "INSERT INTO t VALUES (1); SELECT nope"},
            }
        ]
    )
    outcome = run(bad, meta_home)
    assert states(outcome) == {"x": "failed"}
    import duckdb

    with duckdb.connect(str(meta_home / "warehouse.duckdb")) as conn:
        assert conn.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)


def test_sql_unknown_connection_names_the_variable(meta_home: Path) -> None:
    p = make([{"id": "q", "action": {"kind": "sql", "conn": "crm-db", "statement": "SELECT 1"}}])
    outcome = run(p, meta_home)
    assert states(outcome) == {"q": "failed"}
    assert "set the environment variable META_CONN_CRM_DB" in outcome.errors["q"]


def test_sql_connection_from_env(meta_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_CONN_OTHER", f"duckdb:///{tmp_path / 'other.duckdb'}")
    p = make([{"id": "q", "action": {"kind": "sql", "conn": "other", "statement": "CREATE TABLE z AS SELECT 1 AS a"}}])
    assert states(run(p, meta_home)) == {"q": "success"}
    assert (tmp_path / "other.duckdb").exists()


def test_airflow_operator_is_refused_by_the_local_target() -> None:
    p = make([{"id": "x", "action": {"kind": "airflow_operator", "operator": "airflow.operators.email.EmailOperator"}}])
    errors = get_target("local").check(p)
    assert len(errors) == 1 and isinstance(errors[0], CompileError)
    assert str(errors[0]) == (
        "local cannot express the Airflow operator airflow.operators.email.EmailOperator (pipeline 'p', task 'x'): "
        "only the airflow backend runs airflow_operator tasks"
    )


def test_airflow_operator_attempt_fails_clearly(meta_home: Path) -> None:
    p = make([{"id": "x", "action": {"kind": "airflow_operator", "operator": "airflow.operators.email.EmailOperator"}}])
    outcome = run(p, meta_home)
    assert states(outcome) == {"x": "failed"}
    assert "only the airflow backend can run" in outcome.errors["x"]


def test_unimportable_callable_fails_the_task(meta_home: Path) -> None:
    p = make([{"id": "x", "action": {"kind": "python", "callable": "no_such_module_xyz:run"}}])
    outcome = run(p, meta_home)
    assert states(outcome) == {"x": "failed"}
    assert outcome.errors["x"] == "cannot import 'no_such_module_xyz:run': No module named 'no_such_module_xyz'"


def test_logical_date_default_is_now(meta_home: Path) -> None:
    before = datetime.now(UTC)
    outcome = LocalRunner(home=meta_home).run(make([py("a", "noop")]))
    assert before <= outcome.context.logical_date <= datetime.now(UTC)
    assert outcome.result.run_id == f"manual__{outcome.context.logical_date.isoformat()}"


def test_state_dir_defaults_to_meta_home(meta_home: Path) -> None:
    homed = make([py("a", "noop")], id="homed")
    LocalRunner().run(homed, RunRequest.build(homed, run_id="r"))
    assert (meta_home / "meta.db").exists()
    assert (meta_home / "logs/homed/r/a/attempt-1.log").exists()
    assert os.environ["META_HOME"] == str(meta_home)


@pytest.mark.parametrize(
    "module", ["meta.execution.attempt", "meta.builtin.local", "meta.builtin.local.engine", "meta.cli"]
)
def test_modules_import_first_in_a_fresh_interpreter(module: str) -> None:
    """Other backends import meta.execution.attempt on its own; no import order may be required."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _peak(attempts: list) -> int:
    events = sorted([(a.started_at, 1) for a in attempts] + [(a.ended_at, -1) for a in attempts])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def test_pool_slots_from_the_environment(meta_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_POOL_DB_WRITERS", "1")
    tasks = [sh(f"db{i}", "sleep 0.2", pool="db-writers") for i in range(3)]
    tasks += [sh(f"free{i}", "sleep 0.2") for i in range(3)]
    outcome = run(make(tasks), meta_home, parallelism=4)
    assert outcome.result.state == "success"
    db = [a for a in outcome.attempts if a.task_id.startswith("db")]
    assert _peak(db) == 1  # the pool's single slot serialises its tasks
    assert _peak(outcome.attempts) >= 3  # while tasks outside the pool still run alongside


def test_pool_without_slots_is_unlimited_and_bad_slots_are_refused(
    meta_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = [sh(f"db{i}", "sleep 0.2", pool="db") for i in range(3)]
    assert _peak(run(make(tasks), meta_home, parallelism=3).attempts) == 3
    monkeypatch.setenv("META_POOL_DB", "zero")
    with pytest.raises(ValueError, match=re.escape("pool 'db' needs a whole number of slots >= 1 (from META_POOL_DB)")):
        run(make(tasks), meta_home)


def test_op_task_runs_the_registered_op_with_rendered_with(meta_home: Path) -> None:
    """The built-in warehouse_load op, found through the plugin hooks like any third-party op."""
    create = {"kind": "sql", "conn": "warehouse", "statement": "CREATE TABLE t (day DATE, n INTEGER)"}
    load = {
        "kind": "op",
        "op": "warehouse_load",
        "with": {
            "table": "t",
            "mode": "append_dedup",
            "keys": ["day"],
            "source": {"rows": [{"day": "{{ ds }}", "n": 1}]},
        },
    }
    p = make([{"id": "create", "action": create}, {"id": "load", "action": load, "upstream": ["create"]}])
    outcome = run(p, meta_home)
    assert states(outcome) == {"create": "success", "load": "success"}, outcome.errors
    import duckdb

    with duckdb.connect(str(meta_home / "warehouse.duckdb")) as conn:
        assert conn.execute("SELECT CAST(day AS TEXT), n FROM t").fetchall() == [("2026-03-04", 1)]


def test_unknown_op_fails_the_attempt_and_is_refused_by_check(meta_home: Path) -> None:
    p = make([{"id": "x", "action": {"kind": "op", "op": "no_such_op"}}])
    (error,) = get_target("local").check(p)
    assert "local cannot express op type 'no_such_op' (pipeline 'p', task 'x'): no op type named 'no_such_op'" in str(
        error
    )
    outcome = run(p, meta_home)
    assert states(outcome) == {"x": "failed"}
    assert "no op type named 'no_such_op'" in outcome.errors["x"]


def echo_token(token: str) -> None:
    raise RuntimeError(f"rejected token {token}")


def test_secret_references_resolve_at_run_time_and_never_reach_errors(
    meta_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("META_SECRET_API_TOKEN", "s3cr3t-value-123")
    out = tmp_path / "token.txt"
    p = make(
        [
            {
                "id": "shell",
                "action": {
                    "kind": "shell",
                    "command": f'printf %s "$API_TOKEN" > {out}',
                    "env": {"API_TOKEN": "${secret:API_TOKEN}"},
                },
            },
            py("leaky", "echo_token", kwargs={"token": "${secret:API_TOKEN}"}),
            py("missing", "echo_token", kwargs={"token": "${secret:NOT_THERE}"}),
        ]
    )
    outcome = run(p, meta_home)
    assert states(outcome) == {"shell": "success", "leaky": "failed", "missing": "failed"}
    assert out.read_text() == "s3cr3t-value-123"  # the task got the value
    assert outcome.errors["leaky"] == f"{HERE}:echo_token raised RuntimeError: rejected token ***"
    assert (
        "secret 'NOT_THERE' not found; looked in: environment variable META_SECRET_NOT_THERE"
        in (outcome.errors["missing"])
    )
    for log in (meta_home / "logs").rglob("*.log"):
        assert "s3cr3t-value-123" not in log.read_text(), log
    with sqlite3.connect(meta_home / "meta.db") as conn:
        dump = "\n".join(conn.iterdump())
    assert "s3cr3t-value-123" not in dump


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"]),
        ("SELECT 'a;b'; SELECT \"c;d\"", ["SELECT 'a;b'", 'SELECT "c;d"']),
        ("SELECT 'it''s; fine'", ["SELECT 'it''s; fine'"]),
        ("-- a; comment\nSELECT 1 -- trailing; comment\n;", ["-- a; comment\nSELECT 1 -- trailing; comment"]),
        ("/* a; b */ SELECT 1; /* only a comment; */", ["/* a; b */ SELECT 1"]),
        (
            "CREATE FUNCTION f() AS $$ BEGIN; END; $$; SELECT $1",
            ["CREATE FUNCTION f() AS $$ BEGIN; END; $$", "SELECT $1"],
        ),
        ("CREATE FUNCTION g() AS $body$ x; y $body$", ["CREATE FUNCTION g() AS $body$ x; y $body$"]),
        ("  ;  ; ", []),
    ],
)
def test_split_statements(sql: str, expected: list[str]) -> None:
    from meta.execution.sql import split_statements

    assert split_statements(sql) == expected


def test_sql_with_only_comments_fails_clearly(meta_home: Path) -> None:
    p = make([{"id": "q", "action": {"kind": "sql", "conn": "warehouse", "statement": "-- nothing here"}}])
    outcome = run(p, meta_home)
    assert states(outcome) == {"q": "failed"}
    assert outcome.errors["q"] == "the sql statement holds nothing to run (only comments?)"


def exit_now(code: int) -> None:
    raise SystemExit(code)


def test_sys_exit_in_a_callable_fails_only_that_task(meta_home: Path) -> None:
    p = make([py("quits", "exit_now", kwargs={"code": 3}), py("forked", "exit_now", kwargs={"code": 0}, timeout="30s")])
    outcome = run(p, meta_home)
    assert states(outcome) == {"quits": "failed", "forked": "failed"}
    assert outcome.errors["quits"] == f"{HERE}:exit_now called sys.exit(3)"
    assert outcome.errors["forked"] == f"{HERE}:exit_now called sys.exit(0)"


def test_always_tasks_start_without_waiting_for_upstreams(meta_home: Path) -> None:
    """Airflow's TriggerRuleDep passes `always` at once, even while the upstream still runs."""
    p = make([sh("slow", "sleep 1"), sh("eager", "true", ("slow",), trigger_rule="always")])
    outcome = run(p, meta_home)
    assert states(outcome) == {"slow": "success", "eager": "success"}
    (eager,) = outcome.attempts_of("eager")
    assert eager.ended_at < outcome.attempts_of("slow")[0].ended_at
