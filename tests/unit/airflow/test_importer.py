"""Airflow DAG -> neutral pipeline: mapping, refusals with reasons, and the import -> compile -> import fixed point."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from meta_airflow.build import build_dag
from meta_airflow.importer import import_dags, import_folder, pipeline_of

from meta.spec.errors import MetaError
from meta.spec.model import Pipeline
from tests.conformance.cases import CASES
from tests.unit.airflow.pipelines import rich


def reimport(pipeline: Pipeline) -> Pipeline:
    imported = pipeline_of(build_dag(pipeline), {})
    assert imported.refused is None, imported.refused
    passthrough = any(t.kind == "airflow_operator" for t in pipeline.tasks)
    assert passthrough or imported.notes == [], imported.notes  # nothing meta compiled is lost on the way back
    assert imported.pipeline is not None
    return imported.pipeline


def same_meaning(a: Pipeline, b: Pipeline) -> None:
    """Equal up to spelling: an explicit Airflow default (e.g. trigger_rule all_success) reads back as unset."""
    assert a.model_dump(exclude={"tasks", "tags", "defaults"}) == b.model_dump(exclude={"tasks", "tags", "defaults"})
    assert set(a.tags) == set(b.tags)  # Airflow keeps tags as a set
    assert [t.id for t in a.tasks] == [t.id for t in b.tasks]
    for ta, tb in zip(a.tasks, b.tasks, strict=True):
        assert (ta.action, set(ta.upstream), a.settings_for(ta)) == (tb.action, set(tb.upstream), b.settings_for(tb))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_compiled_conformance_pipelines_import_back(case) -> None:
    first = reimport(case.pipeline)
    same_meaning(first, case.pipeline)
    assert reimport(first) == first


def test_finish_by_imports_back() -> None:
    p = rich(sla={"finish_by": "09:15", "max_duration": "2h"})
    assert reimport(p).sla == p.sla


def test_rich_pipeline_is_a_fixed_point() -> None:
    first = reimport(rich())
    assert reimport(first) == first
    # everything but Airflow's own normalisations (asset URIs) comes back as written
    same_meaning(first, rich())
    assert first.task("left") == rich().task("left")


DAG_FILE = """
from datetime import timedelta

import pendulum
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
from airflow.providers.standard.sensors.bash import BashSensor
from airflow.sdk import DAG, Param


def pick():
    return "py"


def work(n, params):
    return n


with DAG(
    dag_id="handwritten",
    schedule="0 5 * * *",
    start_date=pendulum.datetime(2024, 3, 1, tz="Europe/Zurich"),
    catchup=False,
    tags=["team:ops", "x"],
    params={"n": Param(3, type="integer", minimum=1, title="How many")},
    default_args={"owner": "ops", "retries": 3, "retry_delay": timedelta(minutes=2)},
    dagrun_timeout=timedelta(hours=1),
) as dag:
    start = BashOperator(task_id="start", bash_command="echo hi", env={"A": "1"}, append_env=True)
    branch = BranchPythonOperator(task_id="branch", python_callable=pick)
    py = PythonOperator(task_id="py", python_callable=work, op_kwargs={"n": 2}, retries=0,
                        execution_timeout=timedelta(seconds=30))
    sql = SQLExecuteQueryOperator(task_id="sql", conn_id="wh", sql=["select 1", "select 2"])
    wait = BashSensor(task_id="wait", bash_command="true", poke_interval=5)
    end = EmptyOperator(task_id="end", trigger_rule="none_failed_min_one_success", depends_on_past=True)
    start >> branch >> [py, sql] >> end
    start >> wait
