"""Importing real-world DAG folders with the real Airflow: every timetable class a DAG file may use, and one DAG
per result (a refused DAG, a DAG without tasks, a file that does not import, an unforeseen error) never costing the
folder's other DAGs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from meta_airflow import importer
from meta_airflow.build import build_dag
from meta_airflow.importer import import_dags, import_folder, pipeline_of

from meta.plugins.importing import ImportedPipeline, ImportRefusal

# schedule= expression -> (cron or interval seconds, timezone, a fragment every note must contain, or None: no notes)
SCHEDULES = {
    "plain_cron": ('"0 5 * * *"', "0 5 * * *", "UTC", None),
    "preset": ('"@daily"', "0 0 * * *", "UTC", None),
    "delta": ("timedelta(hours=2)", 7200.0, "UTC", None),
    "sdk_cron_trigger": ('CronTriggerTimetable("15 4 * * 1", timezone="Europe/Zurich")', "15 4 * * 1",
                         "Europe/Zurich", None),
    # the scheduler's classes (airflow.timetables): they keep _expression / _timezone / _delta
    "core_cron_trigger": ('core_trigger.CronTriggerTimetable("0 3 * * *", timezone="Europe/Paris")', "0 3 * * *",
                          "Europe/Paris", None),
    "core_cron_interval": ('core_interval.CronDataIntervalTimetable("@hourly", timezone="Asia/Tokyo")', "0 * * * *",
                           "Asia/Tokyo", "data interval"),
    "core_cron_trigger_interval": (
        'core_trigger.CronTriggerTimetable("0 3 * * *", timezone="UTC", interval=timedelta(hours=1))',
        "0 3 * * *", "UTC", "interval=datetime.timedelta(seconds=3600)"),
    "core_delta_trigger": ("core_trigger.DeltaTriggerTimetable(timedelta(minutes=5))", 300.0, "UTC", None),
    "core_delta_interval": ("core_interval.DeltaDataIntervalTimetable(timedelta(minutes=5))", 300.0, "UTC",
                            "data interval"),
}  # fmt: skip

HEADER = """
from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, CronTriggerTimetable
from airflow.timetables import interval as core_interval, trigger as core_trigger
"""


@pytest.fixture(scope="module")
def schedules_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("schedules")
    body = [HEADER]
    for dag_id, (expr, *_rest) in SCHEDULES.items():
        body.append(f'with DAG("{dag_id}", schedule={expr}, start_date=pendulum.datetime(2024, 1, 1)):')
        body.append('    EmptyOperator(task_id="a")')
    body += ['with DAG("once", schedule="@once"):', '    EmptyOperator(task_id="a")']
    (folder / "schedules.py").write_text("\n".join(body) + "\n")
    return folder


@pytest.fixture(scope="module")
def schedules(schedules_folder: Path) -> dict[str, importer.ImportedDag]:
    return {r.dag_id: r for r in import_folder(schedules_folder)}


@pytest.mark.parametrize("dag_id", sorted(SCHEDULES))
def test_every_timetable_class_imports(schedules: dict[str, importer.ImportedDag], dag_id: str) -> None:
    _expr, expected, tz, note = SCHEDULES[dag_id]
    result = schedules[dag_id]
    assert result.refused is None, result.refused
    p = result.pipeline
    assert p is not None and p.schedule is not None
    if isinstance(expected, str):
        assert (p.schedule.kind, p.schedule.cron) == ("cron", expected)
    else:
        assert (p.schedule.kind, p.schedule.every.total_seconds()) == ("interval", expected)
    assert p.timezone == tz
    if note is None:
        assert result.notes == []
        again = pipeline_of(build_dag(p), {})  # and compiling it gives back the same pipeline
        assert (again.pipeline, again.notes) == (p, [])
    else:
        assert len(result.notes) == 1 and note in result.notes[0], result.notes


def test_a_timetable_without_neutral_form_is_a_note(schedules: dict[str, importer.ImportedDag]) -> None:
    once = schedules["once"]
    assert once.pipeline is not None and once.pipeline.schedule is None
    assert once.notes == ["schedule: OnceTimetable has no neutral form; the pipeline is left unscheduled"]


MIXED = {
    "good.py": """
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.bash import BashOperator

        with DAG("good", schedule=None):
            BashOperator(task_id="hello", bash_command="echo hi")
    """,
    "partial.py": """
        from airflow.sdk import DAG
        from airflow.providers.standard.sensors.bash import BashSensor

        with DAG("partial", schedule=None):
            BashSensor(task_id="wait", bash_command="true")
    """,
    "mapped.py": """
        from airflow.sdk import DAG, task


        @task
        def double(x):
            return 2 * x


        with DAG(dag_id="mapped", schedule=None):
            double.expand_kwargs([{"x": 1}, {"x": 2}])
    """,
    "empty.py": """
        from airflow.sdk import DAG

        with DAG("no_tasks", schedule=None):
            pass
    """,
    "rule.py": """
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator

        with DAG("airflow_only_rule", schedule=None):
            EmptyOperator(task_id="first")
            EmptyOperator(task_id="last", trigger_rule="all_done_setup_success")
    """,
    "broken.py": """
        from airflow.sdk import DAG

        raise RuntimeError("boom")
    """,
}


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mixed")
    for name, text in MIXED.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    return folder


def refusal(outcome, subject: str) -> ImportRefusal:
    (found,) = [r for r in outcome.refused if r.subject == subject]
    return found


def test_one_refused_dag_does_not_cost_the_others(mixed_folder: Path) -> None:
    outcome = import_dags(mixed_folder)
    assert [i.pipeline.id for i in outcome.imported] == ["good", "partial"]
    assert sorted(r.subject for r in outcome.refused) == [
        "DAG 'airflow_only_rule'",
        "DAG 'mapped'",
        "DAG 'no_tasks'",
        "DAG file",
    ]
    assert not outcome.complete


def test_partial_imports_carry_their_notes_and_location(mixed_folder: Path) -> None:
    good, partial = import_dags(mixed_folder).imported
    assert isinstance(good, ImportedPipeline) and good.notes == () and not good.partial
    assert good.location == f"{mixed_folder / 'good.py'}:4"
    assert partial.partial and any("BashSensor has no neutral form" in n for n in partial.notes)


def test_a_refusal_says_where_what_was_received_and_what_is_expected(mixed_folder: Path) -> None:
    mapped = refusal(import_dags(mixed_folder), "DAG 'mapped'")
    assert mapped.location == f"{mixed_folder / 'mapped.py'}:5"  # the task's function, not just the file
    assert "expand_kwargs (one whole set of arguments per instance) has no neutral form" in mapped.reason
    assert mapped.received and "double.expand_kwargs([{'x': 1}, {'x': 2}])" in mapped.received
    assert mapped.expected and ".expand(name=[...])" in mapped.expected
    text = str(mapped)
    assert text.splitlines()[1].startswith("  received: ") and text.splitlines()[2].startswith("  expected: ")


def test_a_dag_without_tasks_is_refused_plainly(mixed_folder: Path) -> None:
    empty = refusal(import_dags(mixed_folder), "DAG 'no_tasks'")
    assert empty.reason == "the DAG has no tasks"
    assert empty.location == f"{mixed_folder / 'empty.py'}:3"
    assert "pydantic" not in str(empty) and "validation error" not in str(empty)


def test_an_invalid_mapped_pipeline_names_the_field_without_pydantic_noise(mixed_folder: Path) -> None:
    rule = refusal(import_dags(mixed_folder), "DAG 'airflow_only_rule'")
    assert rule.reason.startswith("the mapped pipeline is not valid: task last: trigger_rule: Input should be")
    assert rule.location == f"{mixed_folder / 'rule.py'}:6"  # the task 'last'
    assert rule.received == "trigger_rule='all_done_setup_success'"
    assert rule.expected and rule.expected.startswith("Input should be 'all_success'")
    assert "errors.pydantic.dev" not in str(rule) and "validation error for" not in str(rule)


def test_a_file_that_does_not_import_is_one_refusal_with_its_line(mixed_folder: Path) -> None:
    broken = refusal(import_dags(mixed_folder), "DAG file")
    assert broken.location == f"{mixed_folder / 'broken.py'}:3"
    assert broken.reason == "Airflow could not import it: RuntimeError: boom"


def test_with_dag_id_other_files_do_not_matter(mixed_folder: Path) -> None:
    outcome = import_dags(mixed_folder, dag_id="good")
    assert [i.pipeline.id for i in outcome.imported] == ["good"] and outcome.refused == () and outcome.complete
    only_refused = import_dags(mixed_folder, dag_id="mapped")
    assert only_refused.imported == () and [r.subject for r in only_refused.refused] == ["DAG 'mapped'"]


def test_an_unforeseen_error_refuses_that_dag_only(mixed_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importer.schedule_of

    def schedule_of(dag, notes):
        if dag.dag_id == "good":
            raise AttributeError("'Weird' object has no attribute 'timezone'")
        return real(dag, notes)

    monkeypatch.setattr(importer, "schedule_of", schedule_of)
    outcome = import_dags(mixed_folder)
    assert [i.pipeline.id for i in outcome.imported] == ["partial"]
    good = refusal(outcome, "DAG 'good'")
    assert "AttributeError: 'Weird' object has no attribute 'timezone'" in good.reason
    assert good.location == f"{mixed_folder / 'good.py'}:4"
    (result,) = import_folder(mixed_folder, dag_id="good")
    assert result.unexpected  # told apart from a deliberate refusal (the example-DAG test asserts there are none)


def test_parsing_prints_nothing_on_stdout(mixed_folder: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """In a plain process Airflow's root log handler writes to the stdout of the moment airflow was imported
    (here: pytest's capture replaced it, so bind one the same way); its "Failed to import" traceback must not reach
    stdout, which lists the files ``meta import`` writes."""
    import logging
    import sys

    import airflow.settings  # noqa: F401 - configures Airflow's logging (it replaces the root handlers) first

    handler = logging.StreamHandler(sys.__stdout__)
    logging.getLogger().addHandler(handler)
    try:
        capfd.readouterr()
        import_dags(mixed_folder)
        print("after", flush=True)  # stdout itself is back once parsing is done
    finally:
        logging.getLogger().removeHandler(handler)
    out, err = capfd.readouterr()
    assert out == "after\n"
    assert "Failed to import" in err and handler.stream is sys.__stdout__


def test_location_is_the_call_that_names_the_id_not_an_earlier_literal(tmp_path: Path) -> None:
    (tmp_path / "named.py").write_text(
        textwrap.dedent("""
            from airflow.sdk import DAG
            from airflow.providers.standard.operators.python import PythonOperator
            TAGS = ["nightly", "fan"]

            with DAG("nightly", tags=TAGS, schedule=None):
                pass

            with DAG(schedule=None, dag_id="other"):
                PythonOperator(task_id="fan", python_callable=lambda: 1)
        """).lstrip()
    )
    outcome = import_dags(tmp_path)
    assert {r.subject: r.location for r in outcome.refused} == {
        "DAG 'nightly'": f"{tmp_path / 'named.py'}:5",
        "DAG 'other'": f"{tmp_path / 'named.py'}:9",
    }
