"""Built DAG objects carry every mapped field: tasks, edges, trigger rules, retries, timeouts, schedules, params."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from meta_airflow.build import build_dag
from meta_airflow.plan import problems

from meta.spec.errors import CompileError
from meta.spec.model import Pipeline
from tests.unit.airflow.pipelines import rich


@pytest.fixture(scope="module")
def dag():
    return build_dag(rich())


def test_tasks_operators_and_edges(dag) -> None:
    kinds = {tid: type(t).__name__ for tid, t in dag.task_dict.items()}
    assert kinds == {
        "extract": "BashOperator",
        "choose": "BranchPythonOperator",
        "left": "PythonOperator",
        "right": "SQLExecuteQueryOperator",
        "load": "PythonOperator",
        "done": "EmptyOperator",
        "raw.op-1": "BashSensor",
    }
    assert dag.task_dict["load"].upstream_task_ids == {"left", "right"}
    assert dag.task_dict["choose"].downstream_task_ids == {"left", "right"}
    assert dag.task_dict["extract"].upstream_task_ids == set()


def test_trigger_rules_retries_timeouts(dag) -> None:
    load, left, done, right = (dag.task_dict[t] for t in ("load", "left", "done", "right"))
    assert str(load.trigger_rule.value) == "none_failed_min_one_success"
    assert str(done.trigger_rule.value) == "all_done"
    assert left.retries == 5 and left.retry_delay == timedelta(minutes=1)
    assert left.retry_exponential_backoff == 2.0 and isinstance(left.retry_exponential_backoff, float)
    assert left.max_retry_delay == timedelta(minutes=10)
    # pipeline defaults -> default_args
    assert right.retries == 2 and right.retry_delay == timedelta(seconds=30)
    assert right.execution_timeout == timedelta(minutes=10)
    assert load.execution_timeout == timedelta(minutes=5)
    assert right.owner == "data-team"


def test_pool_max_active_assets_doc(dag) -> None:
    extract = dag.task_dict["extract"]
    assert extract.pool == "io" and extract.max_active_tis_per_dag == 1
    assert [a.uri for a in extract.outlets] == ["s3://bucket/raw"]
    assert [a.uri for a in dag.task_dict["right"].inlets] == ["s3://bucket/raw"]
    assert dag.task_dict["left"].doc == "the left path"


def test_shell_env_is_meta_context_plus_own_env(dag) -> None:
    env = dag.task_dict["extract"].env
    assert env["MODE"] == "full"
    assert env["META_RUN_ID"] == "{{ run_id }}" and env["META_TRY_NUMBER"] == "{{ ti.try_number }}"
    assert env["META_PIPELINE_ID"] == "rich" and "META_PARAM_COUNTRY" in env
    assert dag.task_dict["extract"].append_env is True
    assert dag.task_dict["extract"].skip_on_exit_code == [99]


def test_python_branch_op_go_through_meta_runtime(dag) -> None:
    left, choose, load = (dag.task_dict[t] for t in ("left", "choose", "load"))
    assert left.python_callable.__name__ == "call_python"
    assert left.op_kwargs == {"target": "tests.conformance.callables:choose_left", "kwargs": {"n": 1}}
    assert choose.python_callable.__name__ == "call_branch"
    assert load.op_kwargs == {"op": "warehouse_load", "with_args": {"table": "t"}}
    assert dag.task_dict["right"].conn_id == "warehouse" and dag.task_dict["right"].sql == "select 1"


def test_dag_level_fields(dag) -> None:
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"
    assert dag.timetable.expression == "30 6 * * 1-5" and str(dag.timetable.timezone) == "Europe/Zurich"
    assert dag.start_date == datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Zurich"))  # naive = pipeline timezone
    assert dag.timezone.name == "Europe/Zurich"
    assert dag.catchup is True and dag.max_active_runs == 2 and dag.max_active_tasks == 5
    assert set(dag.tags) == {"finance", "daily", "team:growth"}
    assert dag.description == "every field"


def test_params_carry_json_schema(dag) -> None:
    country = dag.params.get_param("country")
    assert country.value == "CH" and country.description == "market"
    assert country.schema["enum"] == ["CH", "DE"] and country.schema["type"] == "string"
    assert dag.params.get_param("limit").schema["maximum"] == 100


def test_alerts_and_deadline(dag) -> None:
    assert repr(dag.on_failure_callback) == "AlertCallback(['slack:data-team'], 'failure')"
    assert repr(dag.default_args["on_retry_callback"]) == "AlertCallback(['email:oncall'], 'retry')"
    deadline = dag.deadline[0] if isinstance(dag.deadline, list) else dag.deadline
    assert deadline.interval == timedelta(hours=2)
    assert type(deadline.reference).__name__ == "DagRunQueuedAtDeadline"
    assert deadline.callback.path == "meta_deadline.on_deadline_missed"
    assert deadline.callback.kwargs == {"pipeline": "rich", "sla": "max_duration", "channels": ["slack:sla"]}


@pytest.mark.parametrize(
    ("schedule", "timetable", "check"),
    [
        ({"kind": "cron", "cron": "@daily"}, "CronTriggerTimetable", lambda t: t.expression == "0 0 * * *"),
        ({"kind": "interval", "every": "2h"}, "DeltaTriggerTimetable", lambda t: t.delta == timedelta(hours=2)),
        (
            {"kind": "datasets", "datasets": ["s3://a"]},
            "AssetTriggeredTimetable",
            lambda t: t.asset_condition.uri.rstrip("/") == "s3://a",
        ),
        (
            {"kind": "datasets", "datasets": ["s3://a", "s3://b"]},
            "AssetTriggeredTimetable",
            lambda t: type(t.asset_condition).__name__ == "AssetAll",
        ),
        (
            {"kind": "datasets", "datasets": ["s3://a", "s3://b"], "mode": "any"},
            "AssetTriggeredTimetable",
            lambda t: type(t.asset_condition).__name__ == "AssetAny",
        ),
    ],
)
def test_schedules(schedule, timetable, check) -> None:
    pipeline = Pipeline.model_validate(
        {"id": "s", "schedule": schedule, "tasks": [{"id": "a", "action": {"kind": "noop"}}]}
    )
    dag = build_dag(pipeline)
    assert type(dag.timetable).__name__ == timetable
    assert check(dag.timetable)


def test_backoff_one_means_constant_delay() -> None:
    p = Pipeline.model_validate({"id": "b", "tasks": [{"id": "a", "action": {"kind": "noop"}, "retry_backoff": 1.0}]})
    assert build_dag(p).task_dict["a"].retry_exponential_backoff == 0


def test_required_param_without_schedule_is_kept_required() -> None:
    p = Pipeline.model_validate(
        {"id": "r", "params": {"day": {"type": "string"}}, "tasks": [{"id": "a", "action": {"kind": "noop"}}]}
    )
    param = build_dag(p).params.get_param("day")
    assert param.schema == {"type": "string"}
    with pytest.raises(Exception, match="no default"):
        param.resolve()  # no value and no default: a run must pass it


@pytest.mark.parametrize(
    ("fields", "feature"),
    [
        # (SLAs Airflow cannot enforce itself are the shared checks' job: tests/unit/test_sla_enforcement.py)
        ({"params": {"bad name": {"type": "string", "default": "x"}}}, "param name 'bad name'"),
        (
            {"schedule": {"kind": "cron", "cron": "@daily"}, "params": {"d": {"type": "string"}}},
            "required params on a scheduled pipeline",
        ),
    ],
)
def test_unexpressible_features_are_compile_errors(fields, feature) -> None:
    p = Pipeline.model_validate({"id": "x", "tasks": [{"id": "a", "action": {"kind": "noop"}}], **fields})
    errors = problems(p)
    assert [e.feature for e in errors] == [feature]
    with pytest.raises(CompileError, match="airflow cannot express") as info:
        build_dag(p)
    assert feature in str(info.value) and "'x'" in str(info.value)


def test_finish_by_on_a_daily_cron_is_a_deadline_from_the_logical_date() -> None:
    p = rich(sla={"finish_by": "09:15", "max_duration": "2h"})  # schedule 30 6 * * 1-5 (Europe/Zurich)
    dag = build_dag(p)
    by_ref = {type(d.reference).__name__: d for d in dag.deadline}
    assert by_ref["DagRunQueuedAtDeadline"].interval == timedelta(hours=2)
    finish = by_ref["DagRunLogicalDateDeadline"]
    assert finish.interval == timedelta(hours=2, minutes=45)
    assert finish.callback.kwargs == {"pipeline": "rich", "sla": "finish_by", "channels": ["slack:sla"]}
    before_tick = rich(sla={"finish_by": "06:00"}, schedule={"kind": "cron", "cron": "0 22 * * *"})
    (late,) = build_dag(before_tick).deadline
    assert late.interval == timedelta(hours=8)  # 22:00 -> 06:00 the next morning
