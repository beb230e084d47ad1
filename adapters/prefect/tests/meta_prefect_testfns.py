"""Python callables used by the adapter's tests (this directory is on sys.path when pytest runs it)."""

from __future__ import annotations

from typing import Any


def choose(which: str) -> str:
    return which


def context_names(params: dict[str, Any], run_id: str, ds: str, try_number: int, backend: str) -> None:
    if params.get("country") != "CH" or not run_id or len(ds) != 10 or try_number != 1 or backend != "prefect":
        raise ValueError(f"unexpected context: {params=} {run_id=} {ds=} {try_number=} {backend=}")
