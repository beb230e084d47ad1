"""Importing what real repositories use, parsed by the real Airflow: timetables with timezone objects, DAG files
needing a missing provider, SQL template files, email alerts and callbacks, the email/Slack/SQL operators of common
providers, sensors, cross-DAG sensors and triggers, nested TaskGroups and ``@task.bash``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from meta_airflow.build import build_dag
from meta_airflow.importer import MISSING_MODULE_SUBJECT, ImportedDag, import_dags, import_folder, pipeline_of

from meta.plugins.importing import ImportRefusal


def folder_of(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return tmp_path


def by_id(folder: Path) -> dict[str, ImportedDag]:
    return {r.dag_id: r for r in import_folder(folder)}


def note_with(result: ImportedDag, fragment: str) -> str:
    found = [n for n in result.notes if fragment in n]
    assert found, (fragment, result.notes)
    return found[0]


# -------------------------------------------------------------------------------------------- 1. timetables

TIMETABLES = """
from datetime import timedelta, timezone

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable
from airflow.timetables.trigger import CronTriggerTimetable

CASES = {
    "pendulum_zone": CronTriggerTimetable("0 3 * * *", timezone=pendulum.timezone("Europe/Paris")),
    "fixed_offset": CronTriggerTimetable("0 3 * * *", timezone=pendulum.FixedTimezone(3600)),
    "name": CronDataIntervalTimetable("0 3 * * *", timezone="America/New_York"),
    "datetime_utc": CronTriggerTimetable("0 3 * * *", timezone=timezone.utc),
    "half_hour_offset": CronTriggerTimetable("0 3 * * *", timezone=pendulum.FixedTimezone(19800)),
}
for dag_id, timetable in CASES.items():
    with DAG(dag_id, schedule=timetable, start_date=pendulum.datetime(2024, 1, 1)):
        EmptyOperator(task_id="a")
