"""``op:`` tasks are checked against the op types registered through plugins, ``with:`` against their options."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

from meta.authoring.load import loads
from meta.plugins.ops import OpType
from meta.spec.errors import ValidationFailed
from tests.strategies import registered_ops


class LoadOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    table: str
    mode: str = "append"
    batch_size: int = 1000
    password: str | None = None


WAREHOUSE = OpType(name="test_warehouse_load", run=lambda ctx, **kw: None, options=LoadOptions)
ALERT = OpType(name="test_alert", run=lambda ctx, **kw: None)


@pytest.fixture(autouse=True)
def ops():
    with registered_ops(WAREHOUSE, ALERT):
        yield


def test_registered_ops_load() -> None:
    [p] = loads(
        "pipeline: p\ntasks:\n"
        "  load: {op: test_warehouse_load, with: {table: sales, batch_size: 10}, retries: 3}\n"
        "  notify: {op: test_alert, with: {channel: 'slack:x'}, upstream: [load], trigger_rule: one_failed}\n"
    )
    load, notify = p.tasks
    assert (load.action.op, load.action.with_, load.retries) == (
        "test_warehouse_load",
        {"table": "sales", "batch_size": 10},
        3,
    )
    assert (notify.action.op, notify.action.with_) == ("test_alert", {"channel": "slack:x"})


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (
            "{op: test_warehouse_lod, with: {table: t}}",
            "f.yaml:3:11: pipeline 'p', task 'a': unknown op type 'test_warehouse_lod'; did you mean "
            "'test_warehouse_load'?; available: ",
        ),
        (
            "{op: test_warehouse_load, with: {}}",
            "f.yaml:3:38: pipeline 'p', task 'a': with.table: missing required field",
        ),
        (
            "{op: test_warehouse_load, with: {table: t, batch_size: lots}}",
            "f.yaml:3:61: pipeline 'p', task 'a': with.batch_size: expected a valid integer, unable to parse string as "
            "an integer; received 'lots'",
        ),
        (
            "{op: test_warehouse_load, with: {table: t, tabel: u}}",
            "f.yaml:3:49: pipeline 'p', task 'a': with.tabel: unknown key",
        ),
        ("{op: [x]}", "f.yaml:3:11: pipeline 'p', task 'a': op must name a registered op type"),
        (
            "{op: test_alert, kwargs: {x: 1}}",
            "f.yaml:3:23: pipeline 'p', task 'a': 'kwargs' only applies to python and branch",
        ),
    ],
)
def test_op_problems(task: str, expected: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        loads(f"pipeline: p\ntasks:\n  a: {task}\n", "f.yaml")
    assert expected in str(info.value)


def test_op_with_credentials_are_not_shown() -> None:
    with pytest.raises(ValidationFailed) as info:
        loads("pipeline: p\ntasks:\n  a: {op: test_warehouse_load, with: {table: t, password: 77aa88bb}}\n", "f.yaml")
    message = str(info.value)
    assert "f.yaml:3:59: pipeline 'p', task 'a': with.password holds a literal credential" in message
    assert "77aa88bb" not in message


def test_unknown_op_lists_what_is_available() -> None:
    with pytest.raises(ValidationFailed) as info:
        loads("pipeline: p\ntasks:\n  a: {op: zzz}\n", "f.yaml")
    assert "available: " in str(info.value) and "test_alert" in str(info.value)
