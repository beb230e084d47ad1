"""Which slots each side of a switch owns (``meta.service.migrations.slots``) and what the shadow copy changes
(``meta.service.migrations.shadow``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from meta.authoring.load import loads
from meta.service.migrations.shadow import ShadowRefused, live_id, shadow_copy, shadow_id, unscheduled
from meta.service.migrations.slots import owed, owed_from
from meta.spec.model import Pipeline
from meta.spec.workspace import Migration


def pipeline(data: dict[str, Any]) -> Pipeline:
    """A pipeline from the spec's own form (the YAML a user writes), through meta's loader."""
    [found] = loads(json.dumps({"pipeline": data.pop("id"), **data}))
    return found


def hourly(**extra: Any) -> Pipeline:
    return pipeline(
        {"id": "p", "schedule": "0 * * * *", "start_date": "2026-01-01", "tasks": {"t": {"noop": True}}, **extra}
    )


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 5, 1, hour, minute, tzinfo=UTC)


def test_without_catchup_the_new_side_owes_the_newest_slot_the_old_side_did_not_create() -> None:
    # the old side ran 09:00; switched at 10:30, its 10:00 run was never created: 10:00 is owed, then 11:00 ...
    first = owed_from(hourly(), at(9), at(10, 30))
    assert first == at(10)
    assert owed(hourly(), at(9), first, at(12, 5)) == [at(10), at(11), at(12)]
    # ... but a slot older than the newest one at the switch is not (Airflow's unpause with catchup off)
    assert owed_from(hourly(), at(6), at(10, 30)) == at(10)


def test_without_catchup_nothing_is_owed_twice_when_the_old_side_ran_the_newest_slot() -> None:
    first = owed_from(hourly(), at(10), at(10, 30))
    assert owed(hourly(), at(10), first, at(10, 59)) == []
    assert owed(hourly(), at(10), first, at(11, 0)) == [at(11)]


def test_with_catchup_every_slot_after_the_hand_off_is_owed() -> None:
    first = owed_from(hourly(catchup=True), at(6), at(10, 30))
    assert owed(hourly(catchup=True), at(6), first, at(10, 30)) == [at(7), at(8), at(9), at(10)]
    # what the driver already started is not owed again
    assert owed(hourly(catchup=True), at(8), first, at(10, 30)) == [at(9), at(10)]


def test_no_hand_off_means_the_newest_slot_at_the_switch() -> None:
    assert owed_from(hourly(), None, at(10, 30)) == at(10)


def etl(url: str | None = None) -> dict[str, Any]:
    load: dict[str, Any] = {"table": "t", "mode": "replace", "source": {"query": "select 1 as a"}}
    if url:
        load["url"] = url
    return {
        "id": "etl",
        "schedule": "0 6 * * *",
        "start_date": "2026-01-01",
        "sla": {"max_duration": "1h"},
        "alerts": {"on_failure": ["slack:data"]},
        "tasks": {
            "stage": {"sql": {"conn": "warehouse", "statement": "insert into s select 1"}},
            "load": {"op": "warehouse_load", "with": load, "upstream": ["stage"], "outputs": ["postgres://wh/t"]},
            "tell": {"op": "alert", "with": {"channel": "slack:data", "message": "done"}, "upstream": ["load"]},
            "script": {"shell": "echo hi", "upstream": ["load"]},
        },
    }


def test_the_shadow_copy_writes_to_its_own_connections_and_tells_no_one() -> None:
    copy = shadow_copy(pipeline(etl()), Migration(shadow_connections={"warehouse": "wh_shadow"}))
    shadow = copy.pipeline
    assert shadow.id == shadow_id("etl") == "etl__shadow" and live_id(shadow.id) == "etl"
    assert shadow.schedule is None and shadow.sla is None and not shadow.alerts.on_failure
    tasks = {t.id: t for t in shadow.tasks}
    assert tasks["stage"].action.conn == "wh_shadow"  # type: ignore[union-attr]
    assert tasks["load"].action.with_["conn"] == "wh_shadow"  # type: ignore[union-attr]
    assert tasks["load"].outputs == ()  # no dataset event: the live consumers must not start
    assert tasks["tell"].action.kind == "noop"
    assert [t.upstream for t in shadow.tasks] == [t.upstream for t in pipeline(etl()).tasks]
    assert copy.notes == [
        "etl: task tell: an alert task; the shadow copy does nothing there (no alert is sent twice)",
        "etl: task script: a shell task runs as it is; meta cannot redirect where it writes",
    ]


def test_a_shadow_that_would_write_to_the_live_warehouse_is_refused_naming_each_task() -> None:
    with pytest.raises(ShadowRefused) as refused:
        shadow_copy(pipeline(etl(url="sqlite:///x.db")), Migration())
    message = str(refused.value)
    assert "etl: task stage: writes through connection 'warehouse', which has no shadow connection" in message
    assert "etl: task load: warehouse_load writes to a literal url" in message
    assert "migrations.etl.shadow_connections" in message


def test_the_unscheduled_copy_keeps_every_task_and_leaves_the_schedule_to_the_control_plane() -> None:
    live = pipeline(etl())
    copy = unscheduled(live)
    assert copy.id == "etl" and copy.tasks == live.tasks and copy.alerts.on_failure == live.alerts.on_failure
    assert copy.schedule is None and copy.sla is None
