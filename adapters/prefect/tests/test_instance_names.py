"""A mapped task's instances are Prefect task runs named ``task[i]``; before a run starts Prefect calls it
``task[i]-<key>``. Both the REST reader and the control plane's observer find the map index in either name."""

from __future__ import annotations

import pytest
from meta_prefect.driver import instance_of, task_run_name

from meta.service.observers.prefect_facts import Mapper


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("square[3]", ("square", 3)),
        ("square[3]-a1b", ("square", 3)),
        ("load-eu[12]", ("load-eu", 12)),
        ("square", ("square", -1)),
        ("square-a1b", ("square-a1b", -1)),
    ],
)
def test_instance_names_round_trip(name: str, expected: tuple[str, int]) -> None:
    assert instance_of(name) == expected
    assert Mapper.map_index(False, name) == expected[1]
    assert Mapper.map_index(True, name) == -1  # a flow meta did not build keeps Prefect's names


def test_the_driver_names_instances_by_map_index() -> None:
    assert task_run_name("square", 3) == "square[3]" and task_run_name("square", -1) == "square"