"""


def test_scheduler_timetables_with_any_timezone_object_import_or_are_refused_plainly(tmp_path: Path) -> None:
    results = by_id(folder_of(tmp_path, {"timetables.py": TIMETABLES}))
    zones = {i: (r.pipeline.schedule.cron, r.pipeline.timezone) for i, r in results.items() if r.pipeline}
    assert zones == {
        "pendulum_zone": ("0 3 * * *", "Europe/Paris"),
        "fixed_offset": ("0 3 * * *", "Etc/GMT-1"),  # UTC+1: POSIX signs are inverted
        "name": ("0 3 * * *", "America/New_York"),
        "datetime_utc": ("0 3 * * *", "UTC"),
    }
    odd = results["half_hour_offset"]
    assert not odd.unexpected and odd.refused and "has no IANA name" in odd.refused
    assert odd.expected and "IANA timezone" in odd.expected
    assert odd.location == f"{tmp_path / 'timetables.py'}:14"
    again = pipeline_of(build_dag(results["fixed_offset"].pipeline), {})
    assert again.pipeline == results["fixed_offset"].pipeline


# -------------------------------------------------------------------------------------------- 2. missing modules

MISSING = {
    "snowflake.py": """
        from airflow.sdk import DAG
        from airflow.providers.snowflake.operators.snowflake import SnowflakeOperator
    """,
    "spark.py": """
        from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    """,
    "library.py": """
        import surely_not_installed_lib.sub
    """,
    "postgres.py": """
        from airflow.providers.postgres.operators.postgres import PostgresOperator
    """,
    "uses_helpers.py": """
        from helpers.things import thing
    """,
    "helpers/__init__.py": "",
    "airflow2.py": """
        from airflow.operators.dummy_operator import DummyOperator
    """,
    "broken.py": """
        raise RuntimeError("boom")
    """,
    "good.py": """
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.sdk import DAG
        with DAG("good", schedule=None):
            EmptyOperator(task_id="a")
    """,
}


def test_a_file_needing_a_missing_provider_says_which_and_how_to_install_it(tmp_path: Path) -> None:
    folder = folder_of(tmp_path, MISSING)
    outcome = import_dags(folder)
    assert [i.pipeline.id for i in outcome.imported] == ["good"]
    missing = {
        Path(str(r.location).split(":")[0]).name: r for r in outcome.refused if r.subject == MISSING_MODULE_SUBJECT
    }
    assert sorted(missing) == [
        "airflow2.py",
        "library.py",
        "postgres.py",
        "snowflake.py",
        "spark.py",
        "uses_helpers.py",
    ]
    assert missing["uses_helpers.py"].reason.startswith("needs the module helpers.things of this project")
    assert missing["postgres.py"].reason.startswith(
        "needs the missing module airflow.providers.postgres.operators.postgres (pip install "
        "apache-airflow-providers-postgres); its PostgresOperator is gone from recent releases of that provider: use "
        "SQLExecuteQueryOperator"
    )
    assert missing["airflow2.py"].reason == (
        "needs the missing module airflow.operators.dummy_operator (an Airflow 2 module; in Airflow 3: "
        "airflow.providers.standard.operators.empty (EmptyOperator))"
    )
    snow = missing["snowflake.py"]
    assert snow.reason == (
        "needs the missing module airflow.providers.snowflake.operators.snowflake "
        "(pip install apache-airflow-providers-snowflake)"
    )
    assert snow.location == f"{folder / 'snowflake.py'}:2"
    assert snow.received and "No module named 'airflow.providers.snowflake'" in snow.received
    assert "pip install apache-airflow-providers-apache-spark" in missing["spark.py"].reason  # a two-level provider
    assert missing["library.py"].reason.startswith("needs the missing module surely_not_installed_lib.sub (install")
    (broken,) = [r for r in outcome.refused if r.subject == "DAG file"]  # any other error stays a broken file
    assert broken.reason == "Airflow could not import it: RuntimeError: boom"


# -------------------------------------------------------------------------------------------- 3. SQL files

SQL_DAG = """
    import pendulum
    from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
    from airflow.sdk import DAG

    with DAG("warehouse", schedule=None, start_date=pendulum.datetime(2024, 1, 1), template_searchpath=[SHARED]):
        create = SQLExecuteQueryOperator(
            task_id="create", conn_id="wh", sql="queries/create.sql", split_statements=True
        )
        shared = SQLExecuteQueryOperator(task_id="shared", conn_id="wh", sql="shared.sql", params={"n": 2})
        inline = SQLExecuteQueryOperator(task_id="inline", conn_id="wh", sql="select {{ macros.ds_add(ds, 1) }}")
        create >> shared >> inline
