"""``sla.deadlines`` compile to native Airflow 3.3 Deadline Alerts that real Airflow loads and serializes (as the
dag-processor stores them), and the importer maps every built-in Deadline Alert reference back into sla.deadlines."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from meta_airflow.build import build_dag
from meta_airflow.codegen import write_dag_files
from meta_airflow.importer import import_dags, parse_folder

from meta.spec.model import Pipeline
from tests.unit.airflow.pipelines import rich, ruff_format_problems

AT = "2026-12-24T17:00:00+00:00"
DEADLINES: list[dict[str, Any]] = [
    {"reference": "logical_date", "interval": "3h"},
    {"reference": "queued_at", "interval": "45m"},
    {"reference": "average_runtime", "interval": "10m", "max_runs": 5, "min_runs": 2},
    {"reference": "fixed", "at": AT},
]
# reference -> (Airflow's class, its serialized extra fields)
EXPECTED = {
    "logical_date": ("DagRunLogicalDateDeadline", {}),
    "queued_at": ("DagRunQueuedAtDeadline", {}),
    "average_runtime": ("AverageRuntimeDeadline", {"max_runs": 5, "min_runs": 2}),
    "fixed": ("FixedDatetimeDeadline", {"datetime": datetime.fromisoformat(AT).timestamp()}),
}


def with_deadlines(*deadlines: dict[str, Any], pid: str = "rich") -> Pipeline:
    return rich(id=pid, sla={"deadlines": list(deadlines)})


def loaded(pipeline: Pipeline, folder: Path) -> Any:
    """The generated DAG file as Airflow's own DagBag imports it (no import errors allowed)."""
    write_dag_files([pipeline], folder)
    dags, errors, _ = parse_folder(folder)
    assert errors == [], errors
    return dags[pipeline.id]


@pytest.mark.parametrize("deadline", DEADLINES, ids=lambda d: d["reference"])
def test_each_deadline_reference_loads_in_airflow_as_a_native_deadline_alert(
    deadline: dict[str, Any], tmp_path: Path
) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    p = with_deadlines(deadline)
    (entry,) = p.sla.deadlines  # type: ignore[union-attr]
    dag = loaded(p, tmp_path / "dags")
    alert = dag.deadline[0] if isinstance(dag.deadline, list) else dag.deadline
    cls, extra = EXPECTED[deadline["reference"]]
    assert type(alert.reference).__name__ == cls
    assert alert.reference.serialize_reference() == {"reference_type": cls, **extra}
    assert alert.interval == entry.interval
    assert alert.name == entry.name
    assert alert.callback.path == "meta_deadline.on_deadline_missed"
    assert alert.callback.kwargs == {"pipeline": "rich", "sla": entry.name, "channels": ["slack:sla"]}
    # The loader (parse-time build) makes the very same alert as the generated file.
    built = build_dag(p).deadline
    built = built[0] if isinstance(built, list) else built
    assert built == alert and built.reference == alert.reference
    # What the dag-processor stores: the serialized DAG carries the deadline with its reference.
    serialized = str(DagSerialization.to_dict(dag))
    assert cls in serialized


def test_all_kinds_together_and_the_importer_round_trip(tmp_path: Path) -> None:
    p = rich(sla={"max_duration": "2h", "finish_by": "09:15", "deadlines": DEADLINES})
    dag = loaded(p, tmp_path / "dags")
    assert sorted(type(d.reference).__name__ for d in dag.deadline) == sorted(
        ["DagRunQueuedAtDeadline", "DagRunLogicalDateDeadline"] + [cls for cls, _ in EXPECTED.values()]
    )
    outcome = import_dags(tmp_path / "dags")
    (imported,) = outcome.imported
    assert not [n for n in imported.notes if "deadline" in n], imported.notes  # no deadline is lost on the way back
    assert imported.pipeline.sla == p.sla
    assert imported.pipeline.alerts.on_sla_miss == ("slack:sla",)


FOREIGN_DAG = """
from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference

dag = DAG(
    "hourly_report",
    schedule="0 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    deadline=[
        DeadlineAlert(
            reference=DeadlineReference.AVERAGE_RUNTIME(max_runs=7, min_runs=3),
            interval=timedelta(minutes=15),
            callback=AsyncCallback("team_callbacks.page_oncall", kwargs={"who": "oncall"}),
        ),
        DeadlineAlert(
            reference=DeadlineReference.AVERAGE_RUNTIME(4),
            interval=timedelta(0),
            callback=AsyncCallback("team_callbacks.page_oncall"),
        ),
        DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=timedelta(hours=1),
            callback=AsyncCallback("team_callbacks.page_oncall"),
        ),
    ],
)
with dag:
    EmptyOperator(task_id="report")
"""


def test_a_foreign_average_runtime_deadline_imports_into_sla_deadlines(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "hourly_report.py").write_text(textwrap.dedent(FOREIGN_DAG))
    (imported,) = import_dags(dags).imported
    sla = imported.pipeline.sla
    assert sla is not None and sla.max_duration is None  # a foreign queued-at deadline is a deadline, not ours
    assert [(d.reference, d.interval, d.max_runs, d.min_runs) for d in sla.deadlines] == [
        ("average_runtime", timedelta(minutes=15), 7, 3),
        ("average_runtime", timedelta(0), 4, None),  # Airflow's min_runs = max_runs is meta's default (None)
        ("queued_at", timedelta(hours=1), 10, None),
    ]
    callback_notes = [n for n in imported.notes if "team_callbacks.page_oncall is not carried over" in n]
    assert len(callback_notes) == 3, imported.notes
    # ... and compiled again, the same deadlines are native Deadline Alerts of the same shape
    dag = build_dag(imported.pipeline)
    refs = [d.reference.serialize_reference() for d in dag.deadline]
    assert refs == [
        {"reference_type": "AverageRuntimeDeadline", "max_runs": 7, "min_runs": 3},
        {"reference_type": "AverageRuntimeDeadline", "max_runs": 4, "min_runs": 4},
        {"reference_type": "DagRunQueuedAtDeadline"},
    ]


def test_what_only_the_control_plane_watches_builds_without_a_deadline_alert(tmp_path: Path) -> None:
    """The loader builds deployed specs at parse time with no workspace: start_by / fresh_within are not refused
    there (the deploy's check was), and they add no Deadline Alert of their own."""
    p = rich(sla={"start_by": "05:00", "fresh_within": "26h"})
    dag = loaded(p, tmp_path / "dags")
    assert not dag.deadline
    assert not build_dag(p).deadline


def test_generated_deadline_alerts_are_ruff_formatted(tmp_path: Path) -> None:
    files = write_dag_files([rich(sla={"max_duration": "2h", "deadlines": DEADLINES})], tmp_path)
    assert ruff_format_problems(files, tmp_path) == ""


def test_the_callback_names_the_run_airflow_passes() -> None:
    from meta_airflow.deadline import run_id_of

    # what Airflow 3.3's scheduler sends (Deadline.handle_miss: DAGRunResponse(...).model_dump(mode="json"))
    assert run_id_of({"context": {"dag_run": {"dag_id": "d", "dag_run_id": "manual__1"}}}) == "manual__1"
    assert run_id_of({"dag_run": {"run_id": "manual__2"}}) == "manual__2"
    assert run_id_of({}) is None
