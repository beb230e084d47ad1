"""``@task`` functions for tests/unit/test_results_mapping.py (importable by the runner, as task code must be)."""

from __future__ import annotations

from meta.dsl import task


@task
def extract() -> list[int]:
    return [1, 2, 3]


@task(retries=1, retry_delay="1s")
def square(x: int, power: int) -> int:
    return x**power


@task
def total(values: list[int]) -> int:
    return sum(values)