"""
CREATE_SQL = "create table t (x integer);\ninsert into t values (1);\n"
SHARED_SQL = "insert into t values ({{ params.n }});\n"


@pytest.fixture
def sql_folder(tmp_path: Path) -> Path:
    shared = tmp_path / "shared"
    folder = folder_of(
        tmp_path / "dags",
        {"warehouse.py": SQL_DAG.replace("SHARED", repr(str(shared))), "queries/create.sql": CREATE_SQL},
    )
    folder_of(shared, {"shared.sql": SHARED_SQL})
    return folder


def test_sql_template_files_stay_files_beside_the_spec(sql_folder: Path) -> None:
    outcome = import_dags(sql_folder)
    (imported,) = outcome.imported
    p = imported.pipeline
    create, shared, inline = (p.task(i).action for i in ("create", "shared", "inline"))
    assert (create.file, create.statement, create.split_statements) == (
        "sql/warehouse/queries/create.sql",
        CREATE_SQL,
        True,
    )
    assert (shared.file, shared.statement, shared.split_statements) == ("sql/warehouse/shared.sql", SHARED_SQL, False)
    assert inline.file is None and inline.statement == "select {{ macros.ds_add(ds, 1) }}"
    assert {f.path: f.text for f in outcome.files} == {
        "sql/warehouse/queries/create.sql": CREATE_SQL,
        "sql/warehouse/shared.sql": SHARED_SQL,
    }
    assert note_with(imported, "task inline: the SQL uses templates meta renders on Airflow only (macros)")
    assert not any("task shared: the SQL" in n for n in imported.notes)  # {{ params.n }} is meta's own
    assert "the SQL files found through it are written beside the spec" in note_with(imported, "template_searchpath")


def test_a_written_spec_names_its_sql_file_and_loads_back_the_same(sql_folder: Path, tmp_path: Path) -> None:
    from meta.authoring.load import load_file, pipeline_to_yaml

    outcome = import_dags(sql_folder)
    out = tmp_path / "out"
    for extra in outcome.files:
        (out / extra.path).parent.mkdir(parents=True, exist_ok=True)
        (out / extra.path).write_text(extra.text)
    (imported,) = outcome.imported
    text = pipeline_to_yaml(imported.pipeline)
    assert "file: sql/warehouse/queries/create.sql" in text and "create table" not in text
    spec = out / "warehouse.yaml"
    spec.write_text(text)
    assert load_file(spec) == [imported.pipeline]

    (out / "sql/warehouse/shared.sql").unlink()
    with pytest.raises(Exception) as failed:
        load_file(spec)
    message = str(failed.value)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "file: sql/warehouse/shared.sql" in t)
    assert f"{spec}:{line}" in message and "sql file 'sql/warehouse/shared.sql' cannot be read" in message


def test_split_statements_reaches_airflow_and_the_local_runner_runs_each(
    sql_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from meta import LocalRunner

    (imported,) = import_dags(sql_folder).imported
    p = imported.pipeline
    dag = build_dag(p)
    assert dag.task_dict["create"].split_statements is True
    assert not dag.task_dict["shared"].split_statements
    again = pipeline_of(dag, {}).pipeline
    assert again is not None and again.task("create").action.split_statements is True
    # SQLite runs one statement per call: the local runner splits the file's two statements.
    db = tmp_path / "wh.sqlite"
    monkeypatch.setenv("META_CONN_WH", f"sqlite:///{db}")
    only_sql = p.model_copy(update={"tasks": (p.task("create"), p.task("shared"))})
    outcome = LocalRunner(home=tmp_path).run(only_sql)
    assert str(outcome.result.state) == "success", outcome.result
    import sqlite3

    assert sorted(sqlite3.connect(db).execute("select x from t").fetchall()) == [(1,), (2,)]


# -------------------------------------------------------------------------------------------- 4. alerts

ALERTS = """
    import pendulum
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG

    def page(context):
        pass

    def before(context):
        pass

    default_args = {
        "email": "oncall@example.com; lead@example.com",
        "email_on_retry": False,
        "on_failure_callback": page,
    }
    success = [page, SmtpNotifier(to="x@example.com")]
    with DAG("alerted", schedule=None, default_args=default_args, on_success_callback=success):
        BashOperator(task_id="a", bash_command="echo a")
        BashOperator(task_id="b", bash_command="echo b", email=["b-owner@example.com"], email_on_retry=True,
                     pre_execute=before)
        BashOperator(task_id="c", bash_command="echo c", on_retry_callback=SmtpNotifier(to="c@example.com"),
                     on_execute_callback=page)