"""


@pytest.fixture(scope="module")
def dags_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("dags")
    (folder / "handwritten.py").write_text(DAG_FILE)
    (folder / "broken.py").write_text("from airflow.sdk import DAG\nraise RuntimeError('boom')\n")
    (folder / "mapped.py").write_text(
        textwrap.dedent("""
        from airflow.sdk import DAG, task

        @task
        def double(x):
            return 2 * x

        with DAG(dag_id="mapped", schedule=None):
            double.expand_kwargs([{"x": 1}, {"x": 2}])
    """)
    )
    return folder


def test_handwritten_dag_maps_every_operator(dags_folder: Path) -> None:
    (result,) = import_folder(dags_folder, dag_id="handwritten")
    p = result.pipeline
    assert p is not None and result.status == "partial"  # the BashSensor is a passthrough
    assert p.schedule.cron == "0 5 * * *" and p.timezone == "Europe/Zurich"
    assert p.start_date.isoformat() == "2024-03-01T00:00:00" and p.owner == "ops" and p.team == "ops"
    assert p.tags == ("x",)
    assert p.params["n"].default == 3 and p.params["n"].minimum == 1
    assert p.defaults.retries == 3 and p.defaults.retry_delay.total_seconds() == 120
    kinds = {t.id: t.kind for t in p.tasks}
    assert kinds == {
        "start": "shell",
        "branch": "branch",
        "py": "python",
        "sql": "sql",
        "wait": "airflow_operator",
        "end": "noop",
    }
    assert p.task("start").action.env == {"A": "1"}
    assert p.task("branch").action.callable == "handwritten_tasks:pick"  # lifted out of the DAG file
    assert p.task("py").action.kwargs == {"n": 2} and p.task("py").retries == 0
    assert p.task("py").timeout.total_seconds() == 30
    assert p.task("sql").action.statement == "select 1;\nselect 2" and p.task("sql").action.conn == "wh"
    assert p.task("wait").action.operator == "airflow.providers.standard.sensors.bash.BashSensor"
    assert p.task("wait").action.arguments == {"bash_command": "true", "poke_interval": 5}
    assert p.task("end").trigger_rule == "none_failed_min_one_success"
    assert set(p.task("end").upstream) == {"py", "sql"}
    assert any("BashSensor" in n for n in result.notes) and any("title" in n for n in result.notes)
    assert any("dagrun_timeout" in n for n in result.notes)  # unmapped settings are noted, not silently dropped
    assert any("task end: depends_on_past=True" in n for n in result.notes)
    again = reimport(p)
    for a, b in zip(again.tasks, p.tasks, strict=True):
        assert a == b, (a, b)
    assert again == p


def test_refusals_name_the_reason(dags_folder: Path) -> None:
    (result,) = import_folder(dags_folder, dag_id="mapped")
    assert result.status == "refused" and "expand_kwargs" in result.refused
    outcome = import_dags(dags_folder)  # the refusal is reported, the other DAG still imported
    assert [i.pipeline.id for i in outcome.imported] == ["handwritten"]
    assert [(r.subject, r.location) for r in outcome.refused] == [
        ("DAG file", f"{dags_folder / 'broken.py'}:2"),
        ("DAG 'mapped'", f"{dags_folder / 'mapped.py'}:5"),
    ]


def test_unknown_dag_id_lists_what_exists(dags_folder: Path) -> None:
    with pytest.raises(MetaError, match=r"no DAG 'nope'.*handwritten.*broken\.py"):
        import_dags(dags_folder, dag_id="nope")


def test_every_shipped_example_dag_imports_or_is_refused_and_round_trips() -> None:
    from meta_airflow.import_report import example_folders, fixed_point

    seen = 0
    for folder in example_folders():
        for result in import_folder(folder):  # must not raise
            seen += 1
            assert result.status in ("full", "partial", "refused")
            assert not result.unexpected, result.refused  # every refusal is a deliberate one
            if result.pipeline is None:
                assert result.refused
            elif result.pipeline.depends_on:  # (from an ExternalTaskSensor) the control plane's: compiling drops it
                again = pipeline_of(build_dag(result.pipeline), {}).pipeline
                assert again == result.pipeline.model_copy(update={"depends_on": ()}), result.dag_id
            else:
                assert fixed_point(result) == "yes", result.dag_id
    assert seen > 100


def test_passthrough_keeps_timedeltas_and_datetimes(tmp_path) -> None:
    from datetime import time, timedelta

    from meta_airflow.codegen import render_pipeline

    from tests.unit.airflow.test_codegen import exec_dag

    p = Pipeline.model_validate(
        {
            "id": "typed",
            "tasks": [
                {
                    "id": "wait",
                    "action": {
                        "kind": "airflow_operator",
                        "operator": "airflow.providers.standard.sensors.time_delta.TimeDeltaSensor",
                        "arguments": {"delta": {"__type__": "datetime.timedelta", "seconds": 90}},
                    },
                },
                {
                    "id": "branch",
                    "action": {
                        "kind": "airflow_operator",
                        "operator": "airflow.providers.standard.operators.datetime.BranchDateTimeOperator",
                        "arguments": {
                            "target_lower": {"__type__": "datetime.time", "iso": "08:00:00"},
                            "target_upper": {"__type__": "datetime.time", "iso": "12:30:00"},
                            "follow_task_ids_if_true": ["a"],
                            "follow_task_ids_if_false": ["b"],
                        },
                    },
                    "upstream": ["wait"],
                },
                {"id": "a", "action": {"kind": "noop"}, "upstream": ["branch"]},
                {"id": "b", "action": {"kind": "noop"}, "upstream": ["branch"]},
            ],
        }
    )
    for dag in (build_dag(p), exec_dag(render_pipeline(p), tmp_path)):
        assert dag.task_dict["wait"].delta == timedelta(seconds=90)
        assert dag.task_dict["branch"].target_lower == time(8, 0)
    assert reimport(p) == p