"""


def test_email_settings_become_alert_routes_and_other_callbacks_are_named(tmp_path: Path) -> None:
    result = by_id(folder_of(tmp_path, {"alerted.py": ALERTS}))["alerted"]
    p = result.pipeline
    assert p is not None, result.refused
    assert p.alerts.on_failure == ("email:oncall@example.com", "email:lead@example.com", "email:b-owner@example.com")
    assert p.alerts.on_retry == ("email:b-owner@example.com", "email:c@example.com")  # b's and c's own settings
    assert p.alerts.on_success == ("email:x@example.com",)  # an SmtpNotifier is an email route
    assert note_with(result, "DAG on_success_callback SmtpNotifier -> alerts.on_success to email:x@example.com")
    assert note_with(result, "task c: on_retry_callback SmtpNotifier -> alerts.on_retry to email:c@example.com")
    assert note_with(result, "task c: on_execute_callback alerted:page is not carried over")
    assert note_with(result, "default_args email: alerts go to email:oncall@example.com, email:lead@example.com")
    assert "channels.yaml" in note_with(result, "default_args email")
    assert note_with(result, "default_args on_failure_callback alerted:page is not carried over")
    assert note_with(result, "DAG on_success_callback alerted:page is not carried over")
    assert note_with(result, "task b: its email alerts become pipeline-wide routes")
    assert note_with(result, "task b: pre_execute hook alerted:before is not carried over")
    assert not any("task a:" in n for n in result.notes)  # default_args settings are the DAG's, noted once
    assert p.task("b").action.command == "echo b"


# -------------------------------------------------------------------------------------------- 5. operators

OPERATORS = """
    import pendulum
    from airflow.providers.smtp.operators.smtp import EmailOperator
    from airflow.providers.standard.sensors.bash import BashSensor
    from airflow.providers.standard.sensors.filesystem import FileSensor
    from airflow.providers.standard.sensors.python import PythonSensor
    from airflow.sdk import DAG

    def ready():
        return True

    with DAG("operators", schedule=None):
        mail = EmailOperator(task_id="mail", to=["a@example.com", "b@example.com"], subject="loaded {{ ds }}",
                             html_content="all rows are in")
        wait = FileSensor(task_id="wait", filepath="/data/ready", poke_interval=30)
        wait >> mail

    with DAG("callable_sensor", schedule=None):
        PythonSensor(task_id="poll", python_callable=ready)
"""


def test_email_operator_is_an_alert_task_and_sensors_are_passthroughs(tmp_path: Path) -> None:
    results = by_id(folder_of(tmp_path, {"operators.py": OPERATORS}))
    result = results["operators"]
    p = result.pipeline
    assert p is not None, result.refused
    mail = p.task("mail").action
    assert (mail.kind, mail.op) == ("op", "alert")
    assert mail.with_ == {
        "channels": ["email:a@example.com", "email:b@example.com"],
        "message": "loaded {{ ds }}\n\nall rows are in",
    }
    assert p.task("mail").upstream == ("wait",)
    wait = p.task("wait").action
    assert wait.kind == "airflow_operator" and wait.arguments == {"filepath": "/data/ready", "poke_interval": 30}
    assert "depends_on" in note_with(result, "task wait: the sensor FileSensor waits in Airflow only")
    from meta.builtin.operators.alerts import AlertOptions

    AlertOptions.model_validate(mail.with_)  # what the alert op accepts

    refused = results["callable_sensor"]
    assert refused.pipeline is None and refused.refused
    assert "the sensor PythonSensor takes callables (python_callable)" in refused.refused
    assert refused.received == "python_callable=ready"
    assert refused.expected and "a python task that polls" in refused.expected
    assert refused.location == f"{tmp_path / 'operators.py'}:18"


def test_slack_webhook_operator_is_an_alert_task(tmp_path: Path) -> None:
    pytest.importorskip(
        "airflow.providers.slack", reason="apache-airflow-providers-slack is not installed in this environment"
    )
    folder = folder_of(
        tmp_path,
        {
            "slack.py": """
                from airflow.providers.slack.operators.slack_webhook import SlackWebhookOperator
                from airflow.sdk import DAG
                with DAG("slacked", schedule=None):
                    SlackWebhookOperator(task_id="tell", slack_webhook_conn_id="data_team", message="done {{ ds }}")
            """
        },
    )
    action = by_id(folder)["slacked"].pipeline.task("tell").action
    assert action.with_ == {"channel": "slack:data_team", "message": "done {{ ds }}"}


# -------------------------------------------------------------------------------------------- 6. cross-DAG

CROSS = """
    from datetime import timedelta

    import pendulum
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
    from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
    from airflow.sdk import DAG

    start = pendulum.datetime(2024, 1, 1)
    with DAG("sales", schedule="0 1 * * *", start_date=start):
        load = BashOperator(task_id="load", bash_command="echo load")
        kick = TriggerDagRunOperator(task_id="kick_report", trigger_dag_id="report")
        kick_away = TriggerDagRunOperator(task_id="kick_elsewhere", trigger_dag_id="not_here")
        done = BashOperator(task_id="done", bash_command="echo done")
        load >> kick >> done
        load >> kick_away

    with DAG("report", schedule=None, start_date=start):
        BashOperator(task_id="build", bash_command="echo report")

    with DAG("marketing", schedule="0 1 * * *", start_date=start):
        wait = ExternalTaskSensor(task_id="wait_sales", external_dag_id="sales", external_task_id="load",
                                  timeout=3600)
        wait_all = ExternalTaskSensor(task_id="wait_ads", external_dag_id="ads")
        roi = BashOperator(task_id="roi", bash_command="echo roi")
        publish = BashOperator(task_id="publish", bash_command="echo publish")
        [wait, wait_all] >> roi >> publish

    with DAG("own_past", schedule="0 1 * * *", start_date=start):
        late = ExternalTaskSensor(task_id="yesterday", external_dag_id="own_past", execution_delta=timedelta(days=1))
        own = ExternalTaskSensor(task_id="itself", external_dag_id="own_past")
        [late, own] >> BashOperator(task_id="work", bash_command="echo work")
"""


def test_external_task_sensors_become_depends_on_and_leave_the_graph(tmp_path: Path) -> None:
    result = by_id(folder_of(tmp_path, {"cross.py": CROSS}))["marketing"]
    p = result.pipeline
    assert p is not None, result.refused
    assert [(d.pipeline, d.task, d.align, d.timeout.total_seconds()) for d in p.depends_on] == [
        ("sales", "load", "same", 3600.0),
        ("ads", None, "same", 86400.0),
    ]
    assert [t.id for t in p.tasks] == ["roi", "publish"] and p.task("roi").upstream == ()
    assert p.schedule is None  # align same: the control plane starts a run per logical date of the upstreams
    assert note_with(result, "task wait_sales: ExternalTaskSensor on sales (tasks load) -> depends_on (align: same)")
    assert note_with(result, "schedule {'kind': 'cron', 'cron': '0 1 * * *'} is dropped")


def test_sensors_depends_on_cannot_express_stay_sensors(tmp_path: Path) -> None:
    result = by_id(folder_of(tmp_path, {"cross.py": CROSS}))["own_past"]
    p = result.pipeline
    assert p is not None and p.depends_on == () and p.schedule is not None, result.refused
    assert [p.task(t).action.kind for t in ("yesterday", "itself")] == ["airflow_operator", "airflow_operator"]
    assert note_with(result, "task yesterday: ExternalTaskSensor waits for another logical date")
    assert note_with(result, "task itself: ExternalTaskSensor on its own DAG has no depends_on form")


def test_a_triggered_dag_in_the_same_import_depends_on_the_trigger(tmp_path: Path) -> None:
    results = by_id(folder_of(tmp_path, {"cross.py": CROSS}))
    sales, report = results["sales"], results["report"]
    assert sales.pipeline is not None and report.pipeline is not None
    assert [t.id for t in sales.pipeline.tasks] == ["load", "kick_elsewhere", "done"]
    assert sales.pipeline.task("done").upstream == ("load",)  # the trigger's downstream takes its upstream
    assert [(d.pipeline, d.align) for d in report.pipeline.depends_on] == [("sales", "same")]
    assert note_with(sales, "task kick_report: TriggerDagRunOperator of report -> report depends_on sales")
    assert note_with(report, "depends_on sales: its task kick_report triggered this DAG")
    # a DAG outside the import: the trigger stays, said so
    assert sales.pipeline.task("kick_elsewhere").action.kind == "airflow_operator"
    assert note_with(sales, "task kick_elsewhere: it triggers DAG 'not_here', which is not in this import")


# -------------------------------------------------------------------------------------------- 7. task groups

GROUPS = """
    import pendulum
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG, TaskGroup

    with DAG("grouped", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
        start = EmptyOperator(task_id="start")
        with TaskGroup("section_1") as section_1:
            setup = EmptyOperator(task_id="inner_setup")
            with TaskGroup("inner") as inner:
                deep = BashOperator(task_id="deep", bash_command="echo deep")
            setup >> inner
        with TaskGroup("section_2", prefix_group_id=False) as section_2:
            plain = EmptyOperator(task_id="plain")
        end = EmptyOperator(task_id="end")
        start >> section_1 >> section_2 >> end
        deep >> plain
"""


def test_nested_task_groups_flatten_to_prefixed_ids_and_compile_back(tmp_path: Path) -> None:
    result = by_id(folder_of(tmp_path, {"groups.py": GROUPS}))["grouped"]
    p = result.pipeline
    assert p is not None and result.notes == [], (result.refused, result.notes)
    assert {t.id: t.upstream for t in p.tasks} == {
        "start": (),
        "section_1.inner_setup": ("start",),
        "section_1.inner.deep": ("section_1.inner_setup",),
        "plain": ("section_1.inner.deep",),
        "end": ("plain",),
    }
    assert pipeline_of(build_dag(p), {}).pipeline == p  # dotted ids are valid ids: a fixed point


# -------------------------------------------------------------------------------------------- 8. @task.bash

BASH = """
    from airflow.sdk import DAG, task

    @task.bash
    def literal():
        "Say hi."
        return "echo hi"

    @task.bash
    def greet(name: str, times: int):
        return f"echo hello {name} x{times}"

    @task.bash
    def dated(ds, run_id):
        return f"echo {ds} {run_id}"

    @task.bash
    def computed(name: str):
        command = "echo " + name
        return command

    with DAG("bash_tasks", schedule=None):
        literal() >> greet("world", 3) >> dated()

    with DAG("bash_computed", schedule=None):
        computed("x")
"""


def test_task_bash_with_a_literal_command_is_a_shell_task(tmp_path: Path) -> None:
    results = by_id(folder_of(tmp_path, {"bash.py": BASH}))
    p = results["bash_tasks"].pipeline
    assert p is not None, results["bash_tasks"].refused
    assert p.task("literal").action.command == "echo hi"
    assert p.task("greet").action.command == "echo hello world x3" and p.task("greet").upstream == ("literal",)
    assert p.task("dated").action.command == "echo {{ ds }} {{ run_id }}"  # context arguments: meta's templates
    refused = results["bash_computed"]
    assert refused.refused and "its @task.bash function computes its command" in refused.refused
    assert refused.expected and 'return "<command>"' in refused.expected
    assert refused.location == f"{tmp_path / 'bash.py'}:17"


def test_every_refusal_here_names_construct_location_and_fix(tmp_path: Path) -> None:
    folder = folder_of(tmp_path, {"bash.py": BASH, "operators.py": OPERATORS, "timetables.py": TIMETABLES})
    refused: list[ImportRefusal] = list(import_dags(folder).refused)
    assert sorted(r.subject for r in refused) == [
        "DAG 'bash_computed'",
        "DAG 'callable_sensor'",
        "DAG 'half_hour_offset'",
    ]
    for r in refused:
        assert r.location and ".py:" in r.location and r.received and r.expected, r
